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
    /// Drop what the stub sends to client `i` (all when `None`), one way:
    /// the client still reaches the stub. `Repair` heals it.
    Silence(Option<usize>),
    /// Several nodes: stop node `i`; `NodeRestart(i)` brings it back.
    NodeCrash(usize),
    NodeRestart(usize),
    /// Several nodes: the shared log service goes away, and comes back
    /// with everything it had stored.
    LogDown,
    LogUp,
}

impl Fault {
    /// The fault's kind, for the sweep's summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::Repair(_) => "repair",
            Fault::Hold => "hold",
            Fault::Release => "release",
            Fault::Bounce => "bounce",
            Fault::Crash => "crash",
            Fault::Restart => "restart",
            Fault::StreamingOff => "streaming_off",
            Fault::StreamingOn => "streaming_on",
            Fault::Latency(d) if d.is_zero() => "latency_normal",
            Fault::Latency(_) => "latency_spike",
            Fault::LoseDisk => "lose_disk",
            Fault::DiskFaults(true) => "disk_faults",
            Fault::DiskFaults(false) => "disk_healthy",
            Fault::Silence(_) => "one_way_partition",
            Fault::NodeCrash(_) => "node_crash",
            Fault::NodeRestart(_) => "node_restart",
            Fault::LogDown => "log_down",
            Fault::LogUp => "log_up",
        }
    }

    /// Whether this fault breaks something (rather than healing it).
    pub fn breaks(&self) -> bool {
        !matches!(
            self,
            Fault::Repair(_)
                | Fault::Release
                | Fault::Restart
                | Fault::NodeRestart(_)
                | Fault::LogUp
                | Fault::StreamingOn
                | Fault::DiskFaults(false)
        ) && *self != Fault::Latency(Duration::ZERO)
    }

    /// Whether `by` heals this fault.
    pub fn heals(&self, by: &Fault) -> bool {
        match (self, by) {
            (Fault::Partition(a) | Fault::Silence(a), Fault::Repair(b)) => a == b,
            (Fault::Hold, Fault::Release) => true,
            (Fault::Crash | Fault::LoseDisk, Fault::Restart) => true,
            (Fault::StreamingOff, Fault::StreamingOn) => true,
            (Fault::Latency(_), Fault::Latency(d)) => d.is_zero(),
            (Fault::DiskFaults(true), Fault::DiskFaults(false)) => true,
            (Fault::NodeCrash(a), Fault::NodeRestart(b)) => a == b,
            (Fault::LogDown, Fault::LogUp) => true,
            _ => false,
        }
    }
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
    /// Quiet spells in the publishing: after fixture event `n` (counted
    /// from 0), nothing for this long.
    pub quiet: Vec<(usize, Duration)>,
    /// The clients that subscribe to part of the wire, by index (the rest
    /// receive everything): each must get exactly its filter's events.
    pub filters: std::collections::BTreeMap<usize, wire::Filter>,
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
    /// What a swarm seed drew, printed with the seed (named scenarios: none).
    pub drawn: Option<String>,
    /// Clients per turmoil host: clients on one host share its link, so a
    /// partition of a client cuts its host. 1 unless a scenario with many
    /// clients trades that for speed.
    pub clients_per_host: usize,
    /// Wire nodes on one shared log (the simulation's model of JetStream):
    /// 1 is the one stub on its own disk; more runs `cluster`.
    pub nodes: usize,
    /// In which order the clients try the nodes' URLs.
    pub url_order: transport::UrlOrder,
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
    /// A client moved to another wire node.
    Failover,
    GapRepair,
    /// A filtered client found a break in its `prev` chain and repaired it.
    FilteredGapRepair,
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
    /// A client waited at the backoff cap (attempt 5 or later), as the
    /// network saw its connects.
    BackoffCap,
    /// A server's `retry:` above the backoff step was waited out.
    RetryAboveBase,
    /// A client replaced a dead stream (nothing read for the idle deadline).
    IdleDeadline,
    /// A stream stayed up through a quiet spell longer than the idle
    /// deadline: heartbeats kept it.
    QuietKept,
    /// The engine was killed in the fixture's burst and restarted.
    EngineRestartMidBurst,
    /// A batch whose answer a crash lost was kept, and its retry was
    /// answered from its key (`replayed`).
    ReplayedAck,
}

