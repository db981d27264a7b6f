//! Several wire nodes on one shared log: each node a turmoil host (`stub`,
//! `stub1`, `stub2`) running the real `stub::NodeLog` on the simulation's
//! model of the log service (`stub::MemoryService`), every node replaying the same
//! fixture (the service's duplicate window keeps one copy of each line),
//! and every client given every node's URL. The faults that name the stub
//! (`Crash`, `Bounce`, `Partition`, ...) act on node 0; `NodeCrash(i)` and
//! `NodeRestart(i)` on node `i`; `LogDown` and `LogUp` on the service.

mod draw;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use stub::{MemoryService, NodeLog, NodeOptions, Pace, Stub};

pub use draw::draw;

use crate::harness::{SIM_DURATION, Shared, link_fault, sim_clock_us, sim_for, step, subscriber};
use crate::net;
use crate::report::{FinalLog, Report, Start};
use crate::scenario::{Fault, Scenario, client_config};

/// The turmoil host of node `i`: node 0 is `stub`, as in one-node runs.
pub fn node_name(i: usize) -> String {
    if i == 0 { "stub".into() } else { format!("stub{i}") }
}

/// Every node's URL, in node order.
pub fn node_urls(nodes: usize) -> Vec<String> {
    (0..nodes)
        .map(|i| format!("http://{}:8091", node_name(i)))
        .collect()
}

/// How long a node waits before opening the log again when the service is away.
const REOPEN_AFTER: Duration = Duration::from_millis(500);

/// One start of node `i`.
async fn node(
    i: usize,
    model: MemoryService,
    config: stub::Config,
    payloads: Arc<[wire::Payload]>,
    rate: f64,
    starts: Rc<RefCell<Vec<(usize, Start)>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = turmoil::net::TcpListener::bind("0.0.0.0:8091").await?;
    let options = NodeOptions {
        retention: config.retention,
        max_keys: config.key_window().max_keys,
        follow_retry: Duration::from_millis(250),
        visible_wait: Duration::from_secs(2),
    };
    let mut failures = 0;
    let log = loop {
        match NodeLog::open(model.clone(), options).await {
            Ok(log) => break log,
            Err(_) => {
                failures += 1;
                tokio::time::sleep(REOPEN_AFTER).await;
            }
        }
    };
    starts.borrow_mut().push((
        i,
        Start {
            at: turmoil::sim_elapsed().unwrap_or_default(),
            at_us: sim_clock_us(),
            epoch: stub::EventLog::epoch(&log),
            incarnation: 0,
            head: stub::EventLog::head(&log),
            fixture_done: stub::EventLog::fixture_done(&log),
            open_failures: failures,
        },
    ));
    let stub = Stub::new(config, log, Arc::new(sim_clock_us));
    tokio::spawn(stub::replay(stub.clone(), payloads.to_vec(), Pace::Rate(rate)));
    stub::serve(net::Listener(listener), stub, std::future::pending()).await;
    Ok(())
}

/// Runs a scenario with `scenario.nodes` nodes.
pub fn run(scenario: &Scenario, seed: u64, payloads: Arc<[wire::Payload]>) -> Report {
    let mut sim = sim_for(scenario, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc1a5_7e72);
    let model = MemoryService::new(wire::Epoch::from_random(rng.random()), rng.random());
    let starts: Rc<RefCell<Vec<(usize, Start)>>> = Rc::default();
    for i in 0..scenario.nodes {
        let (model, config, payloads, starts) = (
            model.clone(),
            scenario.stub.clone(),
            payloads.clone(),
            starts.clone(),
        );
        let rate = scenario.rate;
        sim.host(node_name(i), move || {
            node(
                i,
                model.clone(),
                config.clone(),
                payloads.clone(),
                rate,
                starts.clone(),
            )
        });
    }
    let shared = Rc::new(RefCell::new(Shared::new(scenario.clients.len(), rng)));
    let record = net::Record::default();
    let total = scenario.events as u64;
    for (i, &kind) in scenario.clients.iter().enumerate() {
        let mut config = client_config(
            kind,
            scenario.fallback,
            seed.wrapping_mul(31).wrapping_add(i as u64),
        );
        config.urls = node_urls(scenario.nodes);
        config.url_order = scenario.url_order;
        let connect = net::Observed {
            client: i,
            record: record.clone(),
        };
        let task = subscriber(
            i,
            kind,
            connect,
            config,
            scenario.client_delay,
            total,
            None,
            shared.clone(),
        );
        sim.client(
            format!("client{i}"),
            async move { task.await.map_err(Into::into) },
        );
    }

    let mut schedule = scenario.faults.clone();
    schedule.sort_by_key(|(t, _)| *t);
    let mut schedule = schedule.into_iter().peekable();
    let mut applied = Vec::new();
    let clients: Vec<String> = (0..scenario.clients.len())
        .map(|i| format!("client{i}"))
        .collect();
    let give_up = SIM_DURATION.min(scenario.deadline() + Duration::from_secs(60));
    let crashed = loop {
        while let Some((_, fault)) = schedule.next_if(|(at, _)| *at <= sim.elapsed()) {
            applied.push((sim.elapsed(), fault.clone()));
            if link_fault(&mut sim, &fault, &clients, &clients) {
                continue;
            }
            match &fault {
                Fault::Bounce | Fault::Restart => sim.bounce("stub"),
                Fault::Crash | Fault::LoseDisk => sim.crash("stub"),
                Fault::NodeCrash(i) => sim.crash(node_name(*i)),
                Fault::NodeRestart(i) => sim.bounce(node_name(*i)),
                Fault::LogDown => model.set_up(false),
                Fault::LogUp => model.set_up(true),
                _ => {}
            }
        }
        match step(&mut sim, give_up) {
            Ok(true) => break None,
            Ok(false) => {}
            Err(broke) => break Some(broke),
        }
    };
    let records = model.records();
    let lines: Vec<Option<u64>> = records
        .iter()
        .map(|r| match r.tag {
            stub::Tag::Fixture { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    let s = shared.borrow();
    let mut starts: Vec<(usize, Start)> = starts.borrow().clone();
    starts.sort_by_key(|(_, s)| s.at);
    Report {
        seed,
        clients: s.clients().to_vec(),
        applied,
        elapsed: sim.elapsed(),
        crashed,
        starts: starts.iter().map(|(_, s)| s.clone()).collect(),
        final_log: FinalLog {
            epoch: Some(model.epoch()),
            head: records.len() as u64,
            fixture_done: lines.iter().flatten().max().map_or(0, |l| *l as usize + 1),
            ..FinalLog::default()
        },
        stored_lines: lines,
        node_starts: starts.iter().map(|(i, _)| *i).collect(),
        conns: record.conns(),
        ..Report::default()
    }
}
