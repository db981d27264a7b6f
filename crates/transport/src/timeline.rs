//! The client's lifecycle as typed events with their time, for checks (the
//! simulation's invariants match on the enum) and, through `Display`, for
//! people. The wording of `Display` is free to change; no check reads it.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ClientError;
use crate::policy::{Failure, FallbackReason, Transport};

/// One step of the client's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// An attempt starts, resuming after this id.
    Connecting {
        transport: Transport,
        after: u64,
    },
    Connected {
        transport: Transport,
    },
    /// The wire's epoch, learnt from its first answer that named one (a
    /// start cursor's epoch is held from the start and not recorded). A
    /// change of it is no entry of its own: the client stops with
    /// `ClientError::EpochChanged` (`Disconnected`, then `Stopped`).
    Epoch {
        epoch: wire::Epoch,
    },
    /// An attempt failed or a session ended.
    Disconnected {
        cause: Failure,
    },
    /// The next attempt (counted since the last reset) waits this long.
    Backoff {
        attempt: u32,
        wait: Duration,
    },
    /// A healthy connection reset the backoff schedule.
    Reset,
    /// Streaming given up for polling.
    Fallback {
        reason: FallbackReason,
    },
    /// Back from polling to streaming.
    Upgrade {
        to: Transport,
    },
    /// The next attempt goes to another URL: `from` and `to` are indices in
    /// `ClientConfig::urls` as configured (not in a shuffled order).
    Failover {
        from: usize,
        to: usize,
    },
    /// While polling, a streaming attempt on this transport.
    Probe {
        transport: Transport,
    },
    ProbeFailed {
        cause: Failure,
    },
    /// These ids were missing and are being repaired by polling.
    Gap {
        missing: RangeInclusive<u64>,
    },
    /// The client stopped for good.
    Stopped {
        error: ClientError,
    },
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lifecycle::Connecting { transport, after } => {
                write!(f, "connecting: {} after id {after}", transport.as_str())
            }
            Lifecycle::Connected { transport } => write!(f, "connected: {}", transport.as_str()),
            Lifecycle::Epoch { epoch } => write!(f, "epoch: {epoch}"),
            Lifecycle::Disconnected { cause } => write!(f, "disconnected: {cause}"),
            Lifecycle::Backoff { attempt, wait } => {
                write!(f, "backoff: attempt {attempt}, wait {} ms", wait.as_millis())
            }
            Lifecycle::Reset => f.write_str("backoff reset: the connection stayed healthy"),
            Lifecycle::Fallback { reason } => write!(f, "fallback: {reason}"),
            Lifecycle::Upgrade { to } => write!(f, "upgrade: {}", to.as_str()),
            Lifecycle::Failover { from, to } => write!(f, "failover: from URL #{from} to URL #{to}"),
            Lifecycle::Probe { transport } => write!(f, "probe: {}", transport.as_str()),
            Lifecycle::ProbeFailed { cause } => write!(f, "probe failed: {cause:?}"),
            Lifecycle::Gap { missing } => write!(
                f,
                "gap: ids {}..={} missing: repairing by polling",
                missing.start(),
                missing.end()
            ),
            Lifecycle::Stopped { error } => write!(f, "stopped: {error}"),
        }
    }
}

/// A lifecycle event and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Since the client started, by tokio's clock.
    pub at: Duration,
    pub event: Lifecycle,
}

/// `event`, without the time (the simulation's trace prints the time in
/// its own column).
impl std::fmt::Display for TimelineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.event)
    }
}

const TIMELINE_CAP: usize = 10_000;

/// The shared record: the driver writes, the `Client` reads.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    started: Instant,
    entries: Arc<Mutex<Vec<TimelineEntry>>>,
}

impl Timeline {
    pub(crate) fn new(started: Instant) -> Timeline {
        Timeline {
            started,
            entries: Arc::default(),
        }
    }

    pub(crate) fn record(&self, event: Lifecycle) {
        let mut t = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a client flapping for days must not grow without end.
        if t.len() < TIMELINE_CAP {
            t.push(TimelineEntry {
                at: self.started.elapsed(),
                event,
            });
        }
    }

    pub(crate) fn entries(&self) -> Vec<TimelineEntry> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
