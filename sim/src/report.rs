//! What a run produced: each client's ids, errors, counters and timeline,
//! the faults as applied; and its trace, the text that insta snapshots and
//! the determinism hash are taken of.

use std::time::Duration;

use transport::{ClientError, TimelineEntry, Transport};

use crate::disk::DiskCounts;
use crate::publisher::BatchRun;
use crate::scenario::Fault;

/// One line of a client's timeline in the simulation: the client's own
/// lifecycle, or something the harness did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Client(TimelineEntry),
    Harness { at: Duration, event: Harness },
}

/// What the harness does to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Harness {
    /// The engine's run was dropped mid-flight after this event.
    EngineKilled { after: u64 },
}

impl Entry {
    pub fn at(&self) -> Duration {
        match self {
            Entry::Client(t) => t.at,
            Entry::Harness { at, .. } => *at,
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Client(t) => write!(f, "{t}"),
            Entry::Harness {
                event: Harness::EngineKilled { after },
                ..
            } => write!(f, "engine killed: after event {after}"),
        }
    }
}

/// What one client saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRun {
    pub kind: Option<Transport>,
    pub ids: Vec<u64>,
    /// When each of `ids` was handed to the subscriber (simulated time).
    pub at: Vec<Duration>,
    /// Simulated time when the last event arrived.
    pub done_at: Option<Duration>,
    pub error: Option<ClientError>,
    pub timeline: Vec<Entry>,
    pub reconnects: u64,
    pub fallbacks: u64,
    pub upgrades: u64,
    pub gaps_repaired: u64,
    pub duplicates: u64,
    /// Moves to another wire node.
    pub failovers: u64,
    /// Each delivered event's publish time (µs), beside `ids`: which start
    /// of the stub's log it came from.
    pub pub_us: Vec<u64>,
    /// The engine's audit log, for the client that ran it.
    pub audit: Option<String>,
    pub kill_switch_trips: u64,
    pub engine_restarts: u64,
    /// The engine's incarnations (each restore and run), in order: what
    /// each restored from and really processed. `ids` is built from these.
    pub engine_runs: Vec<EngineRun>,
    /// The engine's trading state at the end (the last incarnation's).
    pub engine_state: Option<decision::TradingState>,
}

/// One incarnation of the engine: restored from its checkpoint, then run
/// until done or killed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineRun {
    /// The checkpoint's last event id it was restored from (0: none).
    pub restored: u64,
    /// The ids the engine applied, in the order it applied them (from
    /// `desk::RunOptions::on_event`).
    pub ids: Vec<u64>,
    /// Dropped mid-flight by the harness, as a crash would.
    pub killed: bool,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub clients: Vec<ClientRun>,
    /// Faults as applied, at simulated times.
    pub applied: Vec<(Duration, Fault)>,
    /// The stub's slow-consumer drops, summed over its restarts.
    pub overflow_drops: u64,
    /// Simulated time at the end.
    pub elapsed: Duration,
    /// The stub's connection count, sampled every second.
    pub conn_samples: Vec<(Duration, usize)>,
    /// How the run itself broke, if it did.
    pub crashed: Option<Broke>,
    /// The publisher's batches, in order (those it finished).
    pub publisher: Vec<BatchRun>,
    /// Every start of the stub, in order.
    pub starts: Vec<Start>,
    pub disk: DiskCounts,
    /// What the stub's disk holds at the end.
    pub final_log: FinalLog,
    /// Every connection the clients opened, as the network saw it.
    pub conns: Vec<crate::net::Conn>,
    /// The stub's head over simulated time (each change).
    pub heads: Vec<(Duration, u64)>,
    /// Several nodes on a shared log: each stored record's fixture line
    /// (`None`: not a fixture record), in sequence order.
    pub stored_lines: Vec<Option<u64>>,
    /// Several nodes: which node each of `starts` was.
    pub node_starts: Vec<usize>,
}

/// One start of the stub host: the log it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub at: Duration,
    /// Simulated µs since the Unix epoch, on the stub's clock.
    pub at_us: u64,
    pub epoch: wire::Epoch,
    /// Counts the logs: a start on an empty disk begins a new one.
    pub incarnation: u32,
    pub head: u64,
    pub fixture_done: usize,
    /// Opens that failed on a faulty disk before this one worked.
    pub open_failures: u32,
}

