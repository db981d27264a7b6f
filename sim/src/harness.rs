//! One run: the stub as a turmoil host on a durable simulated disk (a
//! bounce or a crash-restart reopens the same journal and resumes; a lost
//! disk starts a new log under a new epoch), each client a turmoil client,
//! the publisher a turmoil client, faults applied between steps at their
//! simulated times; at the end the disk's journal is read back.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use stub::{EventLog, Log, Stub};
use transport::Client;

use crate::disk::SimDisk;
mod step;

pub(crate) use step::{link_fault, sim_for, step};

use crate::engine::engine_client;
use crate::net;
use crate::publisher::{self, BatchRun};
use crate::report::{ClientRun, Entry, FinalLog, Report, Start};
use crate::scenario::{Fault, Scenario, client_config};
use crate::stub_host::Publish;

/// One client's part of a host's software.
type ClientTask = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>;

/// A subscriber: reads every event, recording what it was handed and when,
/// at the pace of a slow reader where `slow` says so.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn subscriber(
    i: usize,
    kind: transport::Transport,
    connect: net::Observed,
    config: transport::ClientConfig,
    delay: Duration,
    total: u64,
    slow: Option<Duration>,
    shared: Rc<RefCell<Shared>>,
) -> Result<(), String> {
    tokio::time::sleep(delay).await;
    let mut client = Client::connect(connect, config).map_err(|e| e.to_string())?;
    let mut client_pub_us = Vec::new();
    let mut sub = client.subscribe().ok_or("no subscription")?;
    let mut run = ClientRun {
        kind: Some(kind),
        ..ClientRun::default()
    };
    while (run.ids.len() as u64) < total {
        match sub.next().await {
            Some(Ok(event)) => {
                let at = turmoil::sim_elapsed().unwrap_or_default();
                run.ids.push(event.id);
                run.at.push(at);
                client_pub_us.push(event.pub_us.unwrap_or(0));
                run.done_at = Some(at);
                {
                    // A run that never finishes still shows how far each client got.
                    let mut s = shared.borrow_mut();
                    s.clients[i].kind = Some(kind);
                    s.clients[i].ids.push(event.id);
                    s.clients[i].at.push(at);
                }
                if let Some(d) = slow {
                    tokio::time::sleep(d).await;
                }
            }
            Some(Err(e)) => {
                run.error = Some(e);
                break;
            }
            None => break,
        }
    }
    let m = client.metrics().snapshot();
    run.timeline = client.timeline().into_iter().map(Entry::Client).collect();
    run.reconnects = m.reconnect_attempts;
    run.fallbacks = m.fallbacks;
    run.upgrades = m.upgrades;
    run.gaps_repaired = m.gaps_repaired;
    run.duplicates = m.duplicates_dropped;
    run.failovers = m.failovers;
    run.pub_us = client_pub_us;
    client.close().await;
    shared.borrow_mut().clients[i] = run;
    Ok(())
}

/// The simulated clock for publish times and latency, in µs since the epoch.
pub(crate) fn sim_clock_us() -> u64 {
    turmoil::since_epoch().map_or(0, |d| d.as_micros() as u64)
}

/// The simulation's tick: 10 ms. Every tick is a step of every host, so a
/// coarser tick runs faster; timelines are accurate to one tick.
pub const TICK: Duration = Duration::from_millis(10);

/// turmoil gives up after this much simulated time: a run still going then
/// never finished, which is a liveness failure, not a crash.
pub(crate) const SIM_DURATION: Duration = Duration::from_secs(3600);

/// State the harness shares with the simulated hosts.
pub(crate) struct Shared {
    pub(crate) stub: Option<Stub>,
    pub(crate) streaming: bool,
    pub(crate) drops_before: u64,
    clients: Vec<ClientRun>,
    /// The stub's disk: it outlives every start of the host.
    pub(crate) disk: SimDisk,
    /// The run's randomness for the harness's own draws (fresh epochs,
    /// restart delays), seeded from the run's seed.
    pub(crate) rng: ChaCha8Rng,
    pub(crate) starts: Vec<Start>,
    publisher: Vec<BatchRun>,
}

impl Shared {
    /// The state of a run without a stub disk of its own (several nodes
    /// on a shared log).
    pub(crate) fn new(clients: usize, rng: ChaCha8Rng) -> Shared {
        Shared {
            stub: None,
            streaming: true,
            drops_before: 0,
            clients: vec![ClientRun::default(); clients],
            disk: SimDisk::new(crate::disk::DiskPlan::default(), 0),
            rng,
            starts: Vec::new(),
            publisher: Vec::new(),
        }
    }

    pub(crate) fn clients(&self) -> &[ClientRun] {
        &self.clients
    }
}

