//! Every scenario, a few fixed seeds each, every invariant; timelines as
//! insta snapshots in the top-level `snapshots/`; determinism; "sometimes"
//! coverage of each scenario's interesting path; the failing-seed corpus.

use sim::check::check;
use sim::{Report, Scenario, run, scenarios};

const SEEDS: [u64; 3] = [1, 2, 3];

fn run_checked(sc: &Scenario, seed: u64) -> Report {
    let report = run(sc, seed);
    if let Err(v) = check(sc, &report) {
        panic!(
            "{} seed {seed}: {v}\nreplay: cargo xtask sim replay --scenario {} --seed {seed}\n{}",
            sc.name,
            sc.name,
            report.trace()
        );
    }
    report
}

fn snapshot(sc: &Scenario, report: &Report) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(sc.name, report.trace()));
}

/// `name`'s scenario for `seed`, varied per seed as a sweep runs it.
fn for_seed(name: &str, seed: u64) -> Scenario {
    scenarios::for_seed(name, seed).unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A trace without its first line (`seed N`): what the run did, so that
/// "another seed, another trace" is not true by the seed line alone.
fn body(report: &Report) -> String {
    let trace = report.trace();
    let (first, rest) = trace.split_once('\n').unwrap_or((&trace, ""));
    assert_eq!(first, format!("seed {}", report.seed));
    rest.to_string()
}

/// Runs a scenario on every seed (each its own `for_seed` variation; seed
/// 1 is the scenario as written), snapshots seed 1, checks that the seeds'
/// runs differ beyond the seed line, and returns the reports.
fn scenario(name: &str) -> Vec<Report> {
    let reports: Vec<Report> = SEEDS
        .iter()
        .map(|&seed| run_checked(&for_seed(name, seed), seed))
        .collect();
    snapshot(&for_seed(name, SEEDS[0]), &reports[0]);
    let bodies: Vec<String> = reports.iter().map(body).collect();
    for i in 0..bodies.len() {
        for j in i + 1..bodies.len() {
            assert_ne!(
                bodies[i], bodies[j],
                "{name}: seeds {} and {} ran the same",
                SEEDS[i], SEEDS[j]
            );
        }
    }
    reports
}

fn sum(reports: &[Report], f: impl Fn(&sim::ClientRun) -> u64) -> u64 {
    reports.iter().flat_map(|r| &r.clients).map(f).sum()
}

#[test]
fn normal_sse() {
    scenario("normal_sse");
}

#[test]
fn normal_ws() {
    scenario("normal_ws");
}

#[test]
fn normal_poll() {
    scenario("normal_poll");
}

#[test]
fn short_partition() {
    let r = scenario("short_partition");
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn long_partition() {
    let r = scenario("long_partition");
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn server_bounce() {
    let r = scenario("server_bounce");
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn crash_restart() {
    let r = scenario("crash_restart");
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn flapping_link() {
    let r = scenario("flapping_link");
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn latency_spikes() {
    scenario("latency_spikes");
}

#[test]
fn slow_consumer() {
    let r = scenario("slow_consumer");
    assert!(
        r.iter().map(|r| r.overflow_drops).sum::<u64>() > 0,
        "sometimes: a slow consumer dropped"
    );
}

#[test]
fn stream_missing_then_back() {
    let r = scenario("stream_missing_then_back");
    assert!(sum(&r, |c| c.fallbacks) > 0, "sometimes: a fallback");
    assert!(sum(&r, |c| c.upgrades) > 0, "sometimes: an upgrade");
}

#[test]
fn many_clients() {
    let sc = for_seed("many_clients", 1);
    assert!(sc.clients.len() >= 100);
    let r = run_checked(&sc, 1);
    assert!(r.clients.iter().map(|c| c.reconnects).sum::<u64>() > 0);
    let other = run_checked(&for_seed("many_clients", 2), 2);
    assert_ne!(body(&r), body(&other), "many_clients: seeds 1 and 2 ran the same");
}

#[test]
fn cursor_expired() {
    scenario("cursor_expired");
}

#[test]
fn one_seed_twice_gives_the_same_trace() {
    for name in [
        "flapping_link",
        "latency_spikes",
        "crash_restart",
        scenarios::SWARM,
    ] {
        let sc = for_seed(name, 7);
        let a = run(&sc, 7);
        let b = run(&sc, 7);
        assert_eq!(a.hash(), b.hash(), "{name}");
        assert_eq!(a.trace(), b.trace(), "{name}");
        assert_ne!(
            body(&a),
            body(&run(&for_seed(name, 8), 8)),
            "{name}: another seed, another trace"
        );
    }
}

/// The swarm draws a different configuration per seed: a few of them, each
/// run twice in this process, must give equal traces.
#[test]
fn swarm_seeds_give_the_same_trace_twice() {
    let unequal: Vec<u64> = (0..8)
        .filter(|&seed| {
            let sc = for_seed(scenarios::SWARM, seed);
            run(&sc, seed).trace() != run(&sc, seed).trace()
        })
        .collect();
    assert!(unequal.is_empty(), "swarm seeds {unequal:?} gave two traces");
}

/// Seeds that once failed (`sim run` appends them): they must pass forever.
#[test]
fn the_failing_seed_corpus_passes() {
    let corpus = include_str!("../corpus.txt");
    for line in corpus
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, seed) = line.split_once(' ').expect("`scenario seed` per line");
        let seed: u64 = seed.trim().parse().expect("a numeric seed");
        let sc =
            scenarios::for_seed(name, seed).unwrap_or_else(|| panic!("corpus names unknown scenario {name}"));
        run_checked(&sc, seed);
    }
}

#[test]
fn engine_faults() {
    let r = scenario("engine_faults");
    assert!(
        sum(&r, |c| c.kill_switch_trips) > 0,
        "sometimes: the kill switch trips"
    );
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn engine_restart() {
    let r = scenario("engine_restart");
    assert!(
        sum(&r, |c| c.engine_restarts) > 0,
        "sometimes: an engine restart from its checkpoint"
    );
}

#[test]
fn lossy_stream() {
    let r = scenario("lossy_stream");
    assert!(sum(&r, |c| c.gaps_repaired) > 0, "sometimes: a gap repaired");
}

#[test]
fn filtered() {
    let r = scenario("filtered");
    let sc = for_seed("filtered", 1);
    for report in &r {
        for (i, c) in report.clients.iter().enumerate() {
            let want = sc.events_for(i);
            assert_eq!(c.ids.len(), want, "client {i}");
            // The filtered ones got part of the wire, the rest all of it.
            assert_eq!(
                sc.filters.contains_key(&i),
                want < sc.total_events(),
                "client {i}"
            );
        }
    }
    assert!(sum(&r, |c| c.reconnects) > 0, "sometimes: a reconnect");
}

#[test]
fn filtered_lossy() {
    let r = scenario("filtered_lossy");
    let sc = for_seed("filtered_lossy", 1);
    for report in &r {
        for i in sc.filters.keys() {
            // Ids have holes by design: only the prev chain shows the drops.
            assert!(
                report.clients[*i].gaps_repaired > 0,
                "seed {}: filtered client {i} repaired nothing",
                report.seed
            );
        }
    }
}

#[test]
fn every_scenario_names_its_interesting_path_or_is_plain() {
    let plain = [
        "normal_sse",
        "normal_ws",
        "normal_poll",
        "latency_spikes",
        "many_clients",
        "cursor_expired",
        "log_lost",
        "log_outage",
    ];
    for sc in scenarios::all() {
        assert!(
            sc.sometimes.is_some() || plain.contains(&sc.name),
            "{} has no sometimes path",
            sc.name
        );
    }
}

#[test]
fn duplicating_stream() {
    let r = scenario("duplicating_stream");
    assert!(sum(&r, |c| c.duplicates) > 0, "sometimes: a duplicate dropped");
}

#[test]
fn crash_mid_append() {
    let r = scenario("crash_mid_append");
    let sc = scenarios::by_name("crash_mid_append").unwrap();
    assert!(
        r.iter().any(|r| r.disk.torn_bytes > 0),
        "sometimes: a torn tail cut"
    );
    assert!(
        r.iter().any(|r| sim::Sometimes::ReplayedAck.hit(&sc, r)),
        "sometimes: a retry answered from its key"
    );
    for r in &r {
        let epochs: std::collections::BTreeSet<_> = r.starts.iter().map(|s| s.epoch).collect();
        assert_eq!(epochs.len(), 1, "a durable restart keeps its epoch");
    }
}

#[test]
fn log_lost() {
    let r = scenario("log_lost");
    for r in &r {
        assert_eq!(r.starts.len(), 2);
        assert_ne!(
            r.starts[0].epoch, r.starts[1].epoch,
            "a lost disk gives a new epoch"
        );
    }
}

/// A full disk refuses appends for a while (ENOSPC, short writes, failed
/// fsyncs): nothing refused appears, nothing acknowledged is lost, and once
/// there is space the fixture replay and the publisher finish.
#[test]
fn full_disk() {
    let sc = for_seed("full_disk", SEEDS[0]);
    let reports: Vec<Report> = SEEDS
        .iter()
        .map(|&seed| run(&for_seed("full_disk", seed), seed))
        .collect();
    assert!(
        reports.windows(2).all(|w| body(&w[0]) != body(&w[1])),
        "full_disk: two seeds ran the same"
    );
    for r in &reports {
        if let Err(v) = check(&for_seed("full_disk", r.seed), r) {
            panic!("full_disk seed {}: {v}\n{}", r.seed, r.trace());
        }
        let d = r.disk;
        assert!(d.enospc > 0 && d.short_writes > 0 && d.sync_failures > 0, "{d:?}");
    }
    assert!(
        reports.iter().any(|r| sim::Sometimes::PublisherRetry.hit(&sc, r)),
        "sometimes: a publisher retry"
    );
    snapshot(&sc, &reports[0]);
}

#[test]
fn storage_scenarios_give_the_same_trace_for_a_seed() {
    for name in ["full_disk", "crash_mid_append", "log_lost"] {
        let sc = for_seed(name, 5);
        assert_eq!(run(&sc, 5).trace(), run(&sc, 5).trace(), "{name}");
    }
}

#[test]
fn node_failover() {
    let r = scenario("node_failover");
    for report in &r {
        // Every client was on node 0 when it crashed, and moved.
        for (i, c) in report.clients.iter().enumerate() {
            assert!(
                c.failovers > 0,
                "seed {}: client {i} never failed over",
                report.seed
            );
        }
    }
}

#[test]
fn three_nodes() {
    let r = scenario("three_nodes");
    assert!(sum(&r, |c| c.failovers) > 0, "sometimes: a failover");
    // Each node started once at least, all in the log's epoch.
    for report in &r {
        for node in 0..3 {
            assert!(
                report.node_starts.contains(&node),
                "seed {}: node {node} never started",
                report.seed
            );
        }
    }
}

#[test]
fn log_outage() {
    let r = scenario("log_outage");
    for report in &r {
        // The restarted node waited for the service: it opened after LogUp.
        let up = report
            .applied
            .iter()
            .find(|(_, f)| *f == sim::Fault::LogUp)
            .map(|(t, _)| *t)
            .unwrap();
        let restart = report
            .starts
            .iter()
            .zip(&report.node_starts)
            .filter(|(_, n)| **n == 1)
            .nth(1);
        let (start, _) = restart.expect("node 1 started again");
        assert!(
            start.at >= up,
            "seed {}: node 1 opened at {:?}, before the log came back at {up:?}",
            report.seed,
            start.at
        );
        assert!(
            start.open_failures > 0,
            "seed {}: it tried while the log was down",
            report.seed
        );
    }
}
