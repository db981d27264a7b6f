//! The reconnection policy, without a runtime: time is passed in, so each
//! rule is checked by plain calls and exact durations.

use std::time::{Duration, Instant};

use transport::{ClientError, Failure, FallbackReason, Next, Note, Policy, PolicyConfig, Transport};

mod common;
use common::{fail, no_jitter, s, t0};

/// Fails every attempt at once and returns the waits the policy chose.
fn failing_delays(p: &mut Policy, start: Instant, n: usize) -> Vec<Duration> {
    let mut now = start;
    let mut out = Vec::new();
    for _ in 0..n {
        assert!(
            matches!(p.next(now), Next::Attempt(_)),
            "an attempt is due at {now:?}"
        );
        p.failed(now, fail("refused"));
        match p.next(now) {
            Next::WaitUntil(at) => {
                out.push(at - now);
                now = at;
            }
            other => panic!("expected a wait, got {other:?}"),
        }
    }
    out
}

#[test]
fn backoff_doubles_from_one_second_and_caps_at_sixteen() {
    let t = t0();
    // The schedule carries on across the fallback to polling after three.
    let mut p = Policy::new(no_jitter(), 1, t);
    assert_eq!(
        failing_delays(&mut p, t, 7),
        [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0].map(s)
    );
}

#[test]
fn jitter_adds_below_the_cap_stays_inside_it_at_the_cap_and_follows_the_seed() {
    let t = t0();
    let delays = |seed| failing_delays(&mut Policy::new(PolicyConfig::default(), seed, t), t, 8);
    let a = delays(7);
    for (d, base) in a.iter().zip([1.0, 2.0, 4.0, 8.0].map(s)) {
        assert!(*d >= base && *d < base.mul_f64(1.2), "{d:?} vs {base:?}");
    }
    // At the cap: within [0.8·cap, cap], and spread (not all equal).
    let at_cap = &a[4..];
    for d in at_cap {
        assert!(*d >= s(12.8) && *d <= s(16.0), "{d:?} at the 16 s cap");
    }
    assert!(at_cap.windows(2).any(|w| w[0] != w[1]), "{at_cap:?}");
    assert_eq!(a, delays(7), "same seed, same schedule");
    assert_ne!(a, delays(8), "another seed, another schedule");
}

#[test]
fn the_servers_retry_is_a_floor_that_jitter_never_shortens() {
    let t = t0();
    let mut p = Policy::new(PolicyConfig::default(), 3, t);
    p.retry_hint(5_000);
    for d in failing_delays(&mut p, t, 4) {
        assert!(d >= s(5.0), "{d:?}");
    }
    // retry: 0 cannot make a tight loop.
    let mut p = Policy::new(
        PolicyConfig {
            initial_delay: Duration::ZERO,
            ..no_jitter()
        },
        3,
        t,
    );
    p.retry_hint(0);
    assert_eq!(failing_delays(&mut p, t, 1), [Duration::from_millis(100)]);
}

#[test]
fn retry_after_is_honoured() {
    let t = t0();
    let mut p = Policy::new(no_jitter(), 1, t);
    assert!(matches!(p.next(t), Next::Attempt(Transport::Sse)));
    p.failed(
        t,
        Failure::Retry {
            reason: "429".into(),
            retry_after: Some(s(7.0)),
        },
    );
    assert_eq!(p.next(t), Next::WaitUntil(t + s(7.0)));
}

#[test]
fn a_server_hint_above_the_cap_wins_exactly() {
    let t = t0();
    let mut p = Policy::new(PolicyConfig::default(), 1, t);
    assert!(matches!(p.next(t), Next::Attempt(Transport::Sse)));
    p.failed(
        t,
        Failure::Retry {
            reason: "429".into(),
            retry_after: Some(s(60.0)),
        },
    );
    assert_eq!(p.next(t), Next::WaitUntil(t + s(60.0)));
    // retry: above the cap too, every time.
    let mut p = Policy::new(PolicyConfig::default(), 1, t);
    p.retry_hint(20_000);
    assert_eq!(failing_delays(&mut p, t, 6), [s(20.0); 6]);
}

