//! Deterministic simulation of tickwire: the stub and its clients run under
//! turmoil, in simulated time, through partitions, holds, bounces, crashes,
//! latency spikes and a missing stream endpoint; invariants check the result.
//!
//! A run is a function of a [`Scenario`] and a seed. The same seed gives the
//! same trace, byte for byte.

pub mod check;
pub mod net;
pub mod scenarios;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stub::{Config, Log, Pace, Stub};
use transport::{Client, ClientConfig, PolicyConfig, TimelineEntry, Transport};

/// The simulated clock for publish times and latency, in µs since the epoch.
fn sim_clock_us() -> u64 {
    turmoil::since_epoch().map_or(0, |d| d.as_micros() as u64)
}

/// The simulation's tick: 10 ms. Every tick is a step of every host, so a
/// coarser tick runs faster; timelines are accurate to one tick.
pub const TICK: Duration = Duration::from_millis(10);

/// Something that happens to the system at a simulated time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Cut the link between the stub and client `i` (all when `None`).
    Partition(Option<usize>),
    Repair(Option<usize>),
    /// Queue messages on every link; `Release` delivers them in order.
    Hold,
    Release,
    /// Restart the stub's software at once.
    Bounce,
    /// Stop the stub; `Restart` brings it back.
    Crash,
    Restart,
    /// Turn `/stream` and `/ws` off (404) or on.
    StreamingOff,
    StreamingOn,
    /// Message latency up to this on every link (zero: back to normal).
    Latency(Duration),
}

/// A named situation to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// One client per entry, on this transport.
    pub clients: Vec<Transport>,
    /// Fixture events the stub publishes (the first N of the default day).
    pub events: usize,
    /// Publishing rate, events per simulated second.
    pub rate: f64,
    /// Faults at simulated times; the last one heals everything.
    pub faults: Vec<(Duration, Fault)>,
    pub stub: Config,
    /// Client 0 reads one event per this much simulated time (slow consumer).
    pub slow_reader: Option<Duration>,
    /// Every client must reach the head within this after the last fault.
    pub liveness: Duration,
    /// The clients must stop with an error containing this, instead.
    pub expect_error: Option<&'static str>,
    /// Messages may overtake each other across links.
    pub random_order: bool,
    /// Clients start this long after the stub.
    pub client_delay: Duration,
    /// Client 0 runs the decision engine (wire mode, with audit log and
    /// checkpoints); when `Some(t)`, the engine is killed at `t` and
    /// restarted from its checkpoint.
    pub engine: Option<Option<Duration>>,
    /// The simulation step: [`TICK`] unless a scenario with many hosts
    /// trades timeline resolution for speed.
    pub tick: Duration,
    /// The interesting path this scenario exists for: it must happen in at
    /// least one seed of a sweep, or the sweep fails.
    pub sometimes: Option<Sometimes>,
}

/// A scenario's interesting path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sometimes {
    Reconnect,
    GapRepair,
    DuplicateDropped,
    Fallback,
    Upgrade,
    SlowConsumerDrop,
    KillSwitch,
    EngineRestart,
}

impl Sometimes {
    /// Whether this run took the path.
    pub fn hit(self, report: &Report) -> bool {
        let any = |f: &dyn Fn(&ClientRun) -> u64| report.clients.iter().any(|c| f(c) > 0);
        match self {
            Sometimes::Reconnect => any(&|c| c.reconnects),
            Sometimes::GapRepair => any(&|c| c.gaps_repaired),
            Sometimes::DuplicateDropped => any(&|c| c.duplicates),
            Sometimes::Fallback => any(&|c| c.fallbacks),
            Sometimes::Upgrade => any(&|c| c.upgrades),
            Sometimes::SlowConsumerDrop => report.overflow_drops > 0,
            Sometimes::KillSwitch => any(&|c| c.kill_switch_trips),
            Sometimes::EngineRestart => any(&|c| c.engine_restarts),
        }
    }
}

/// The engine settings of the simulation: the defaults, with a daily loss
/// limit small enough that the default day trips the kill switch.
pub fn engine_config() -> decision::Config {
    let mut c = decision::Config::default();
    c.risk.daily_loss_limit = 50.0;
    c
}