impl Sometimes {
    /// The goals a swarm sweep must reach, every one in some seed.
    pub const SWARM: [Sometimes; 10] = [
        Sometimes::BackoffCap,
        Sometimes::RetryAboveBase,
        Sometimes::IdleDeadline,
        Sometimes::QuietKept,
        Sometimes::SlowConsumerDrop,
        Sometimes::GapRepair,
        Sometimes::Fallback,
        Sometimes::Upgrade,
        Sometimes::EngineRestartMidBurst,
        Sometimes::KillSwitch,
    ];

    /// Whether this run of `scenario` took the path.
    pub fn hit(self, scenario: &Scenario, report: &Report) -> bool {
        let seen = || crate::check::seen(scenario, report);
        let any = |f: &dyn Fn(&ClientRun) -> u64| report.clients.iter().any(|c| f(c) > 0);
        match self {
            Sometimes::Reconnect => any(&|c| c.reconnects),
            Sometimes::Failover => any(&|c| c.failovers),
            Sometimes::GapRepair => seen().repaired_skip,
            Sometimes::FilteredGapRepair => report
                .clients
                .iter()
                .enumerate()
                .any(|(i, c)| scenario.filters.contains_key(&i) && c.gaps_repaired > 0),
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
            Sometimes::BackoffCap => seen().backoff_cap,
            Sometimes::RetryAboveBase => seen().retry_above_base,
            Sometimes::IdleDeadline => seen().idle_deadline,
            Sometimes::QuietKept => seen().quiet_kept,
            Sometimes::EngineRestartMidBurst => {
                matches!(scenario.engine, Some(Some(_))) && any(&|c| c.engine_restarts)
            }
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
            drawn: None,
            clients_per_host: 1,
            nodes: 1,
            url_order: transport::UrlOrder::InOrder,
            quiet: Vec::new(),
            filters: Default::default(),
        }
    }

    /// The interesting paths a sweep of this scenario must take: the
    /// swarm's goals, or the named scenario's one.
    pub fn goals(&self) -> Vec<Sometimes> {
        if self.name == crate::scenarios::SWARM {
            Sometimes::SWARM.to_vec()
        } else {
            self.sometimes.into_iter().collect()
        }
    }

    /// Events every client must get: the fixture's and the publisher's.
    pub fn total_events(&self) -> usize {
        self.events + self.publishing.map_or(0, |p| p.total())
    }

    /// The events client `i` must get: all of them, or those its filter
    /// matches (the fixture's, and the publisher's news about `SIM`).
    pub fn events_for(&self, i: usize) -> usize {
        let Some(filter) = self.filters.get(&i) else {
            return self.total_events();
        };
        let day = crate::engine::day();
        let fixture = day[..self.events.min(day.len())]
            .iter()
            .filter(|p| filter.matches_payload(p))
            .count();
        let published = if filter.matches("news", Some(crate::publisher::SYMBOL)) {
            self.publishing.map_or(0, |p| p.total())
        } else {
            0
        };
        fixture + published
    }

    /// Every client must be at the head by then.
    pub fn deadline(&self) -> Duration {
        self.settles_at() + self.liveness
    }

    /// When the fixture event `i` (from 0) is due: at the rate, plus the
    /// quiet spells before it.
    pub fn due(&self, i: usize) -> Duration {
        let quiet: Duration = self.quiet.iter().filter(|(n, _)| *n < i).map(|(_, d)| *d).sum();
        Duration::from_secs_f64(i as f64 / self.rate) + quiet
    }

    /// The faults have healed and the fixture is published: from here on
    /// every client must catch up (its catch-up time is measured from it).
    pub fn settles_at(&self) -> Duration {
        self.healed_at().max(self.due(self.events))
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
