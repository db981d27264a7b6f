//! The reconnection policy as a sans-IO state machine: time is passed in,
//! randomness comes from a seeded generator, and the answer is what to do
//! next. No runtime, no socket: it is unit-tested by plain calls.
//!
//! Rules (see ARCHITECTURE.md): capped exponential backoff (1, 2, 4, 8, 16 s
//! by default) with jitter that never crosses the cap (see
//! [`backoff_delay`]); a server's `retry:` and `Retry-After` are floors,
//! and win over the cap when above it; backoff resets only after a connection stayed healthy for
//! `healthy_after`; `max_attempts` consecutive failures stop the client
//! (-1: never); one attempt at a time; with `fallback` (the `auto`
//! preference), fallback from streaming to polling when the stream endpoint
//! is missing or streaming fails `fallback_after` times in a row, and a
//! streaming probe every `probe_interval` to upgrade. Without it the
//! transport is strict: it never switches, and a missing stream endpoint
//! stops the client.
//!
//! With several URLs (see [`urls`]): a retryable failure moves the next
//! attempt to the next URL, at once while that URL has not failed since
//! the last successful connection; only a whole round of failures backs
//! off, and the backoff's attempt counter (and `max_attempts`) counts
//! rounds. With one URL every failure is a round: the rules above, unchanged.

use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::error::ClientError;

pub use crate::error::Failure;

mod backoff;
pub mod urls;
pub use backoff::backoff_delay;
use urls::Rotation;
pub use urls::{UrlOrder, url_order};

/// The longest wait a server's `retry:` or `Retry-After` can ask for: a
/// hint past it (`Retry-After: 18446744073709551615`) is read as this, so
/// it can neither overflow the clock nor park a client for years.
pub const MAX_SERVER_HINT: Duration = Duration::from_secs(3600);

/// `now + delay`, or as late as the clock goes.
fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).unwrap_or_else(|| now + MAX_SERVER_HINT)
}

/// The transport vocabulary is the protocol's: `wire::Transport`.
pub use wire::Transport;

pub use crate::preference::{BadStart, Preference, Start, UnknownPreference};

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// The transport tried first; `Poll` means polling only.
    pub transport: Transport,
    /// Fall back from streaming to polling (and probe back): the `auto`
    /// preference. false: strict, the transport never switches.
    pub fallback: bool,
    pub initial_delay: Duration,
    /// No backoff delay exceeds it, jitter included. Only a server's
    /// explicit `retry:` or `Retry-After` above it is waited longer.
    pub max_delay: Duration,
    /// Spread, as a fraction (0.2). Below the cap jitter adds up to this
    /// fraction (a 4 s step waits 4 to 4.8 s); where that would cross
    /// `max_delay`, the delay is drawn in `[max_delay·(1 − jitter),
    /// max_delay]` (12.8 to 16 s by default) so the cap holds and clients
    /// at the cap still spread out.
    pub jitter: f64,
    /// Consecutive failed attempts before giving up; negative: never. With
    /// several URLs, consecutive rounds in which every URL failed.
    pub max_attempts: i64,
    /// A connection that stayed up this long resets the backoff.
    pub healthy_after: Duration,
    /// Consecutive streaming failures before falling back to polling.
    pub fallback_after: u32,
    /// While polling, how often to try streaming again.
    pub probe_interval: Duration,
    /// The smallest reconnection delay whatever a server says (`retry: 0`).
    pub retry_floor: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            transport: Transport::Sse,
            fallback: true,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
            jitter: 0.2,
            max_attempts: -1,
            healthy_after: Duration::from_secs(10),
            fallback_after: 3,
            probe_interval: Duration::from_secs(30),
            retry_floor: Duration::from_millis(100),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Start one attempt now, on this transport.
    Attempt(Transport),
    /// Nothing until then.
    WaitUntil(Instant),
    /// An attempt is in flight or a session is up: report its end first.
    Busy,
    /// Give up, for this reason.
    Stop(ClientError),
}

/// A lifecycle change worth a log line, a counter and a timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Backoff {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    Fallback {
        reason: FallbackReason,
    },
    Upgrade {
        to: Transport,
    },
    Reset,
    /// The next attempt goes to another URL: `from` and `to` are indices in
    /// the URLs as configured (`ClientConfig::urls`).
    Failover {
        from: usize,
        to: usize,
        reason: String,
    },
}

