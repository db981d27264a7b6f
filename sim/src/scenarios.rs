//! The named scenarios. Each is a plain value; a run is `run(&scenario, seed)`.
//! Fault times are fixed so the snapshots read as timelines; the seed varies
//! jitter, latency and (where enabled) message order.

mod filtered;

use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use transport::Transport;

use crate::disk::DiskPlan;
use crate::publisher::Publishing;
use crate::{Expected, Fault, Scenario, Sometimes};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const MIXED: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

pub fn all() -> Vec<Scenario> {
    vec![
        normal(Transport::Sse),
        normal(Transport::Ws),
        normal(Transport::Poll),
        partition("short_partition", s(3)),
        partition("long_partition", s(20)),
        server_bounce(),
        crash_restart(),
        flapping_link(),
        latency_spikes(),
        slow_consumer(),
        stream_missing_then_back(),
        many_clients(),
        cursor_expired(),
        engine_faults(),
        engine_restart(),
        lossy_stream(),
        filtered::filtered(),
        filtered::filtered_lossy(),
        duplicating_stream(),
        full_disk(),
        crash_mid_append(),
        log_lost(),
        node_failover(),
        three_nodes(),
        log_outage(),
    ]
}

/// `nodes` wire nodes on one shared log, every client given every node.
pub fn cluster(name: &'static str, nodes: usize, clients: Vec<Transport>) -> Scenario {
    let mut sc = Scenario::new(name, clients);
    sc.nodes = nodes;
    sc.stub.allowed_hosts = (0..nodes).map(crate::cluster::node_name).collect();
    sc
}

/// Two nodes, every client on node 0 when it crashes mid-stream: each
/// moves to node 1 and goes on from its cursor; node 0 comes back later.
pub fn node_failover() -> Scenario {
    Scenario {
        events: 600,
        rate: 40.0,
        sometimes: Some(Sometimes::Failover),
        faults: vec![(s(5), Fault::NodeCrash(0)), (s(16), Fault::NodeRestart(0))],
        ..cluster("node_failover", 2, MIXED.to_vec())
    }
}

/// Three nodes tried in a seeded random order, two of them down at once
/// for a while, a bounce, and an `auto` client: whichever nodes are up
/// serve the one stream, and the log holds each line once though every
/// node replays the fixture.
pub fn three_nodes() -> Scenario {
    let mut clients = MIXED.to_vec();
    clients.push(Transport::Sse);
    Scenario {
        events: 600,
        rate: 40.0,
        fallback: true,
        url_order: transport::UrlOrder::Random,
        sometimes: Some(Sometimes::Failover),
        faults: vec![
            (s(3), Fault::NodeCrash(0)),
            (s(5), Fault::NodeCrash(1)),
            (s(8), Fault::NodeRestart(0)),
            (s(10), Fault::Bounce),
            (s(12), Fault::NodeRestart(1)),
        ],
        ..cluster("three_nodes", 3, clients)
    }
}

/// The shared log service goes away for 8 s: the nodes keep their streams
/// open on what they hold (heartbeats, no events), a node restarted
/// meanwhile waits for the service; once it is back every node catches up
/// and every client gets the rest.
pub fn log_outage() -> Scenario {
    Scenario {
        events: 500,
        rate: 40.0,
        faults: vec![
            (s(4), Fault::LogDown),
            (s(5), Fault::NodeCrash(1)),
            (s(7), Fault::NodeRestart(1)),
            (s(12), Fault::LogUp),
        ],
        ..cluster("log_outage", 2, MIXED.to_vec())
    }
}

/// The publisher every storage scenario runs: 40 keyed batches of 1 to 5
/// news items, one every 250 ms after the last was acknowledged.
fn publisher() -> Publishing {
    Publishing {
        batches: 40,
        max_items: 5,
        start: s(1),
        every: ms(250),
    }
}

/// The disk is nearly full from 4 s to 12 s: most appends get `ENOSPC`,
/// half of those after a short write, and a tenth of the syncs fail, under
/// the fixture replay and the publisher. Then there is space again, and
/// everything must settle: every acknowledged batch in the log at its ids,
/// no refused byte in it, every client at the head.
pub fn full_disk() -> Scenario {
    let mut sc = Scenario::new("full_disk", MIXED.to_vec());
    sc.disk = DiskPlan {
        full: 0.7,
        short: 0.5,
        fsync_fail: 0.1,
        crash: 0.0,
    };
    sc.faults = vec![(s(4), Fault::DiskFaults(true)), (s(12), Fault::DiskFaults(false))];
    sc.publishing = Some(publisher());
    sc.sometimes = Some(Sometimes::PublisherRetry);
    sc
}