/// A hint at the end of its type (`Retry-After: 18446744073709551615`,
/// `retry: 18446744073709551615`) is read as an hour: no overflow of the
/// clock (a panic in the driver), no client parked for centuries.
#[test]
fn a_server_hint_past_an_hour_is_an_hour() {
    let t = t0();
    let hour = transport::policy::MAX_SERVER_HINT;
    assert_eq!(hour, s(3600.0));
    let mut p = Policy::new(PolicyConfig::default(), 1, t);
    assert!(matches!(p.next(t), Next::Attempt(Transport::Sse)));
    p.failed(
        t,
        Failure::Retry {
            reason: "503".into(),
            retry_after: Some(Duration::from_secs(u64::MAX)),
        },
    );
    assert_eq!(p.next(t), Next::WaitUntil(t + hour));
    let waits: Vec<Duration> = p
        .take_notes()
        .into_iter()
        .filter_map(|n| match n {
            Note::Backoff { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [hour], "the wait logged and shown is the one kept");
    let mut p = Policy::new(PolicyConfig::default(), 1, t);
    p.retry_hint(u64::MAX);
    assert_eq!(failing_delays(&mut p, t, 2), [hour; 2]);
}

#[test]
fn backoff_resets_only_after_a_healthy_connection() {
    let t = t0();
    let mut p = Policy::new(no_jitter(), 1, t);
    let mut now = t;
    // Three quick failures: 1, 2, 4.
    let d = failing_delays(&mut p, now, 3);
    now += d.iter().sum::<Duration>();
    // Connects, but drops after 2 s: not healthy, the schedule goes on (8).
    assert!(matches!(p.next(now), Next::Attempt(_)));
    p.connected(now);
    now += s(2.0);
    p.failed(now, fail("dropped"));
    assert_eq!(p.next(now), Next::WaitUntil(now + s(8.0)));
    now += s(8.0);
    // Connects and stays up 10 s: the next failure starts over at 1 s.
    assert!(matches!(p.next(now), Next::Attempt(_)));
    p.connected(now);
    now += s(10.0);
    p.failed(now, fail("dropped"));
    assert_eq!(p.next(now), Next::WaitUntil(now + s(1.0)));
    assert!(p.take_notes().contains(&Note::Reset));
}

#[test]
fn one_attempt_at_a_time() {
    let t = t0();
    let mut p = Policy::new(no_jitter(), 1, t);
    assert!(matches!(p.next(t), Next::Attempt(_)));
    assert_eq!(p.next(t), Next::Busy);
    assert_eq!(p.next(t + s(100.0)), Next::Busy);
    p.connected(t);
    assert_eq!(p.next(t + s(100.0)), Next::Busy);
}

#[test]
fn max_attempts_gives_up_and_minus_one_never_does() {
    let t = t0();
    let mut p = Policy::new(
        PolicyConfig {
            max_attempts: 3,
            ..no_jitter()
        },
        1,
        t,
    );
    let mut now = t;
    for _ in 0..3 {
        assert!(matches!(p.next(now), Next::Attempt(_)));
        p.failed(now, fail("refused"));
        now += s(100.0);
    }
    assert!(matches!(p.next(now), Next::Attempt(_)));
    p.failed(now, fail("refused"));
    assert_eq!(
        p.next(now),
        Next::Stop(ClientError::GaveUp {
            attempts: 3,
            last: "refused".into()
        })
    );
    let mut p = Policy::new(no_jitter(), 1, t);
    assert_eq!(failing_delays(&mut p, t, 50).len(), 50);
}

#[test]
fn fatal_answers_stop_at_once() {
    let t = t0();
    let mut p = Policy::new(no_jitter(), 1, t);
    assert!(matches!(p.next(t), Next::Attempt(_)));
    let refused = ClientError::Refused {
        status: 401,
        message: "Unauthorized".into(),
    };
    p.failed(t, Failure::Fatal(refused.clone()));
    assert_eq!(p.next(t + s(1000.0)), Next::Stop(refused));
}

#[test]
fn a_missing_stream_endpoint_falls_back_to_polling_at_once() {
    let t = t0();
    let mut p = Policy::new(no_jitter(), 1, t);
    assert_eq!(p.next(t), Next::Attempt(Transport::Sse));
    p.failed(t, Failure::StreamMissing);
    assert!(p.is_fallen_back());
    assert_eq!(
        p.take_notes(),
        [Note::Fallback {
            reason: FallbackReason::StreamMissing
        }]
    );
    assert_eq!(
        p.next(t),
        Next::Attempt(Transport::Poll),
        "no wait: polling is another endpoint"
    );
    assert_eq!(p.failures(), 0);
}

#[test]
fn repeated_streaming_failures_fall_back_then_a_probe_upgrades() {
    let t = t0();
    let config = PolicyConfig {
        transport: Transport::Ws,
        ..no_jitter()
    };
    let mut p = Policy::new(config, 1, t);
    let mut now = t;
    for _ in 0..3 {
        assert_eq!(p.next(now), Next::Attempt(Transport::Ws));
        p.failed(now, fail("refused"));
        let Next::WaitUntil(at) = p.next(now) else {
            panic!()
        };
        now = at;
    }
    assert_eq!(
        p.next(now),
        Next::Attempt(Transport::Poll),
        "three failures: polling"
    );
    p.connected(now);
    // No probe before the interval; one after it, then not again at once.
    assert_eq!(p.probe(now + s(29.0)), None);
    assert_eq!(p.probe(now + s(30.0)), Some(Transport::Ws));
    assert_eq!(p.probe(now + s(30.5)), None);
    p.probe_failed(&fail("still down"));
    assert!(p.is_fallen_back());
    assert_eq!(p.probe(now + s(60.0)), Some(Transport::Ws));
    p.probe_succeeded(now + s(60.0));
    assert!(!p.is_fallen_back());
    assert_eq!(p.current(), Transport::Ws);
    let notes = p.take_notes();
    assert!(notes.contains(&Note::Fallback {
        reason: FallbackReason::Failures(3)
    }));
    assert!(notes.contains(&Note::Upgrade { to: Transport::Ws }));
}

#[test]
fn polling_only_never_falls_back_nor_probes() {
    let t = t0();
    let mut p = Policy::new(
        PolicyConfig {
            transport: Transport::Poll,
            ..no_jitter()
        },
        1,
        t,
    );
    assert_eq!(p.next(t), Next::Attempt(Transport::Poll));
    p.connected(t);
    assert_eq!(p.probe(t + s(1000.0)), None);
    p.failed(t + s(1.0), Failure::StreamMissing);
    assert_eq!(
        p.next(t + s(2.0)),
        Next::Stop(ClientError::PollingMissing),
        "polling itself missing stops"
    );
}

#[test]
fn a_strict_transport_never_switches() {
    let t = t0();
    for kind in [Transport::Sse, Transport::Ws] {
        let strict = PolicyConfig {
            transport: kind,
            fallback: false,
            ..no_jitter()
        };
        // Failures in a row: backoff on the same transport, no fallback.
        let mut p = Policy::new(strict.clone(), 1, t);
        let mut now = t;
        for _ in 0..6 {
            assert_eq!(p.next(now), Next::Attempt(kind));
            p.failed(now, fail("refused"));
            let Next::WaitUntil(at) = p.next(now) else {
                panic!("a wait")
            };
            now = at;
        }
        assert!(!p.is_fallen_back());
        assert!(!p.take_notes().iter().any(|n| matches!(n, Note::Fallback { .. })));
        // A missing endpoint stops it, naming the way out.
        let mut p = Policy::new(strict, 1, t);
        assert_eq!(p.next(t), Next::Attempt(kind));
        p.failed(t, Failure::StreamMissing);
        assert_eq!(p.next(t), Next::Stop(ClientError::StreamingMissing(kind)));
    }
}

#[test]
fn preferences_read_and_set_the_policy() {
    use transport::Preference;
    for (name, transport, fallback) in [
        ("auto", Transport::Sse, true),
        ("sse", Transport::Sse, false),
        ("ws", Transport::Ws, false),
        ("poll", Transport::Poll, false),
        ("http", Transport::Poll, false),
    ] {
        let pref: Preference = name.parse().unwrap();
        let mut c = PolicyConfig::default();
        pref.apply(&mut c);
        assert_eq!((c.transport, c.fallback), (transport, fallback), "{name}");
    }
    assert_eq!(
        "udp".parse::<Preference>().unwrap_err().to_string(),
        "transport must be auto, sse, ws or poll (or http), not \"udp\""
    );
    assert_eq!(Preference::default(), Preference::Auto);
}
