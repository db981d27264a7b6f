//! What to simulate: the clients and their transports, the faults at
//! simulated times, the stub's settings, and what a run must show.

use std::sync::Arc;
use std::time::Duration;

use stub::Config;
use transport::{ClientConfig, ClientError, PolicyConfig, Transport};

use crate::disk::DiskPlan;
use crate::harness::{TICK, sim_clock_us};
use crate::publisher::Publishing;
use crate::report::{ClientRun, Report};

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
    /// Stop the stub and lose its disk: `Restart` starts a new log.
    LoseDisk,
    /// The scenario's [`DiskPlan`] faults on or off.
    DiskFaults(bool),
}

/// A named situation to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// One client per entry, on this transport.
    pub clients: Vec<Transport>,
    /// Streaming clients fall back to polling and probe back (`auto`, for
    /// SSE); false: each transport is strict and never switches.
    pub fallback: bool,
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
    /// The clients must stop with this error, instead.
    pub expect_error: Option<Expected>,
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
    /// The stub's disk faults (while `Fault::DiskFaults(true)`).
    pub disk: DiskPlan,
    /// A publisher POSTing keyed batches, when set.
    pub publishing: Option<Publishing>,
    /// A host the disk crashed mid-append restarts after this long (drawn
    /// between the two from the seed).
    pub restart_delay: (Duration, Duration),
}

/// The error a scenario's clients must stop with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    CursorExpired,
    /// The stub's log was replaced (a new epoch): a client holding an old
    /// cursor stops with the reset.
    EpochChanged,
}

impl Expected {
    pub fn matches(self, error: &ClientError) -> bool {
        match self {
            Expected::CursorExpired => matches!(error, ClientError::CursorExpired { .. }),
            Expected::EpochChanged => matches!(error, ClientError::EpochChanged { .. }),
        }
    }
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
    /// The publisher retried a batch (a 503, a lost answer).
    PublisherRetry,
    /// A crash left torn bytes that the next start cut.
    TornTail,
    /// A batch whose answer a crash lost was kept, and its retry was
    /// answered from its key (`replayed`).
    ReplayedAck,
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
            Sometimes::PublisherRetry => report.publisher.iter().any(|b| b.attempts > 1),
            Sometimes::TornTail => report.disk.torn_bytes > 0,
            Sometimes::ReplayedAck => report
                .publisher
                .iter()
                .any(|b| b.acked.as_ref().is_some_and(|a| a.replayed)),
        }
    }
}

impl Scenario {
    pub fn new(name: &'static str, clients: Vec<Transport>) -> Scenario {
        Scenario {
            name,
            clients,
            fallback: false,
            events: 400,
            rate: 20.0,
            faults: Vec::new(),
            stub: Config {
                heartbeat_ms: 2_000,
                retry_ms: 1_000,
                // Clients reach the stub by its turmoil host name.
                allowed_hosts: vec!["stub".into()],
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
            disk: DiskPlan::default(),
            publishing: None,
            restart_delay: (Duration::from_millis(500), Duration::from_secs(3)),
        }
    }

    /// Events every client must get: the fixture's and the publisher's.
    pub fn total_events(&self) -> usize {
        self.events + self.publishing.map_or(0, |p| p.total())
    }

    /// Every client must be at the head by then.
    pub fn deadline(&self) -> Duration {
        let publish_end = Duration::from_secs_f64(self.events as f64 / self.rate);
        self.healed_at().max(publish_end) + self.liveness
    }

    /// When the last fault happens (heals).
    pub fn healed_at(&self) -> Duration {
        self.faults.iter().map(|(t, _)| *t).max().unwrap_or_default()
    }
}

/// The client settings every scenario uses: production rules, with the
/// idle deadline scaled to the stub's 2 s heartbeat; `fallback` as the
/// scenario says.
pub fn client_config(kind: Transport, fallback: bool, seed: u64) -> ClientConfig {
    let mut c = ClientConfig::new("http://stub:8091", Arc::new(sim_clock_us));
    c.policy = PolicyConfig {
        transport: kind,
        fallback,
        probe_interval: Duration::from_secs(10),
        ..PolicyConfig::default()
    };
    c.idle_timeout = Duration::from_secs(6);
    c.poll_wait = Duration::from_secs(2);
    c.poll_limit = 200;
    c.seed = seed;
    c
}