/// The fault-free oracle: the audit log of the engine run straight over the
/// first `events` fixture events.
pub fn offline_audit(events: usize) -> String {
    let mut engine = decision::Engine::new(engine_config()).unwrap_or_else(|e| panic!("engine config: {e}"));
    let mut out = String::new();
    let payloads = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap_or_default();
    for (i, payload) in payloads.into_iter().take(events).enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            payload,
        };
        for r in engine.on_event(&event, decision::FeedHealth::Live) {
            out += &r.to_json_line();
            out.push('\n');
        }
    }
    out
}

impl Scenario {
    pub fn new(name: &'static str, clients: Vec<Transport>) -> Scenario {
        Scenario {
            name,
            clients,
            events: 400,
            rate: 20.0,
            faults: Vec::new(),
            stub: Config {
                heartbeat_ms: 2_000,
                retry_ms: 1_000,
                ..Config::default()
            },
            slow_reader: None,
            liveness: Duration::from_secs(40),
            expect_error: None,
            random_order: false,
            client_delay: Duration::from_millis(100),
            engine: None,
            sometimes: None,
            tick: TICK,
        }
    }

    /// When the last fault happens (heals).
    pub fn healed_at(&self) -> Duration {
        self.faults.iter().map(|(t, _)| *t).max().unwrap_or_default()
    }
}

/// The client settings every scenario uses: production rules, with the
/// idle deadline scaled to the stub's 2 s heartbeat.
pub fn client_config(kind: Transport, seed: u64) -> ClientConfig {
    let mut c = ClientConfig::new("http://stub:8091", Arc::new(sim_clock_us));
    c.policy = PolicyConfig {
        transport: kind,
        probe_interval: Duration::from_secs(10),
        ..PolicyConfig::default()
    };
    c.idle_timeout = Duration::from_secs(6);
    c.poll_wait = Duration::from_secs(2);
    c.poll_limit = 200;
    c.seed = seed;
    c
}

/// What one client saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRun {
    pub kind: Option<Transport>,
    pub ids: Vec<u64>,
    /// Simulated time when the last event arrived.
    pub done_at: Option<Duration>,
    pub error: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    pub reconnects: u64,
    pub fallbacks: u64,
    pub upgrades: u64,
    pub gaps_repaired: u64,
    pub duplicates: u64,
    /// The engine's audit log, for the client that ran it.
    pub audit: Option<String>,
    pub kill_switch_trips: u64,
    pub engine_restarts: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub clients: Vec<ClientRun>,
    /// Faults as applied, at simulated times.
    pub applied: Vec<(Duration, String)>,
    /// The stub's slow-consumer drops, summed over its restarts.
    pub overflow_drops: u64,
    /// Simulated time at the end.
    pub elapsed: Duration,
    /// The most connections the stub held at once (sampled every second).
    pub max_connections: usize,
    /// A panic or a turmoil error, if the run itself broke.
    pub crashed: Option<String>,
}

impl Report {
    /// A readable trace of the whole run; equal traces mean equal runs.
    pub fn trace(&self) -> String {
        let mut out = format!(
            "seed {}\nslow-consumer drops {}\n",
            self.seed, self.overflow_drops
        );
        for (t, f) in &self.applied {
            out += &format!("{:>8} fault {f}\n", t.as_millis());
        }
        for (i, c) in self.clients.iter().enumerate() {
            out += &format!(
                "client {i} {:?}: {} events, done at {:?}, error {:?}\n",
                c.kind,
                c.ids.len(),
                c.done_at.map(|d| d.as_millis()),
                c.error
            );
            out += &format!("  ids {}\n", ranges(&c.ids));
            if let Some(audit) = &c.audit {
                out += &format!(
                    "  engine: {} audit lines, kill switch trips {}, restarts {}\n",
                    audit.lines().count(),
                    c.kill_switch_trips,
                    c.engine_restarts
                );
                for line in audit.lines() {
                    out += &format!("    {line}\n");
                }
            }
            for t in &c.timeline {
                out += &format!("  {:>8} {}: {}\n", t.at_ms, t.what, t.why);
            }
        }
        out
    }

