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
    backoff_rules(&sim::scenarios::normal(transport::Transport::Sse), 0, &run).map_err(|v| {
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

/// The log's invariants on hand-made reports: each broken rule is named.
mod log_invariants {
    use std::time::Duration;

    use sim::check::{Class, Invariant, check};
    use sim::publisher::{Ack, BatchRun};
    use sim::{ClientRun, FinalLog, Report, Start};

    fn epoch(n: u64) -> wire::Epoch {
        wire::Epoch::from_random(n)
    }

    fn start(at_us: u64, n: u32) -> Start {
        Start {
            at: Duration::from_micros(at_us),
            at_us,
            epoch: epoch(u64::from(n) + 1),
            incarnation: n,
            head: 0,
            fixture_done: 0,
            open_failures: 0,
        }
    }

    /// One batch of 2 items acknowledged as 1..=2 in log 0, in a one-log run.
    fn report(markers: Vec<(u64, usize, usize)>) -> (sim::Scenario, Report) {
        let mut sc = sim::scenarios::by_name("crash_mid_append").unwrap();
        sc.clients.clear();
        sc.publishing = Some(sim::publisher::Publishing {
            batches: 2,
            max_items: 2,
            start: Duration::ZERO,
            every: Duration::ZERO,
        });
        let ack = |ids| {
            Some(Ack {
                ids,
                epoch: Some(epoch(1)),
                replayed: false,
                at: Duration::from_secs(1),
            })
        };
        let report = Report {
            starts: vec![start(0, 0)],
            publisher: vec![
                BatchRun {
                    key: "k0".into(),
                    items: 1,
                    attempts: 2,
                    acked: ack(1..=1),
                    ..BatchRun::default()
                },
                BatchRun {
                    key: "k1".into(),
                    items: 2,
                    attempts: 1,
                    acked: ack(2..=3),
                    ..BatchRun::default()
                },
            ],
            final_log: FinalLog {
                epoch: Some(epoch(1)),
                head: 3,
                markers,
                ..FinalLog::default()
            },
            ..Report::default()
        };
        (sc, report)
    }

    fn named(sc: &sim::Scenario, r: &Report) -> Option<Invariant> {
        check(sc, r).err().map(|v| {
            assert_eq!(v.class, Class::Safety, "{v}");
            v.invariant.unwrap()
        })
    }

    #[test]
    fn every_acknowledged_item_at_its_id_passes() {
        let (sc, r) = report(vec![(1, 0, 0), (2, 1, 0), (3, 1, 1)]);
        assert_eq!(check(&sc, &r), Ok(()));
    }

    #[test]
    fn a_lost_a_doubled_a_moved_and_an_unacknowledged_item_are_each_named() {
        let (sc, r) = report(vec![(1, 0, 0), (2, 1, 0)]);
        assert_eq!(named(&sc, &r), Some(Invariant::AckedKept));
        let (sc, r) = report(vec![(1, 0, 0), (2, 1, 0), (3, 1, 1), (4, 0, 0)]);
        assert_eq!(named(&sc, &r), Some(Invariant::RetryNeverDoubles));
        let (sc, r) = report(vec![(1, 0, 0), (2, 1, 1), (3, 1, 0)]);
        assert_eq!(named(&sc, &r), Some(Invariant::NothingRefusedAppears));
        let (sc, r) = report(vec![(1, 0, 0), (2, 1, 0), (3, 1, 1), (4, 7, 0)]);
        assert_eq!(named(&sc, &r), Some(Invariant::NothingRefusedAppears));
        let (sc, mut r) = report(vec![]);
        r.final_log.error = Some("corrupt journal".into());
        assert_eq!(named(&sc, &r), Some(Invariant::JournalOpens));
    }

    #[test]
    fn a_client_across_two_logs_and_a_reused_epoch_are_named() {
        let (sc, mut r) = report(vec![(1, 0, 0), (2, 1, 0), (3, 1, 1)]);
        r.starts.push(start(5_000_000, 1));
        r.clients = vec![ClientRun {
            ids: vec![1, 2],
            pub_us: vec![1_000_000, 6_000_000],
            ..ClientRun::default()
        }];
        assert_eq!(named(&sc, &r), Some(Invariant::ResetNotSkip));
        r.clients.clear();
        r.starts[1].epoch = r.starts[0].epoch;
        assert_eq!(named(&sc, &r), Some(Invariant::EpochIdentity));
    }
}

/// The invariants of several nodes on a shared log, on hand-made reports.
mod cluster_invariants {
    use std::time::Duration;

    use sim::check::{Invariant, check};
    use sim::{ClientRun, FinalLog, Report, Start};

    /// node_failover's scenario with 4 events, and a report where all went
    /// right: the log holds lines 0..4 once, one node start in its epoch,
    /// every client got 1..=4.
    fn healthy() -> (sim::Scenario, Report) {
        let mut sc = sim::scenarios::by_name("node_failover").unwrap();
        sc.events = 4;
        let epoch = wire::Epoch::from_random(9);
        let client = ClientRun {
            ids: vec![1, 2, 3, 4],
            done_at: Some(Duration::from_secs(1)),
            failovers: 1,
            ..ClientRun::default()
        };
        let report = Report {
            clients: vec![client; sc.clients.len()],
            stored_lines: (0..4).map(Some).collect(),
            final_log: FinalLog {
                epoch: Some(epoch),
                head: 4,
                fixture_done: 4,
                ..FinalLog::default()
            },
            starts: vec![Start {
                at: Duration::ZERO,
                at_us: 0,
                epoch,
                incarnation: 0,
                head: 0,
                fixture_done: 0,
                open_failures: 0,
            }],
            node_starts: vec![0],
            ..Report::default()
        };
        (sc, report)
    }

    fn broken(report: &Report, sc: &sim::Scenario) -> Option<Invariant> {
        check(sc, report).err().and_then(|v| v.invariant)
    }

    #[test]
    fn a_healthy_cluster_run_passes() {
        let (sc, report) = healthy();
        assert_eq!(check(&sc, &report), Ok(()));
    }

    #[test]
    fn a_fixture_line_stored_twice_is_named() {
        let (sc, mut report) = healthy();
        report.stored_lines = vec![Some(0), Some(1), Some(1), Some(2), Some(3)];
        assert_eq!(broken(&report, &sc), Some(Invariant::FixtureStoredOnce));
    }

    #[test]
    fn a_client_that_doubles_or_resumes_early_on_another_node_is_named() {
        let (sc, mut report) = healthy();
        report.clients[1].ids = vec![1, 2, 2, 3];
        assert_eq!(broken(&report, &sc), Some(Invariant::ExactlyOnceAcrossNodes));
        let (sc, mut report) = healthy();
        report.clients[2].duplicates = 2;
        assert_eq!(broken(&report, &sc), Some(Invariant::ExactlyOnceAcrossNodes));
    }

    #[test]
    fn a_node_serving_another_epoch_is_named() {
        let (sc, mut report) = healthy();
        report.starts[0].epoch = wire::Epoch::from_random(10);
        assert_eq!(broken(&report, &sc), Some(Invariant::EpochIdentity));
    }
}