/// From 3 s to 15 s the stub host may crash in the middle of an append
/// (3% of appends): the batch's bytes, or a prefix, are written and not
/// synced; the crash keeps a random prefix of them (a torn tail) and the
/// host restarts 0.5 to 3 s later on the same disk, resuming its log (no
/// other fault: failed syncs are `full_disk`'s). The publisher (one batch every 100 ms, about as
/// many appends as the fixture's 10 a second) retries what it was not
/// told: a batch the crash kept must be answered from its key.
pub fn crash_mid_append() -> Scenario {
    let mut sc = Scenario::new("crash_mid_append", MIXED.to_vec());
    sc.events = 200;
    sc.rate = 10.0;
    sc.disk = DiskPlan {
        full: 0.0,
        short: 0.0,
        fsync_fail: 0.0,
        crash: 0.03,
    };
    sc.faults = vec![(s(3), Fault::DiskFaults(true)), (s(15), Fault::DiskFaults(false))];
    sc.publishing = Some(Publishing {
        batches: 80,
        every: ms(100),
        ..publisher()
    });
    sc.sometimes = Some(Sometimes::ReplayedAck);
    sc
}

/// At 6 s the stub's host dies and its disk is lost; at 8 s it starts on an
/// empty disk: a new log under a new epoch. Every client holds a cursor of
/// the old epoch and must stop with the reset (`EpochChanged`), having
/// delivered nothing of the new log; the publisher's batches acknowledged
/// after the loss must all be in the new log.
pub fn log_lost() -> Scenario {
    let mut sc = Scenario::new("log_lost", MIXED.to_vec());
    sc.faults = vec![(s(6), Fault::LoseDisk), (s(8), Fault::Restart)];
    sc.publishing = Some(publisher());
    sc.expect_error = Some(Expected::EpochChanged);
    sc
}

/// Fault injection in the stub: streams send every 29th event twice, and
/// the clients are bounced by a server restart too.
pub fn duplicating_stream() -> Scenario {
    let mut sc = Scenario::new("duplicating_stream", vec![Transport::Sse, Transport::Ws]);
    sc.stub.dup_every = 29;
    sc.faults = vec![(s(6), Fault::Bounce)];
    sc.sometimes = Some(Sometimes::DuplicateDropped);
    sc
}

/// Fault injection in the stub: streams skip every 37th event. Clients see
/// the id jump and fill the gap from the polling endpoint first.
pub fn lossy_stream() -> Scenario {
    let mut sc = Scenario::new("lossy_stream", vec![Transport::Sse, Transport::Ws]);
    sc.stub.drop_every = 37;
    sc.sometimes = Some(Sometimes::GapRepair);
    sc
}

/// The decision engine on client 0 through a partition and a server crash:
/// its audit log must equal the fault-free run's (the NVDA burst around
/// event 1,300 trades and trips the 50-dollar kill switch).
pub fn engine_faults() -> Scenario {
    let mut sc = Scenario::new("engine_faults", vec![Transport::Sse, Transport::Poll]);
    sc.events = 1500;
    sc.rate = 100.0;
    sc.engine = Some(None);
    sc.faults = vec![
        (s(4), Fault::Partition(None)),
        (s(9), Fault::Repair(None)),
        (s(13), Fault::Crash),
        (s(16), Fault::Restart),
    ];
    sc.liveness = s(60);
    sc.sometimes = Some(Sometimes::KillSwitch);
    sc
}

/// The engine is killed mid-stream at 13.05 s, just after its first
/// decisions (events 1,297 to 1,299) and before the next checkpoint, and
/// restarts from its checkpoint.
pub fn engine_restart() -> Scenario {
    let mut sc = Scenario::new("engine_restart", vec![Transport::Ws]);
    sc.events = 1500;
    sc.rate = 100.0;
    sc.engine = Some(Some(ms(13_050)));
    sc.liveness = s(30);
    sc.sometimes = Some(Sometimes::EngineRestart);
    sc
}

pub fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The sweep's default: every seed draws its own configuration.
pub const SWARM: &str = "swarm";
/// Several wire nodes on one shared log, every seed its own story.
pub const CLUSTER_SWARM: &str = "cluster_swarm";

/// The scenario to run for `seed`: the swarm's draw, or the named scenario
/// with its seeded variation ([`vary`]).
pub fn for_seed(name: &str, seed: u64) -> Option<Scenario> {
    if name == SWARM {
        return Some(crate::swarm::draw(seed));
    }
    if name == CLUSTER_SWARM {
        return Some(crate::cluster::draw(seed));
    }
    let mut sc = by_name(name)?;
    vary(&mut sc, seed);
    Some(sc)
}

/// Every name `for_seed` knows: the swarm, then the named scenarios.
pub fn names() -> Vec<&'static str> {
    [SWARM, CLUSTER_SWARM]
        .into_iter()
        .chain(all().iter().map(|s| s.name))
        .collect()
}

