//! The invariants every run of every scenario must keep, and the class of a
//! failure: a crash (panic or simulation error), a safety violation (an
//! event lost, doubled or out of order; a backoff rule broken) or a liveness
//! violation (a client not at the head in time after the faults stopped).

mod cluster;
mod durable;
mod engine;
mod network;

pub use network::{Seen, seen};

use std::time::Duration;

use transport::{Lifecycle, TimelineEntry};

use crate::{Broke, ClientRun, Entry, Report, Scenario};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Crash,
    Safety,
    Liveness,
}

impl Class {
    /// The runner's exit code for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Crash => 3,
            Class::Safety => 4,
            Class::Liveness => 5,
        }
    }
}

/// The log's guarantees, by name (in `durable`): a violation of one says
/// which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// The journal on the stub's disk opens, as a restart would open it.
    JournalOpens,
    /// Every acknowledged batch is in the final log at exactly its ids.
    AckedKept,
    /// No item appears at ids other than its batch's acknowledged ones,
    /// and a batch never acknowledged does not appear.
    NothingRefusedAppears,
    /// A batch retried under its key appears once.
    RetryNeverDoubles,
    /// A client across an epoch change gets the reset: it never delivers
    /// events of two logs.
    ResetNotSkip,
    /// A new log gets a new epoch; a reopened one keeps its epoch.
    EpochIdentity,
    /// After the faults, every batch is acknowledged in time.
    PublisherSettles,
    /// After the faults, the stub's fixture replay publishes all of it.
    FixtureReplayed,
    /// A client has one attempt open at a time (the network's record).
    OneAttemptAtATime,
    /// Every wait between attempts, from the real connect times, is the
    /// doubling with jitter, capped, and no shorter than `retry:`.
    BackoffObserved,
    /// A stream that reads (events or heartbeats) is never torn down.
    LiveStreamKept,
    /// A stream that reads nothing for the idle deadline is replaced.
    DeadStreamReplaced,
    /// A gap is repaired from the polling endpoint only when the stub
    /// really skipped (fault injection).
    RepairOnlyAfterSkip,
    /// A reader that keeps up is never dropped by the stub.
    FastReaderKept,
    /// A slow-consumer drop only happens to a reader behind by more than
    /// `max_lag`.
    SlowDropOnlyBehind,
    /// A stream resumes from no earlier than what the client handed over.
    ResumeAtCursor,
    /// Several nodes: the shared log holds each fixture line once, in order.
    FixtureStoredOnce,
    /// Several nodes: a client delivers each event once, in order, across
    /// its moves from node to node.
    ExactlyOnceAcrossNodes,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::JournalOpens => "journal_opens",
            Invariant::AckedKept => "acked_kept",
            Invariant::NothingRefusedAppears => "nothing_refused_appears",
            Invariant::RetryNeverDoubles => "retry_never_doubles",
            Invariant::ResetNotSkip => "reset_not_skip",
            Invariant::EpochIdentity => "epoch_identity",
            Invariant::PublisherSettles => "publisher_settles",
            Invariant::FixtureReplayed => "fixture_replayed",
            Invariant::OneAttemptAtATime => "one_attempt_at_a_time",
            Invariant::BackoffObserved => "backoff_observed",
            Invariant::LiveStreamKept => "live_stream_kept",
            Invariant::DeadStreamReplaced => "dead_stream_replaced",
            Invariant::RepairOnlyAfterSkip => "repair_only_after_skip",
            Invariant::FastReaderKept => "fast_reader_kept",
            Invariant::SlowDropOnlyBehind => "slow_drop_only_behind",
            Invariant::ResumeAtCursor => "resume_at_cursor",
            Invariant::FixtureStoredOnce => "fixture_stored_once",
            Invariant::ExactlyOnceAcrossNodes => "exactly_once_across_nodes",
        }
    }
}

/// The first invariant a run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub class: Class,
    /// Simulated time it shows at, when known.
    pub at: Option<Duration>,
    pub what: String,
    /// The log guarantee broken, for those that are one.
    pub invariant: Option<Invariant>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.class)?;
        if let Some(i) = self.invariant {
            write!(f, " [{}]", i.name())?;
        }
        match self.at {
            Some(t) => write!(f, " at {} ms: {}", t.as_millis(), self.what),
            None => write!(f, ": {}", self.what),
        }
    }
}

pub(crate) fn violation(class: Class, at: Option<Duration>, what: String) -> Violation {
    Violation {
        class,
        at,
        what,
        invariant: None,
    }
}

