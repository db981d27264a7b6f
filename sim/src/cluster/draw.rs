//! The cluster swarm: each seed draws several wire nodes on one shared log
//! and a whole story for them: how many nodes and clients, which
//! transports, in which order the clients try the nodes, and a sequence of
//! faults (a node crashed and restarted, node 0 bounced or cut from some
//! clients, the log service away for a while, latency), then a liveness
//! phase without faults.

use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use transport::{Transport, UrlOrder};

use crate::{Fault, Scenario};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const KINDS: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

/// The scenario `cluster_swarm` seed `seed` draws.
pub fn draw(seed: u64) -> Scenario {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xc105_7e25_ee00_0002);
    let nodes = r.random_range(2..=3);
    let n = r.random_range(1..=6);
    let clients: Vec<Transport> = (0..n).map(|_| KINDS[r.random_range(0..3)]).collect();
    let mut sc = crate::scenarios::cluster("cluster_swarm", nodes, clients);
    sc.fallback = r.random_bool(0.3);
    sc.url_order = if r.random_bool(0.5) {
        UrlOrder::Random
    } else {
        UrlOrder::InOrder
    };
    sc.sometimes = Some(crate::Sometimes::Failover);
    sc.events = r.random_range(200..=800);
    sc.rate = r.random_range(20.0..=200.0);
    sc.random_order = r.random_bool(0.15);
    sc.client_delay = ms(r.random_range(0..=2_000));
    sc.stub.heartbeat_ms = r.random_range(500..=2_500);
    sc.stub.retry_ms = r.random_range(200..=3_000);
    sc.stub.batch_events = r.random_range(1..=64);
    sc.stub.retention = sc.events + r.random_range(0..=500);
    if r.random_bool(0.1) {
        // A node that skips events: the client repairs the gap by polling.
        sc.stub.drop_every = r.random_range(7..=50);
    }
    let mut t = ms(r.random_range(1_000..=4_000));
    for _ in 0..r.random_range(1..=4) {
        let long = ms(r.random_range(300..=12_000));
        let node = r.random_range(0..nodes);
        let (fault, heal) = match r.random_range(0..6) {
            0 | 1 => (Fault::NodeCrash(node), Fault::NodeRestart(node)),
            2 => (Fault::Bounce, Fault::Latency(Duration::ZERO)),
            3 => {
                let who = if r.random_bool(0.5) {
                    None
                } else {
                    Some(r.random_range(0..n))
                };
                (Fault::Partition(who), Fault::Repair(who))
            }
            4 => (Fault::LogDown, Fault::LogUp),
            _ => (
                Fault::Latency(ms(r.random_range(50..=1_500))),
                Fault::Latency(Duration::ZERO),
            ),
        };
        sc.faults.push((t, fault));
        t += long;
        sc.faults.push((t, heal));
        t += ms(r.random_range(0..=3_000));
    }
    let mut drawn = format!("{nodes} nodes, {n} clients {:?}, {:?}", sc.clients, sc.url_order);
    let _ = write!(
        drawn,
        ", {} events at {:.0}/s, faults {:?}",
        sc.events, sc.rate, sc.faults
    );
    sc.drawn = Some(drawn);
    sc
}