/// A named scenario stays the same story on every seed, told at slightly
/// different moments: the clients start 50 to 550 ms after the stub and
/// every fault comes up to 400 ms later (one shift for all, so their order
/// and spacing hold). Seed 1, the snapshots' seed, is the scenario as
/// written.
pub fn vary(sc: &mut Scenario, seed: u64) {
    if seed == 1 {
        return;
    }
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x7661_7279);
    sc.client_delay = ms(r.random_range(50..=550));
    let shift = ms(r.random_range(0..=400));
    for (t, _) in &mut sc.faults {
        if !t.is_zero() {
            *t += shift;
        }
    }
}

pub fn normal(kind: Transport) -> Scenario {
    let name = match kind {
        Transport::Sse => "normal_sse",
        Transport::Ws => "normal_ws",
        Transport::Poll => "normal_poll",
    };
    Scenario::new(name, vec![kind])
}

/// Every client is cut off for `length`, then the link heals. The old
/// connections stay dead: only heartbeats and the idle deadline find out.
pub fn partition(name: &'static str, length: Duration) -> Scenario {
    Scenario {
        sometimes: Some(Sometimes::Reconnect),
        faults: vec![
            (s(5), Fault::Partition(None)),
            (s(5) + length, Fault::Repair(None)),
        ],
        ..Scenario::new(name, MIXED.to_vec())
    }
}

pub fn server_bounce() -> Scenario {
    Scenario {
        sometimes: Some(Sometimes::Reconnect),
        faults: vec![(s(6), Fault::Bounce)],
        ..Scenario::new("server_bounce", MIXED.to_vec())
    }
}

pub fn crash_restart() -> Scenario {
    Scenario {
        sometimes: Some(Sometimes::Reconnect),
        faults: vec![(s(6), Fault::Crash), (s(18), Fault::Restart)],
        ..Scenario::new("crash_restart", MIXED.to_vec())
    }
}

pub fn flapping_link() -> Scenario {
    let mut faults = Vec::new();
    for k in 0..6 {
        let t = s(4) + ms(3_000 * k);
        faults.push((t, Fault::Partition(None)));
        faults.push((t + ms(1_200), Fault::Repair(None)));
    }
    Scenario {
        sometimes: Some(Sometimes::Reconnect),
        faults,
        ..Scenario::new("flapping_link", MIXED.to_vec())
    }
}

pub fn latency_spikes() -> Scenario {
    Scenario {
        faults: vec![
            (s(4), Fault::Latency(ms(800))),
            (s(8), Fault::Latency(Duration::ZERO)),
            (s(12), Fault::Latency(ms(2_500))),
            (s(14), Fault::Latency(Duration::ZERO)),
        ],
        random_order: true,
        ..Scenario::new("latency_spikes", MIXED.to_vec())
    }
}

/// Client 0 reads one event every 50 ms while 600 a second are published:
/// it falls far behind, is dropped by the server, and resumes by cursor.
pub fn slow_consumer() -> Scenario {
    let mut sc = Scenario::new("slow_consumer", vec![Transport::Sse, Transport::Sse]);
    sc.events = 6000;
    sc.rate = 600.0;
    sc.slow_reader = Some(ms(50));
    sc.stub.max_lag = 200;
    sc.stub.lag_grace_ms = 500;
    sc.stub.batch_events = 16;
    sc.liveness = s(400);
    sc.sometimes = Some(Sometimes::SlowConsumerDrop);
    sc
}

/// Streaming is off at first (404): the clients, on `auto`, fall back to
/// polling; it comes back at 15 s and they upgrade on their next probe
/// (every 10 s), while events still flow (30 s of them).
pub fn stream_missing_then_back() -> Scenario {
    Scenario {
        sometimes: Some(Sometimes::Upgrade),
        events: 600,
        fallback: true,
        faults: vec![(Duration::ZERO, Fault::StreamingOff), (s(15), Fault::StreamingOn)],
        ..Scenario::new("stream_missing_then_back", vec![Transport::Sse, Transport::Sse])
    }
}

pub fn many_clients() -> Scenario {
    let clients = (0..102).map(|i| MIXED[i % 3]).collect();
    Scenario {
        events: 120,
        faults: vec![
            (s(3), Fault::Partition(Some(0))),
            (s(6), Fault::Repair(Some(0))),
            (s(4), Fault::Bounce),
        ],
        // Every host steps every tick, and turmoil delivers by scanning
        // every link for every host: 102 clients on 11 hosts (a partition
        // of client 0 cuts the ten on its host) and a 50 ms tick keep it
        // affordable.
        tick: ms(50),
        clients_per_host: 10,
        ..Scenario::new("many_clients", clients)
    }
}

/// The stub keeps 50 events; the clients join late and ask from the start.
pub fn cursor_expired() -> Scenario {
    let mut sc = Scenario::new("cursor_expired", MIXED.to_vec());
    sc.stub.retention = 50;
    sc.events = 200;
    sc.rate = 1000.0;
    sc.client_delay = s(2);
    sc.expect_error = Some(crate::Expected::CursorExpired);
    sc
}