/// Checks every invariant; the first broken one is returned.
pub fn check(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    if scenario.nodes > 1 {
        return cluster::check(scenario, report);
    }
    if let Some(c) = &report.crashed {
        let class = class_of(c);
        let mut stuck: Vec<String> = report
            .clients
            .iter()
            .enumerate()
            .filter(|(i, r)| r.ids.len() < scenario.events_for(*i) && r.error.is_none())
            .map(|(i, r)| {
                format!(
                    "client {i} has {} of {} events",
                    r.ids.len(),
                    scenario.events_for(i)
                )
            })
            .collect();
        let short_fixture =
            report.final_log.epoch.is_some() && report.final_log.fixture_done < scenario.events;
        if short_fixture {
            stuck.push(format!(
                "the stub's fixture replay published {} of {}",
                report.final_log.fixture_done, scenario.events
            ));
        }
        // What the log shows is still checked: a broken safety rule says
        // more than the stall it may have caused.
        if class == Class::Liveness
            && let Err(v) = durable::check(scenario, report)
            && v.class == Class::Safety
        {
            return Err(v);
        }
        let mut v = violation(class, Some(report.elapsed), format!("{c} ({})", stuck.join("; ")));
        if short_fixture && class == Class::Liveness {
            v.invariant = Some(Invariant::FixtureReplayed);
        }
        return Err(v);
    }
    // Server memory is per connection and bounded per connection (one batch,
    // `conn_buffer_bytes`); what could grow is the number of connections,
    // if reconnects leaked them. A client holds at most two (a polling
    // request and a streaming probe). While a fault cuts a link one way,
    // the stub cannot know a connection is dead until the link is back (as
    // with real TCP until its timeout), and until the next event written
    // finds the peer gone: counted from 30 s after the faults.
    let windows = network::fault_windows(scenario, report);
    let settle = Duration::from_secs(30);
    let cut = |t: Duration| windows.iter().any(|(a, b)| *a <= t && t <= *b + settle);
    if let Some((at, n)) = report
        .conn_samples
        .iter()
        .find(|(t, n)| *n > 2 * scenario.clients.len() && !cut(*t))
    {
        return Err(violation(
            Class::Safety,
            Some(*at),
            format!(
                "the stub held {n} connections for {} clients: connections leak",
                scenario.clients.len()
            ),
        ));
    }
    durable::check(scenario, report)?;
    engine::check(scenario, report)?;
    // What the network saw comes before the clients' own accounts.
    network::check(scenario, report)?;
    let oracle = scenario.engine.map(|_| crate::offline_audit(scenario.events));
    let exact_server = scenario.stub.dup_every == 0 && scenario.stub.drop_every == 0;
    for (i, c) in report.clients.iter().enumerate() {
        match scenario.filters.get(&i) {
            None => exactly_once_in_order(i, c)?,
            Some(filter) => exactly_once_filtered(i, c, filter, report)?,
        }
        // A correct server never resends what a client resumed past: a
        // duplicate means the client resumed from the wrong place.
        if exact_server && c.duplicates > 0 {
            return Err(violation(
                Class::Safety,
                c.done_at,
                format!(
                    "client {i} dropped {} duplicates: resume is not exact",
                    c.duplicates
                ),
            ));
        }
        if let (Some(audit), Some(oracle)) = (&c.audit, &oracle)
            && audit != oracle
        {
            return Err(violation(
                Class::Safety,
                c.done_at,
                format!(
                    "client {i}: the engine's audit log ({} lines) differs from the fault-free run's ({} lines)",
                    audit.lines().count(),
                    oracle.lines().count()
                ),
            ));
        }
        backoff_rules(scenario, i, c)?;
        match (scenario.expect_error, &c.error) {
            (Some(want), Some(got)) if want.matches(got) => continue,
            (Some(want), got) => {
                return Err(violation(
                    Class::Safety,
                    c.done_at,
                    format!("client {i}: expected the error {want:?}, got {got:?}"),
                ));
            }
            (None, Some(e)) => {
                return Err(violation(
                    Class::Safety,
                    c.done_at,
                    format!("client {i} stopped: {e}"),
                ));
            }
            (None, None) => {}
        }
        reached_head(scenario, report, i, c)?;
    }
    Ok(())
}