/// Why streaming was given up for polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The stream endpoint answered 404.
    StreamMissing,
    /// This many streaming attempts failed in a row (`fallback_after`).
    Failures(u32),
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FallbackReason::StreamMissing => f.write_str("stream endpoint missing (404)"),
            FallbackReason::Failures(n) => write!(f, "{n} streaming attempts failed in a row"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ready to start an attempt at `at`.
    Idle { at: Instant },
    /// An attempt is in flight.
    Attempting { kind: Transport, probe: bool },
    /// Connected since.
    Connected { kind: Transport, since: Instant },
}

#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    rng: ChaCha8Rng,
    phase: Phase,
    /// Consecutive failed rounds (every URL failed) since the last reset.
    failures: u32,
    urls: Rotation,
    /// Consecutive streaming failures, for the fallback rule.
    stream_failures: u32,
    /// On polling because streaming is unavailable.
    fallen_back: bool,
    next_probe: Option<Instant>,
    server_retry: Option<Duration>,
    /// Set once: the policy has stopped for good, for this reason.
    stopped: Option<ClientError>,
    notes: Vec<Note>,
}

impl Policy {
    /// A policy for one URL.
    pub fn new(config: PolicyConfig, seed: u64, now: Instant) -> Policy {
        Policy::with_urls(config, seed, now, 1, UrlOrder::InOrder)
    }