/// The journal on the stub's disk at the end, opened as a restart would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalLog {
    pub epoch: Option<wire::Epoch>,
    pub head: u64,
    pub fixture_done: usize,
    /// The publisher's items in it: `(id, batch, item)`, in id order.
    pub markers: Vec<(u64, usize, usize)>,
    /// Every event's id, kind and symbol, in id order: what a filtered
    /// client must receive is read from here.
    pub topics: Vec<(u64, String, Option<String>)>,
    /// The journal did not open (or not every event was readable).
    pub error: Option<String>,
}

/// A run that did not finish normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broke {
    /// Still running when turmoil's time ran out: some client never finished.
    OutOfTime(Duration),
    /// turmoil stopped with an error (a host's or a client's).
    Error(String),
    /// The simulation panicked.
    Panic(String),
}

impl std::fmt::Display for Broke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broke::OutOfTime(t) => write!(f, "still running after {} simulated s", t.as_secs()),
            Broke::Error(e) => write!(f, "simulation error: {e}"),
            Broke::Panic(p) => write!(f, "panic: {p}"),
        }
    }
}

/// One applied fault and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpan {
    /// Its place in [`Report::applied`].
    pub index: usize,
    pub from: Duration,
    /// When the first later fault that heals it came (a bounce is a
    /// moment), or the run's end.
    pub to: Duration,
    /// Whether something healed it (a bounce heals itself).
    pub healed: bool,
}

impl Report {
    /// The applied faults that `which` picks, each with its span: what the
    /// checks excuse and what the pictures shade, paired the same way.
    pub fn fault_spans(&self, which: impl Fn(&Fault) -> bool) -> Vec<FaultSpan> {
        let applied = &self.applied;
        let mut out = Vec::new();
        for (k, (t, f)) in applied.iter().enumerate() {
            if !which(f) {
                continue;
            }
            let heal = applied[k + 1..]
                .iter()
                .find(|(_, h)| f.heals(h))
                .map(|(at, _)| *at);
            let bounce = *f == Fault::Bounce;
            out.push(FaultSpan {
                index: k,
                from: *t,
                to: if bounce { *t } else { heal.unwrap_or(self.elapsed) },
                healed: heal.is_some() || bounce,
            });
        }
        out
    }

    /// A readable trace of the whole run; equal traces mean equal runs.
    pub fn trace(&self) -> String {
        let mut out = format!(
            "seed {}\nslow-consumer drops {}\n",
            self.seed, self.overflow_drops
        );
        for (t, f) in &self.applied {
            out += &format!("{:>8} fault {f:?}\n", t.as_millis());
        }
        for s in &self.starts {
            out += &format!(
                "stub start at {} ms: epoch {} (log {}), head {}, fixture {}, failed opens {}\n",
                s.at.as_millis(),
                s.epoch,
                s.incarnation,
                s.head,
                s.fixture_done,
                s.open_failures
            );
        }
        if self.disk.appends > 0 {
            let d = &self.disk;
            out += &format!(
                "disk: {} appends, {} ENOSPC, {} short writes, {} failed syncs, {} crashes ({} torn bytes kept), {} lost\n",
                d.appends, d.enospc, d.short_writes, d.sync_failures, d.crashes, d.torn_bytes, d.lost
            );
        }
        for (b, run) in self.publisher.iter().enumerate() {
            let ack = run.acked.as_ref().map_or("never acknowledged".to_string(), |a| {
                format!(
                    "acked {}..={} epoch {} at {} ms{}",
                    a.ids.start(),
                    a.ids.end(),
                    a.epoch.map_or("?".into(), |e| e.to_string()),
                    a.at.as_millis(),
                    if a.replayed { " (replayed)" } else { "" }
                )
            });
            out += &format!(
                "batch {b} {} ({} items): {} attempts, {ack}; refused {:?}\n",
                run.key, run.items, run.attempts, run.refusals
            );
        }
        let f = &self.final_log;
        out += &format!(
            "final log: epoch {}, head {}, fixture {}, {} publisher items{}\n",
            f.epoch.map_or("?".into(), |e| e.to_string()),
            f.head,
            f.fixture_done,
            f.markers.len(),
            f.error.as_ref().map_or(String::new(), |e| format!(", error {e}"))
        );
        for (i, c) in self.clients.iter().enumerate() {
            out += &format!(
                "client {i} {:?}: {} events, done at {:?}, error {:?}\n",
                c.kind,
                c.ids.len(),
                c.done_at.map(|d| d.as_millis()),
                c.error.as_ref().map(ToString::to_string)
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
                out += &format!("  {:>8} {t}\n", t.at().as_millis());
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