/// The default day's payloads, parsed once per process.
fn default_day() -> &'static [wire::Payload] {
    static DAY: std::sync::OnceLock<Vec<wire::Payload>> = std::sync::OnceLock::new();
    DAY.get_or_init(|| wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap_or_default())
}

/// The name of the turmoil host client `i` runs on.
fn host_of(scenario: &Scenario, i: usize) -> String {
    format!("client{}", i / scenario.clients_per_host.max(1))
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let day = default_day();
    let payloads: Arc<[wire::Payload]> = day[..scenario.events.min(day.len())].into();
    if scenario.nodes > 1 {
        return crate::cluster::run(scenario, seed, payloads);
    }
    let mut sim = sim_for(scenario, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5175_d15c);
    let disk = SimDisk::new(scenario.disk, rng.random());
    let shared = Rc::new(RefCell::new(Shared {
        stub: None,
        streaming: !scenario
            .faults
            .iter()
            .any(|(t, f)| *t == Duration::ZERO && *f == Fault::StreamingOff),
        drops_before: 0,
        clients: vec![ClientRun::default(); scenario.clients.len()],
        disk: disk.clone(),
        rng,
        starts: Vec::new(),
        publisher: Vec::new(),
    }));
    let record = net::Record::default();

    let host_shared = shared.clone();
    let stub_config = scenario.stub.clone();
    let publish = if scenario.quiet.is_empty() {
        Publish::Rate(scenario.rate)
    } else {
        Publish::Due((0..payloads.len()).map(|i| scenario.due(i)).collect())
    };
    let host_payloads = payloads.clone();
    sim.host("stub", move || {
        crate::stub_host::run(
            host_shared.clone(),
            stub_config.clone(),
            host_payloads.clone(),
            publish.clone(),
        )
    });

    if let Some(plan) = scenario.publishing {
        let shared = shared.clone();
        sim.client("publisher", async move {
            publisher::publish(plan, seed, |_, run| shared.borrow_mut().publisher.push(run)).await;
            Ok(())
        });
    }

    let total = scenario.total_events() as u64;
    let mut hosts: Vec<(String, Vec<ClientTask>)> = Vec::new();
    for (i, &kind) in scenario.clients.iter().enumerate() {
        let shared = shared.clone();
        let connect = net::Observed {
            client: i,
            record: record.clone(),
        };
        let task: ClientTask = if i == 0
            && let Some(kill_at) = scenario.engine
        {
            let config = client_config(kind, scenario.fallback, seed.wrapping_mul(31));
            let delay = scenario.client_delay;
            let dir = std::env::temp_dir().join(format!(
                "tickwire-sim-{}-{seed}-{}",
                scenario.name,
                std::process::id()
            ));
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                // It works in, and removes, a directory of its own under `dir`.
                let run = engine_client(connect, config, total, kill_at, &dir).await;
                shared.borrow_mut().clients[0] = run.map_err(|e| e.to_string())?;
                Ok(())
            })
        } else {
            let slow = if i == 0 { scenario.slow_reader } else { None };
            let mut config = client_config(
                kind,
                scenario.fallback,
                seed.wrapping_mul(31).wrapping_add(i as u64),
            );
            config.filter = scenario.filters.get(&i).cloned().unwrap_or_default();
            let total = scenario.events_for(i) as u64;
            if slow.is_some() {
                // A slow reader with little buffer: the server sees it fall behind.
                config.buffer = 16;
            }
            Box::pin(subscriber(
                i,
                kind,
                connect,
                config,
                scenario.client_delay,
                total,
                slow,
                shared,
            ))
        };
        let host = host_of(scenario, i);
        match hosts.last_mut() {
            Some((name, tasks)) if *name == host => tasks.push(task),
            _ => hosts.push((host, vec![task])),
        }
    }
    for (host, tasks) in hosts {
        let tasks = RefCell::new(Some(tasks));
        sim.client(host, async move {
            let tasks = tasks.take().unwrap_or_default();
            let handles: Vec<_> = tasks.into_iter().map(tokio::task::spawn_local).collect();
            for h in handles {
                h.await.map_err(|e| e.to_string())??;
            }
            Ok(())
        });
    }

    let mut schedule = scenario.faults.clone();
    schedule.sort_by_key(|(t, _)| *t);
    let mut schedule = schedule.into_iter().peekable();
    let mut applied = Vec::new();
    let mut conn_samples = Vec::new();
    let give_up = SIM_DURATION.min(scenario.deadline() + Duration::from_secs(60));
    // A crash the disk decided (mid-append): when the host comes back.
    let mut restart_at: Option<Duration> = None;
    // The stub is stopped (crashed, its disk lost) until a restart.
    let mut down = false;
    let mut next_sample = Duration::ZERO;
    let hosts: Vec<String> = (0..scenario.clients.len())
        .map(|i| host_of(scenario, i))
        .collect();
    let mut names = hosts.clone();
    names.dedup();
    let mut heads: Vec<(Duration, u64)> = Vec::new();
    let crashed = loop {
        while let Some((_, fault)) = schedule.next_if(|(at, _)| *at <= sim.elapsed()) {
            applied.push((sim.elapsed(), fault.clone()));
            if link_fault(&mut sim, &fault, &hosts, &names) {
                continue;
            }
            match &fault {
                Fault::Bounce => sim.bounce("stub"),
                Fault::Crash => {
                    sim.crash("stub");
                    disk.crash();
                    down = true;
                }
                Fault::LoseDisk => {
                    sim.crash("stub");
                    disk.lose();
                    down = true;
                }
                // Brings a stopped stub back; a running one is left alone
                // (a second `Restart` is not a bounce in disguise).
                Fault::Restart if std::mem::take(&mut down) => sim.bounce("stub"),
                Fault::DiskFaults(on) => disk.set_faulty(*on),
                Fault::StreamingOff | Fault::StreamingOn => {
                    let on = fault == Fault::StreamingOn;
                    let mut s = shared.borrow_mut();
                    s.streaming = on;
                    if let Some(stub) = &s.stub {
                        stub.set_streaming(on);
                    }
                }
                // Faults of links (above), and of several nodes on a shared
                // log (`cluster`).
                _ => {}
            }
        }
        if disk.crashing() {
            // The disk decided the host dies mid-append: crash it now, and
            // bring it back after a delay from the seed.
            sim.crash("stub");
            disk.crash();
            down = true;
            let (lo, hi) = scenario.restart_delay;
            let delay = shared
                .borrow_mut()
                .rng
                .random_range(lo.as_millis() as u64..=hi.as_millis() as u64);
            applied.push((sim.elapsed(), Fault::Crash));
            restart_at = Some(sim.elapsed() + Duration::from_millis(delay));
        }
        if let Some(at) = restart_at
            && sim.elapsed() >= at
        {
            restart_at = None;
            if std::mem::take(&mut down) {
                applied.push((sim.elapsed(), Fault::Restart));
                sim.bounce("stub");
            }
        }
        if let Some(stub) = &shared.borrow().stub {
            let head = stub.log().head();
            if heads.last().is_none_or(|(_, h)| *h != head) {
                heads.push((sim.elapsed(), head));
            }
        }
        if sim.elapsed() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(stub) = &shared.borrow().stub {
                let n = stub.connections().len();
                conn_samples.push((sim.elapsed(), n));
            }
        }
        match step(&mut sim, give_up) {
            Ok(true) => break None,
            Ok(false) => {}
            Err(broke) => break Some(broke),
        }
    };
    let mut s = shared.borrow_mut();
    let fresh = wire::Epoch::from_random(s.rng.random());
    Report {
        seed,
        clients: s.clients.clone(),
        applied,
        overflow_drops: s.drops_before + s.stub.as_ref().map_or(0, overflow_drops),
        elapsed: sim.elapsed(),
        crashed,
        publisher: s.publisher.clone(),
        starts: s.starts.clone(),
        disk: disk.counts(),
        final_log: read_back(&disk, fresh),
        conns: record.conns(),
        conn_samples,
        heads,
        ..Report::default()
    }
}