    /// A policy for `urls` URLs (at least one), tried in `order` (a
    /// [`UrlOrder::Random`] shuffle is seeded by `seed`).
    pub fn with_urls(config: PolicyConfig, seed: u64, now: Instant, urls: usize, order: UrlOrder) -> Policy {
        Policy {
            urls: Rotation::new(url_order(urls.max(1), order, seed)),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            phase: Phase::Idle { at: now },
            failures: 0,
            stream_failures: 0,
            fallen_back: false,
            next_probe: None,
            server_retry: None,
            stopped: None,
            notes: Vec::new(),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The transport to use when not probing.
    pub fn current(&self) -> Transport {
        if self.fallen_back {
            Transport::Poll
        } else {
            self.config.transport
        }
    }

    pub fn is_fallen_back(&self) -> bool {
        self.fallen_back
    }

    /// Consecutive failures since the last reset: with several URLs,
    /// consecutive rounds in which every URL failed.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The index (in the URLs as configured) of the URL the next attempt,
    /// or the current session, uses.
    pub fn current_url(&self) -> usize {
        self.urls.current()
    }

    /// Lifecycle changes since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// What to do now. Returns `Attempt` once per attempt: the caller must
    /// report `connected` or `failed` before it gets another.
    pub fn next(&mut self, now: Instant) -> Next {
        if let Some(e) = &self.stopped {
            return Next::Stop(e.clone());
        }
        match self.phase {
            Phase::Idle { at } if now < at => Next::WaitUntil(at),
            Phase::Idle { .. } => {
                let kind = self.current();
                self.phase = Phase::Attempting { kind, probe: false };
                Next::Attempt(kind)
            }
            // One attempt at a time: nothing new while one is in flight or a
            // session is up.
            Phase::Attempting { .. } | Phase::Connected { .. } => Next::Busy,
        }
    }

    /// Attempt again now (a user asked to reconnect), without counting a
    /// failure.
    pub fn restart(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Idle { .. }) {
            self.phase = Phase::Idle { at: now };
        }
    }

    /// While polling after a fallback: is it time to try streaming again?
    /// Returns the streaming kind to probe with and marks the probe started.
    pub fn probe(&mut self, now: Instant) -> Option<Transport> {
        let due = self.fallen_back && self.next_probe.is_some_and(|at| now >= at);
        if !due
            || !matches!(
                self.phase,
                Phase::Connected {
                    kind: Transport::Poll,
                    ..
                }
            )
        {
            return None;
        }
        self.next_probe = Some(now + self.config.probe_interval);
        Some(self.config.transport)
    }

    /// A probe connected: streaming is back.
    pub fn probe_succeeded(&mut self, now: Instant) {
        self.fallen_back = false;
        self.stream_failures = 0;
        self.next_probe = None;
        self.notes.push(Note::Upgrade {
            to: self.config.transport,
        });
        self.phase = Phase::Connected {
            kind: self.config.transport,
            since: now,
        };
    }

    /// The attempt succeeded (status and content type are right).
    pub fn connected(&mut self, now: Instant) {
        let kind = match self.phase {
            Phase::Attempting { kind, .. } => kind,
            _ => self.current(),
        };
        self.urls.succeeded();
        if kind.is_streaming() {
            self.stream_failures = 0;
        } else if self.fallen_back {
            // Probe once polling works, every `probe_interval` from then.
            self.next_probe = Some(now + self.config.probe_interval);
        }
        self.phase = Phase::Connected { kind, since: now };
    }

    /// A server's `retry:` hint (ms): a floor for later delays.
    pub fn retry_hint(&mut self, ms: u64) {
        let hint = Duration::from_millis(ms).min(MAX_SERVER_HINT);
        self.server_retry = Some(hint.max(self.config.retry_floor));
    }

    /// The attempt failed, or the session ended. Decides the next attempt.
    pub fn failed(&mut self, now: Instant, failure: Failure) {
        if self.stopped.is_some() {
            return;
        }
        let (kind, healthy) = match self.phase {
            Phase::Connected { kind, since } => {
                (kind, now.duration_since(since) >= self.config.healthy_after)
            }
            Phase::Attempting { kind, .. } => (kind, false),
            Phase::Idle { .. } => (self.current(), false),
        };
        if healthy {
            if self.failures > 0 {
                self.notes.push(Note::Reset);
            }
            self.failures = 0;
        }
        let (reason, retry_after) = match failure {
            Failure::Fatal(reason) => return self.stop(reason),
            Failure::StreamMissing if kind.is_streaming() && !self.config.fallback => {
                return self.stop(ClientError::StreamingMissing(kind));
            }
            Failure::StreamMissing if kind.is_streaming() => {
                // Polling is another endpoint: switch to it at once, as no
                // failure of its own.
                if !self.fallen_back {
                    self.fall_back(FallbackReason::StreamMissing);
                    self.phase = Phase::Idle { at: now };
                    return;
                }
                ("stream endpoint missing".to_owned(), None)
            }
            Failure::StreamMissing => return self.stop(ClientError::PollingMissing),
            Failure::Retry { reason, retry_after } => (reason, retry_after),
            silent @ Failure::Silent { .. } => (silent.to_string(), None),
        };
        if kind.is_streaming() && !healthy {
            self.stream_failures += 1;
            if !self.fallen_back
                && self.config.fallback
                && self.config.transport.is_streaming()
                && self.stream_failures >= self.config.fallback_after
            {
                self.fall_back(FallbackReason::Failures(self.stream_failures));
            }
        }
        let moved = self.urls.failed();
        if moved.round_over {
            self.failures += 1;
            if self.config.max_attempts >= 0 && i64::from(self.failures) > self.config.max_attempts {
                return self.stop(ClientError::GaveUp {
                    attempts: self.failures - 1,
                    last: reason,
                });
            }
        }
        if moved.from != moved.to {
            self.notes.push(Note::Failover {
                from: moved.from,
                to: moved.to,
                reason: reason.clone(),
            });
        }
        if !moved.round_over {
            // Another node, not yet failed since the last success: at once.
            self.phase = Phase::Idle { at: now };
            return;
        }
        let delay = self.delay(retry_after.map(|d| d.min(MAX_SERVER_HINT)));
        self.notes.push(Note::Backoff {
            attempt: self.failures,
            delay,
            reason,
        });
        self.phase = Phase::Idle {
            at: later(now, delay),
        };
    }

    /// A probe attempt failed: stay on polling; the session goes on.
    pub fn probe_failed(&mut self, failure: &Failure) {
        tracing::debug!(%failure, "streaming probe failed; staying on polling");
    }

    fn fall_back(&mut self, reason: FallbackReason) {
        if self.fallen_back || !self.config.fallback || !self.config.transport.is_streaming() {
            return;
        }
        self.fallen_back = true;
        self.next_probe = None;
        self.notes.push(Note::Fallback { reason });
    }

    fn stop(&mut self, reason: ClientError) {
        self.stopped = Some(reason);
    }

    /// The delay before the next attempt (the rule is in [`PolicyConfig::jitter`]
    /// and [`PolicyConfig::max_delay`]).
    fn delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let r = if self.config.jitter > 0.0 {
            self.rng.random_range(0.0..1.0)
        } else {
            0.0
        };
        backoff_delay(&self.config, self.failures, self.server_retry, retry_after, r)
    }
}