    /// FNV-1a of the trace.
    pub fn hash(&self) -> u64 {
        self.trace().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// Ids as compact ranges: `1..=200, 202`.
pub fn ranges(ids: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}..={}", ids[i], ids[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// State the harness shares with the simulated hosts.
#[derive(Default)]
struct Shared {
    stub: Option<Stub>,
    streaming: bool,
    drops_before: u64,
    clients: Vec<ClientRun>,
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let payloads: Vec<wire::Payload> = wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap_or_default()
        .into_iter()
        .take(scenario.events)
        .collect();
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_461_800))
        .tick_duration(scenario.tick)
        .simulation_duration(Duration::from_secs(3600))
        // Room for every client's connection in the accept queue.
        .tcp_capacity(64.max(scenario.clients.len() * 4))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5));
    if scenario.random_order {
        builder.enable_random_order();
    }
    let mut sim = builder.build();
    let shared = Rc::new(RefCell::new(Shared {
        streaming: !scenario
            .faults
            .iter()
            .any(|(t, f)| *t == Duration::ZERO && *f == Fault::StreamingOff),
        clients: vec![ClientRun::default(); scenario.clients.len()],
        ..Shared::default()
    }));

    let host_shared = shared.clone();
    let stub_config = scenario.stub.clone();
    let rate = scenario.rate;
    let host_payloads = payloads.clone();
    sim.host("stub", move || {
        let shared = host_shared.clone();
        let config = stub_config.clone();
        let payloads = host_payloads.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind("0.0.0.0:8091").await?;
            let stub = Stub::new(config.clone(), Log::new(config.retention), Arc::new(sim_clock_us));
            {
                let mut s = shared.borrow_mut();
                if let Some(old) = s.stub.take() {
                    s.drops_before += overflow_drops(&old);
                }
                stub.set_streaming(s.streaming);
                s.stub = Some(stub.clone());
            }
            tokio::spawn(stub::replay(stub.clone(), payloads, Pace::Rate(rate)));
            stub::serve(net::Listener(listener), stub, std::future::pending()).await;
            Ok(())
        }
    });

    for (i, &kind) in scenario.clients.iter().enumerate() {
        let shared = shared.clone();
        if i == 0
            && let Some(kill_at) = scenario.engine
        {
            let config = client_config(kind, seed.wrapping_mul(31));
            let total = payloads.len() as u64;
            let delay = scenario.client_delay;
            let dir = std::env::temp_dir().join(format!(
                "tickwire-sim-{}-{seed}-{}",
                scenario.name,
                std::process::id()
            ));
            sim.client("client0", async move {
                tokio::time::sleep(delay).await;
                let run = engine_client(config, total, kill_at, &dir).await;
                let _ = std::fs::remove_dir_all(&dir);
                shared.borrow_mut().clients[0] = run?;
                Ok(())
            });
            continue;
        }
        let total = payloads.len() as u64;
        let slow = if i == 0 { scenario.slow_reader } else { None };
        let delay = scenario.client_delay;
        let mut config = client_config(kind, seed.wrapping_mul(31).wrapping_add(i as u64));
        if slow.is_some() {
            // A slow reader with little buffer: the server sees it fall behind.
            config.buffer = 16;
        }
        sim.client(format!("client{i}"), async move {
            tokio::time::sleep(delay).await;
            let mut client = Client::connect(net::Connect, config).map_err(|e| e.to_string())?;
            let mut sub = client.subscribe().ok_or("no subscription")?;
            let mut run = ClientRun {
                kind: Some(kind),
                ..ClientRun::default()
            };
            while (run.ids.len() as u64) < total {
                match sub.next().await {
                    Some(Ok(event)) => {
                        run.ids.push(event.id);
                        run.done_at = turmoil::sim_elapsed();
                        if let Some(d) = slow {
                            tokio::time::sleep(d).await;
                        }
                    }
                    Some(Err(e)) => {
                        run.error = Some(e.0);
                        break;
                    }
                    None => break,
                }
            }
            let m = client.metrics().snapshot();
            run.timeline = client.timeline();
            run.reconnects = m.reconnect_attempts;
            run.fallbacks = m.fallbacks;
            run.upgrades = m.upgrades;
            run.gaps_repaired = m.gaps_repaired;
            run.duplicates = m.duplicates_dropped;
            client.close().await;
            shared.borrow_mut().clients[i] = run;
            Ok(())
        });
    }

    let mut schedule = scenario.faults.clone();
    schedule.sort_by_key(|(t, _)| *t);
    let mut schedule = schedule.into_iter().peekable();
    let mut applied = Vec::new();
    let mut max_connections = 0;
    let mut next_sample = Duration::ZERO;
    let names: Vec<String> = (0..scenario.clients.len())
        .map(|i| format!("client{i}"))
        .collect();
    let crashed = loop {
        while let Some((at, fault)) = schedule.next_if(|(at, _)| *at <= sim.elapsed()) {
            applied.push((sim.elapsed(), format!("{fault:?}")));
            let _ = at;
            let targets = |c: &Option<usize>| -> Vec<String> {
                match c {
                    Some(i) => vec![names[*i].clone()],
                    None => names.clone(),
                }
            };
            match &fault {
                Fault::Partition(c) => targets(c).iter().for_each(|n| sim.partition("stub", n.as_str())),
                Fault::Repair(c) => targets(c).iter().for_each(|n| sim.repair("stub", n.as_str())),
                Fault::Hold => names.iter().for_each(|n| sim.hold("stub", n.as_str())),
                Fault::Release => names.iter().for_each(|n| sim.release("stub", n.as_str())),
                Fault::Bounce => sim.bounce("stub"),
                Fault::Crash => sim.crash("stub"),
                Fault::Restart => sim.bounce("stub"),
                Fault::StreamingOff | Fault::StreamingOn => {
                    let on = fault == Fault::StreamingOn;
                    let mut s = shared.borrow_mut();
                    s.streaming = on;
                    if let Some(stub) = &s.stub {
                        stub.set_streaming(on);
                    }
                }
                Fault::Latency(max) => sim.set_max_message_latency((*max).max(Duration::from_millis(5))),
            }
        }
        if sim.elapsed() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(stub) = &shared.borrow().stub {
                max_connections = max_connections.max(stub.connections().len());
            }
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step())) {
            Ok(Ok(true)) => break None,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => break Some(format!("simulation error: {e}")),
            Err(p) => {
                break Some(
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                );
            }
        }
    };
    let s = shared.borrow();
    Report {
        seed,
        clients: s.clients.clone(),
        applied,
        overflow_drops: s.drops_before + s.stub.as_ref().map_or(0, overflow_drops),
        elapsed: sim.elapsed(),
        max_connections,
        crashed,
    }
}