/// What the disk's journal holds at the end, read by opening a copy of it
/// as a restarted stub would.
fn read_back(disk: &SimDisk, fresh: wire::Epoch) -> FinalLog {
    let copy = SimDisk::holding(disk.bytes());
    let log = match Log::open_on(copy.handle(), usize::MAX, fresh, stub::KeyWindow::default()) {
        Ok(log) => log,
        Err(e) => {
            return FinalLog {
                error: Some(e.to_string()),
                ..FinalLog::default()
            };
        }
    };
    let mut out = FinalLog {
        epoch: Some(log.epoch()),
        head: log.head(),
        fixture_done: log.fixture_done(),
        ..FinalLog::default()
    };
    let read = log.read_with(0, usize::MAX, &mut |e| {
        let symbol = e.topic.as_ref().map(|t| t.symbol.to_string());
        out.topics.push((e.id, e.kind.clone(), symbol));
        if let Ok(event) = wire::Event::from_json(&e.json)
            && let wire::Payload::News(n) = &event.payload
            && let Some((batch, item)) = n.headline.as_deref().and_then(publisher::parse_marker)
        {
            out.markers.push((e.id, batch, item));
        }
    });
    if let Err(e) = read {
        out.error = Some(format!(
            "the journal's events are not all held: oldest {}",
            e.oldest
        ));
    }
    out
}

fn overflow_drops(stub: &Stub) -> u64 {
    stub.slow_consumer_drops()
}
