//! The timeline invariants on hand-made timelines: they match on the typed
//! lifecycle, so each rule is checked here without running a simulation.

use std::time::Duration;

use sim::check::{Class, backoff_rules};
use sim::{ClientRun, Entry, Harness};
use transport::{ClientError, Failure, Lifecycle, TimelineEntry, Transport};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn connecting() -> Lifecycle {
    Lifecycle::Connecting {
        transport: Transport::Sse,
        after: 0,
    }
}

fn disconnected() -> Lifecycle {
    Lifecycle::Disconnected {
        cause: Failure::StreamMissing,
    }
}

fn backoff(attempt: u32, wait_ms: u64) -> Lifecycle {
    Lifecycle::Backoff {
        attempt,
        wait: ms(wait_ms),
    }
}

/// `Ok` or the simulated time of the violation.
fn check(events: Vec<Lifecycle>) -> Result<(), Duration> {
    let mut timeline: Vec<Entry> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            Entry::Client(TimelineEntry {
                at: ms(i as u64 * 100),
                event,
            })
        })
        .collect();
    // A harness line in the middle changes nothing.
    timeline.insert(
        1.min(timeline.len()),
        Entry::Harness {
            at: ms(50),
            event: Harness::EngineKilled { after: 3 },
        },
    );
    let run = ClientRun {
        timeline,
        ..ClientRun::default()
    };
    backoff_rules(0, &run).map_err(|v| {
        assert_eq!(v.class, Class::Safety);
        v.at.unwrap()
    })
}

#[test]
fn a_doubling_schedule_with_jitter_under_a_fifth_passes() {
    assert_eq!(
        check(vec![
            connecting(),
            disconnected(),
            backoff(1, 1000),
            connecting(),
            disconnected(),
            backoff(2, 2399),
            connecting(),
            disconnected(),
            backoff(3, 4000),
            connecting(),
            Lifecycle::Connected {
                transport: Transport::Sse
            },
            disconnected(),
            Lifecycle::Reset,
            backoff(1, 1100),
            connecting(),
            Lifecycle::Stopped {
                error: ClientError::StoppedByServer
            },
        ]),
        Ok(())
    );
}

#[test]
fn a_second_attempt_in_flight_is_a_violation() {
    assert_eq!(check(vec![connecting(), connecting()]), Err(ms(100)));
}

#[test]
fn a_wait_outside_the_schedule_is_a_violation() {
    let fail = |attempt, wait| check(vec![connecting(), disconnected(), backoff(attempt, wait)]);
    assert_eq!(fail(1, 999), Err(ms(200)), "shorter than the base");
    assert_eq!(fail(1, 1201), Err(ms(200)), "jitter of a fifth or more");
    assert_eq!(fail(2, 2000), Err(ms(200)), "attempt 2 after attempt 0");
}

#[test]
fn attempts_restart_at_one_only_after_a_reset() {
    let run = |reset: bool| {
        let mut t = vec![connecting(), disconnected(), backoff(1, 1000)];
        t.extend([connecting(), disconnected()]);
        if reset {
            t.push(Lifecycle::Reset);
        }
        t.push(backoff(1, 1000));
        check(t)
    };
    assert_eq!(run(true), Ok(()));
    assert_eq!(run(false), Err(ms(500)));
}

#[test]
fn at_the_cap_a_wait_is_within_the_top_band_and_never_above_the_cap() {
    let at_fifth = |wait| {
        let mut t = Vec::new();
        for (attempt, w) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (5, wait)] {
            t.extend([connecting(), disconnected(), backoff(attempt, w)]);
        }
        check(t)
    };
    assert_eq!(at_fifth(16_000), Ok(()));
    assert_eq!(at_fifth(12_800), Ok(()));
    assert_eq!(at_fifth(16_001), Err(ms(1400)), "over the cap");
    assert_eq!(at_fifth(17_600), Err(ms(1400)), "jitter on top of the cap");
    assert_eq!(at_fifth(12_799), Err(ms(1400)), "under the top band");
}

/// A run that ran out of simulated time is a liveness failure; one that
/// stopped with an error or a panic is a crash. The class decides the
/// runner's exit code, so it comes from the typed outcome, not a message.
#[test]
fn how_a_run_broke_decides_its_class() {
    let scenario = sim::scenarios::by_name("normal_sse").unwrap();
    let cases = [
        (sim::Broke::OutOfTime(Duration::from_secs(3600)), Class::Liveness),
        (sim::Broke::Error("host stub: boom".into()), Class::Crash),
        (sim::Broke::Panic("oops".into()), Class::Crash),
    ];
    for (broke, want) in cases {
        let report = sim::Report {
            crashed: Some(broke.clone()),
            clients: vec![ClientRun::default()],
            ..sim::Report::default()
        };
        let got = sim::check::check(&scenario, &report).map_err(|v| v.class);
        assert_eq!(got, Err(want), "{broke}");
    }
}