/// Client 0 with the engine: wire mode through `decision::run`, its audit
/// log and checkpoints in `dir`; killed at `kill_at` (the run future is
/// dropped mid-flight, as a crash would) and restarted from the checkpoint.
async fn engine_client(
    config: ClientConfig,
    total: u64,
    kill_at: Option<Duration>,
    dir: &std::path::Path,
) -> Result<ClientRun, Box<dyn std::error::Error>> {
    use decision::run::{Live, RunOptions};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let options = RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        max_events: None,
        until_id: Some(total),
        checkpoint_every: 50,
    };
    let kind = config.policy.transport;
    let mut run = ClientRun {
        kind: Some(kind),
        ..ClientRun::default()
    };
    let mut timeline = Vec::new();
    let mut kill_at = kill_at;
    loop {
        let engine = decision::run::restore(decision::Engine::new(engine_config())?, &options)?;
        let live = Live::new(engine);
        let outcome = match kill_at.take() {
            Some(at) => {
                let remaining = at.saturating_sub(turmoil::sim_elapsed().unwrap_or_default());
                tokio::select! {
                    biased;
                    r = decision::run::run(net::Connect, config.clone(), &live, &options, std::future::pending()) => Some(r),
                    () = tokio::time::sleep(remaining) => None,
                }
            }
            None => Some(
                decision::run::run(
                    net::Connect,
                    config.clone(),
                    &live,
                    &options,
                    std::future::pending(),
                )
                .await,
            ),
        };
        if let Some(m) = live.wire_metrics() {
            let s = m.snapshot();
            run.reconnects += s.reconnect_attempts;
            run.fallbacks += s.fallbacks;
            run.upgrades += s.upgrades;
        }
        let engine = live.engine().clone();
        match outcome {
            None => {
                run.engine_restarts += 1;
                timeline.push(TimelineEntry {
                    at_ms: turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64,
                    what: "engine killed".into(),
                    why: format!("after event {}", engine.last_event_id().unwrap_or(0)),
                });
            }
            Some(result) => {
                result?;
                let summary = engine.summary();
                run.kill_switch_trips = summary.counts.kill_switch_trips;
                run.ids = (1..=engine.last_event_id().unwrap_or(0)).collect();
                run.done_at = turmoil::sim_elapsed();
                run.audit = Some(std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default());
                run.timeline = timeline;
                return Ok(run);
            }
        }
    }
}

fn overflow_drops(stub: &Stub) -> u64 {
    stub.slow_consumer_drops()
}
