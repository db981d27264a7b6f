//! Failover between several URLs, in the sans-IO policy: plain calls, time
//! passed in, exact durations.

use std::time::{Duration, Instant};

use transport::policy::url_order;
use transport::{ClientError, Failure, Next, Note, Policy, PolicyConfig, UrlOrder};

mod common;
use common::{fail, no_jitter, s, t0};

/// Starts the first attempt.
fn start(p: &mut Policy, now: Instant) {
    assert!(
        matches!(p.next(now), Next::Attempt(_)),
        "an attempt is due at {now:?}"
    );
}

/// With an attempt in flight (or a session up), fails it `n` times, time
/// moving on by each wait: (the URL each used, the wait after it), and the
/// time at the end, when the next attempt is in flight.
fn fail_many(p: &mut Policy, start: Instant, n: usize) -> (Vec<(usize, Duration)>, Instant) {
    let mut now = start;
    let mut out = Vec::new();
    for _ in 0..n {
        let url = p.current_url();
        p.failed(now, fail("refused"));
        let wait = match p.next(now) {
            Next::Attempt(_) => Duration::ZERO,
            Next::WaitUntil(at) => {
                let wait = at - now;
                now = at;
                assert!(matches!(p.next(now), Next::Attempt(_)), "due after the wait");
                wait
            }
            other => panic!("expected a wait or an attempt, got {other:?}"),
        };
        out.push((url, wait));
    }
    (out, now)
}