/// Liveness: client `i` got every event, and by the scenario's deadline.
pub(crate) fn reached_head(
    scenario: &Scenario,
    report: &Report,
    i: usize,
    c: &ClientRun,
) -> Result<(), Violation> {
    let total = scenario.events_for(i);
    if c.ids.len() != total {
        return Err(violation(
            Class::Liveness,
            Some(report.elapsed),
            format!("client {i} got {} of {total} events", c.ids.len()),
        ));
    }
    let deadline = scenario.deadline();
    match c.done_at {
        Some(done) if done > deadline => Err(violation(
            Class::Liveness,
            Some(done),
            format!(
                "client {i} reached the head at {} ms, later than {} ms",
                done.as_millis(),
                deadline.as_millis()
            ),
        )),
        _ => Ok(()),
    }
}

/// The class of a run that broke: turmoil gives up when clients never
/// finish, which is liveness; an error or a panic is a crash.
pub(crate) fn class_of(broke: &Broke) -> Class {
    match broke {
        Broke::OutOfTime(_) => Class::Liveness,
        Broke::Error(_) | Broke::Panic(_) => Class::Crash,
    }
}

/// Every event reaches the client exactly once, in order: ids 1, 2, 3, ...
pub fn exactly_once_in_order(i: usize, c: &ClientRun) -> Result<(), Violation> {
    for (k, id) in c.ids.iter().enumerate() {
        if *id != k as u64 + 1 {
            return Err(violation(
                Class::Safety,
                c.done_at,
                format!(
                    "client {i}: event #{} has id {id} (lost, doubled or out of order)",
                    k + 1
                ),
            ));
        }
    }
    Ok(())
}

/// A filtered client got exactly the events of the final log its filter
/// matches, once each, in order.
pub fn exactly_once_filtered(
    i: usize,
    c: &ClientRun,
    filter: &wire::Filter,
    report: &Report,
) -> Result<(), Violation> {
    let log = &report.final_log;
    let want: Vec<u64> = log
        .topics
        .iter()
        .filter(|(_, kind, symbol)| filter.matches(kind, symbol.as_deref()))
        .map(|(id, _, _)| *id)
        .collect();
    // A client stops early only with an error; what it got is a prefix.
    let prefix = &want[..c.ids.len().min(want.len())];
    if c.ids.len() > want.len() || c.ids != prefix {
        let k = c.ids.iter().zip(&want).take_while(|(a, b)| a == b).count();
        return Err(violation(
            Class::Safety,
            c.done_at,
            format!(
                "client {i} ({}): event #{} has id {:?}, the filter's next event in the log is {:?} (lost, doubled or out of order)",
                filter.to_query(),
                k + 1,
                c.ids.get(k),
                want.get(k)
            ),
        ));
    }
    Ok(())
}

/// From the client's timeline (its own account, beside the network's in
/// `network`): one attempt at a time; every wait within the design's window
/// for its attempt number, with or without the server's `retry:`; attempt
/// numbers restart at 1 only after a reset.
pub fn backoff_rules(scenario: &Scenario, i: usize, c: &ClientRun) -> Result<(), Violation> {
    let mut in_flight = false;
    let mut last_attempt = 0u32;
    for entry in &c.timeline {
        let Entry::Client(TimelineEntry { at, event }) = entry else {
            continue;
        };
        let at = Some(*at);
        match event {
            Lifecycle::Connecting { .. } => {
                if in_flight {
                    return Err(violation(
                        Class::Safety,
                        at,
                        format!("client {i}: a second attempt while one is in flight"),
                    ));
                }
                in_flight = true;
            }
            Lifecycle::Disconnected { .. } | Lifecycle::Stopped { .. } => in_flight = false,
            Lifecycle::Reset => last_attempt = 0,
            Lifecycle::Backoff { attempt, wait } => {
                let windows = network::backoff_windows(scenario, *attempt);
                if !windows.iter().any(|(lo, hi)| lo <= wait && wait <= hi) {
                    let [(lo, hi), (hlo, hhi)] = windows.map(|(a, b)| (a.as_millis(), b.as_millis()));
                    return Err(violation(
                        Class::Safety,
                        at,
                        format!(
                            "client {i}: attempt {attempt} waited {} ms, outside [{lo}, {hi}] and [{hlo}, {hhi}]",
                            wait.as_millis()
                        ),
                    ));
                }
                let attempt = *attempt;
                if attempt != last_attempt + 1 {
                    return Err(violation(
                        Class::Safety,
                        at,
                        format!("client {i}: attempt {attempt} after attempt {last_attempt}"),
                    ));
                }
                last_attempt = attempt;
            }
            _ => {}
        }
    }
    Ok(())
}