fn failovers(notes: &[Note]) -> Vec<(usize, usize)> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Failover { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn backoffs(notes: &[Note]) -> Vec<u32> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Backoff { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failure_moves_to_the_next_url_and_tries_it_at_once() {
    let t = t0();
    let mut p = Policy::with_urls(no_jitter(), 1, t, 3, UrlOrder::InOrder);
    assert_eq!(p.current_url(), 0);
    assert!(matches!(p.next(t), Next::Attempt(_)));
    p.failed(t, fail("connection refused"));
    assert_eq!(p.current_url(), 1, "the next URL");
    assert!(
        matches!(p.next(t), Next::Attempt(_)),
        "an untried URL is tried at once, without backoff"
    );
    let notes = p.take_notes();
    assert_eq!(
        notes,
        [Note::Failover {
            from: 0,
            to: 1,
            reason: "connection refused".into()
        }]
    );
    assert_eq!(p.failures(), 0, "no backoff counted within a round");
}

#[test]
fn backoff_only_after_a_full_round_and_the_list_wraps() {
    let t = t0();
    let mut p = Policy::with_urls(no_jitter(), 1, t, 3, UrlOrder::InOrder);
    start(&mut p, t);
    let (steps, _) = fail_many(&mut p, t, 9);
    assert_eq!(
        steps,
        [
            (0, s(0.0)),
            (1, s(0.0)),
            (2, s(1.0)),
            (0, s(0.0)),
            (1, s(0.0)),
            (2, s(2.0)),
            (0, s(0.0)),
            (1, s(0.0)),
            (2, s(4.0)),
        ],
        "(URL, wait): a round of immediate tries, then the backoff, counted in rounds"
    );
    let notes = p.take_notes();
    assert_eq!(backoffs(&notes), [1, 2, 3]);
    assert_eq!(
        failovers(&notes),
        [(0, 1), (1, 2), (2, 0)].repeat(3),
        "every move is a failover, wrapping from the last to the first"
    );
    assert_eq!(p.failures(), 3);
}

#[test]
fn a_successful_connection_starts_a_new_round() {
    let t = t0();
    let mut p = Policy::with_urls(no_jitter(), 1, t, 2, UrlOrder::InOrder);
    // Two rounds fail: the backoff is at attempt 2.
    start(&mut p, t);
    let (_, mut now) = fail_many(&mut p, t, 4);
    assert_eq!(p.failures(), 2);
    // URL 0 connects, and drops at once (not healthy).
    assert_eq!(p.current_url(), 0);
    p.connected(now);
    now += s(1.0);
    p.failed(now, fail("reset by peer"));
    // URL 1 failed in the last round, but not since the success: at once.
    assert_eq!(p.current_url(), 1);
    assert!(matches!(p.next(now), Next::Attempt(_)), "a new round: no wait");
    // It fails too: the round is over, and the backoff goes on (3: the
    // connection was not healthy, so the schedule did not reset).
    p.failed(now, fail("refused"));
    assert_eq!(p.next(now), Next::WaitUntil(now + s(4.0)));
    assert_eq!(backoffs(&p.take_notes()), [1, 2, 3]);
    // A healthy connection resets the schedule too: back to 1 s after a round.
    now += s(4.0);
    assert!(matches!(p.next(now), Next::Attempt(_)));
    p.connected(now);
    now += s(10.0);
    let (steps, _) = fail_many(&mut p, now, 2);
    assert_eq!(steps, [(0, s(0.0)), (1, s(1.0))]);

    // Mid-round: URL 0 fails, URL 1 connects and drops: URL 0 failed before
    // the success, not since, so it is tried at once.
    let mut p = Policy::with_urls(no_jitter(), 1, t, 2, UrlOrder::InOrder);
    start(&mut p, t);
    let (steps, now) = fail_many(&mut p, t, 1);
    assert_eq!(steps, [(0, s(0.0))]);
    p.connected(now);
    let (steps, _) = fail_many(&mut p, now + s(1.0), 3);
    assert_eq!(steps, [(1, s(0.0)), (0, s(1.0)), (1, s(0.0))]);
}

#[test]
fn one_url_behaves_exactly_as_before() {
    let t = t0();
    let config = PolicyConfig::default();
    for order in [UrlOrder::InOrder, UrlOrder::Random] {
        let mut old = Policy::new(config.clone(), 7, t);
        let mut one = Policy::with_urls(config.clone(), 7, t, 1, order);
        start(&mut old, t);
        start(&mut one, t);
        let (a, _) = fail_many(&mut old, t, 8);
        let (b, _) = fail_many(&mut one, t, 8);
        assert_eq!(a, b, "same waits, jitter included ({order:?})");
        assert!(b.iter().all(|(url, wait)| *url == 0 && *wait >= s(1.0)));
        let notes = one.take_notes();
        assert_eq!(notes, old.take_notes());
        assert!(failovers(&notes).is_empty(), "no failover with one URL");
        assert_eq!(backoffs(&notes), [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}

#[test]
fn random_order_is_a_seeded_permutation() {
    let n = 8;
    assert_eq!(url_order(n, UrlOrder::InOrder, 5), (0..n).collect::<Vec<_>>());
    let a = url_order(n, UrlOrder::Random, 42);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation: {a:?}");
    assert_eq!(a, url_order(n, UrlOrder::Random, 42), "same seed, same order");
    assert!(
        (0..20).any(|seed| url_order(n, UrlOrder::Random, seed) != a),
        "other seeds, other orders"
    );
    assert_eq!(url_order(1, UrlOrder::Random, 42), [0]);
    // The policy follows it, wrapping, and names configured indices.
    let t = t0();
    let mut p = Policy::with_urls(no_jitter(), 42, t, n, UrlOrder::Random);
    start(&mut p, t);
    let (steps, _) = fail_many(&mut p, t, n + 1);
    let tried: Vec<usize> = steps.iter().map(|(url, _)| *url).collect();
    let mut want = a.clone();
    want.push(a[0]);
    assert_eq!(tried, want);
}

#[test]
fn answers_about_the_stream_stop_without_failing_over() {
    let t = t0();
    for error in [
        ClientError::EpochChanged {
            from: wire::Epoch::from_random(0xe1),
            epoch: wire::Epoch::from_random(0xe2),
            oldest: None,
            head: None,
        },
        ClientError::CursorExpired {
            cursor: 3,
            oldest: Some(9),
        },
        ClientError::CursorAhead {
            cursor: wire::Cursor::bare(9),
            head: Some(3),
        },
        ClientError::Refused {
            status: 401,
            message: "unauthorized".into(),
        },
    ] {
        let mut p = Policy::with_urls(no_jitter(), 1, t, 2, UrlOrder::InOrder);
        assert!(matches!(p.next(t), Next::Attempt(_)));
        p.failed(t, Failure::Fatal(error.clone()));
        assert_eq!(p.next(t), Next::Stop(error));
        assert_eq!(p.current_url(), 0);
        assert!(failovers(&p.take_notes()).is_empty());
    }
    // A missing stream endpoint falls back to polling on the same URL.
    let mut p = Policy::with_urls(no_jitter(), 1, t, 2, UrlOrder::InOrder);
    assert!(matches!(p.next(t), Next::Attempt(_)));
    p.failed(t, Failure::StreamMissing);
    assert_eq!(p.next(t), Next::Attempt(transport::Transport::Poll));
    assert_eq!(p.current_url(), 0);
}

#[test]
fn max_attempts_counts_whole_rounds() {
    let t = t0();
    let config = PolicyConfig {
        max_attempts: 1,
        ..no_jitter()
    };
    let mut p = Policy::with_urls(config, 1, t, 2, UrlOrder::InOrder);
    start(&mut p, t);
    let (steps, now) = fail_many(&mut p, t, 3);
    assert_eq!(steps, [(0, s(0.0)), (1, s(1.0)), (0, s(0.0))]);
    p.failed(now, fail("refused"));
    assert_eq!(
        p.next(now),
        Next::Stop(ClientError::GaveUp {
            attempts: 1,
            last: "refused".into()
        })
    );
    assert_eq!(
        failovers(&p.take_notes()),
        [(0, 1), (1, 0), (0, 1)],
        "no failover noted for the attempt that is never made"
    );
}
