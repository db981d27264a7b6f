//! The client's metrics: atomics updated on the hot path, a snapshot struct
//! for JSON, and Prometheus text under the `wire_` prefix.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::time::Instant;

use crate::policy::Transport;

/// Where the client is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Connecting,
    /// Connected and replaying after the cursor.
    Replaying,
    /// Caught up with the head.
    Live,
    /// Waiting before the next attempt.
    Backoff,
    Stopped,
    Closed,
}

const STATES: [State; 6] = [
    State::Connecting,
    State::Replaying,
    State::Live,
    State::Backoff,
    State::Stopped,
    State::Closed,
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Replaying => "replaying",
            State::Live => "live",
            State::Backoff => "backoff",
            State::Stopped => "stopped",
            State::Closed => "closed",
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    transport: AtomicU8,
    state: AtomicU8,
    pub(crate) attempts: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) last_reconnect_us: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) gaps_repaired: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    pub(crate) upgrades: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    pub(crate) repairing: AtomicBool,
    latency_us: Mutex<Histogram<u64>>,
    rate: Mutex<Rate>,
}

/// Events per second over the last ten whole seconds.
#[derive(Debug)]
struct Rate {
    start: Instant,
    /// (second since start, count), newest last.
    buckets: std::collections::VecDeque<(u64, u64)>,
}

const RATE_WINDOW_S: u64 = 10;

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            transport: AtomicU8::new(0),
            state: AtomicU8::new(0),
            attempts: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_reconnect_us: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            gaps_repaired: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            repairing: AtomicBool::new(false),
            // 1 µs to 1 hour at 3 significant digits; cannot fail.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
                    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
                }),
            ),
            rate: Mutex::new(Rate {
                start: Instant::now(),
                buckets: Default::default(),
            }),
        }
    }
}

/// A copy of every figure, for `/metrics.json` and summaries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    pub wire_transport: &'static str,
    pub connection_state: State,
    pub reconnect_attempts: u64,
    /// RFC 3339, or null before the first reconnect.
    pub last_reconnect: Option<String>,
    pub messages_received: u64,
    pub message_rate: f64,
    pub average_latency_ms: f64,
    pub p50_latency_ms: f64,
    pub p99_latency_ms: f64,
    pub gaps_repaired: u64,
    pub duplicates_dropped: u64,
    pub fallbacks: u64,
    pub upgrades: u64,
    pub heartbeats: u64,
    pub repairing_gap: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn transport(&self) -> Transport {
        Transport::ALL[usize::from(self.transport.load(Relaxed)).min(2)]
    }

    pub(crate) fn set_transport(&self, kind: Transport) {
        let i = Transport::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.transport.store(i as u8, Relaxed);
    }

    pub fn state(&self) -> State {
        STATES[usize::from(self.state.load(Relaxed)).min(STATES.len() - 1)]
    }

    pub(crate) fn set_state(&self, state: State) {
        let i = STATES.iter().position(|s| *s == state).unwrap_or(0);
        self.state.store(i as u8, Relaxed);
    }

    /// One event handed to the subscriber, published at `pub_us`, received
    /// at `now_us` (both µs since the epoch).
    pub(crate) fn delivered(&self, pub_us: Option<u64>, now_us: u64) {
        self.received.fetch_add(1, Relaxed);
        if let Some(p) = pub_us {
            let _ = lock(&self.latency_us).record(now_us.saturating_sub(p).max(1));
        }
        let mut rate = lock(&self.rate);
        let second = rate.start.elapsed().as_secs();
        match rate.buckets.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => rate.buckets.push_back((second, 1)),
        }
        while rate
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + RATE_WINDOW_S < second)
        {
            rate.buckets.pop_front();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let (avg, p50, p99) = {
            let h = lock(&self.latency_us);
            if h.is_empty() {
                (0.0, 0.0, 0.0)
            } else {
                let ms = |us: f64| us / 1000.0;
                (
                    ms(h.mean()),
                    ms(h.value_at_quantile(0.5) as f64),
                    ms(h.value_at_quantile(0.99) as f64),
                )
            }
        };
        let message_rate = {
            let rate = lock(&self.rate);
            let now = rate.start.elapsed().as_secs();
            // Whole seconds only: the current one is still filling.
            let sum: u64 = rate
                .buckets
                .iter()
                .filter(|(s, _)| *s < now && *s + RATE_WINDOW_S >= now)
                .map(|(_, n)| n)
                .sum();
            sum as f64 / RATE_WINDOW_S.min(now.max(1)) as f64
        };
        let last = self.last_reconnect_us.load(Relaxed);
        Snapshot {
            wire_transport: self.transport().as_str(),
            connection_state: self.state(),
            reconnect_attempts: self.reconnects.load(Relaxed),
            last_reconnect: (last > 0)
                .then(|| {
                    i64::try_from(last)
                        .ok()
                        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
                })
                .flatten()
                .map(|t| t.to_string()),
            messages_received: self.received.load(Relaxed),
            message_rate,
            average_latency_ms: avg,
            p50_latency_ms: p50,
            p99_latency_ms: p99,
            gaps_repaired: self.gaps_repaired.load(Relaxed),
            duplicates_dropped: self.duplicates.load(Relaxed),
            fallbacks: self.fallbacks.load(Relaxed),
            upgrades: self.upgrades.load(Relaxed),
            heartbeats: self.heartbeats.load(Relaxed),
            repairing_gap: self.repairing.load(Relaxed),
        }
    }

    /// Registers every figure (as of now) under `wire_` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        use prometheus_client::encoding::EncodeLabelSet;
        use prometheus_client::metrics::family::Family;

        #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct Label {
            value: &'static str,
        }
        let s = self.snapshot();
        let reg = registry.sub_registry_with_prefix("wire");
        let one_hot = |name: &str, help: &str, values: &[&'static str], current: &str, reg: &mut Registry| {
            let family: Family<Label, Gauge> = Family::default();
            for v in values {
                family
                    .get_or_create(&Label { value: v })
                    .set(i64::from(*v == current));
            }
            reg.register(name, help, family);
        };
        one_hot(
            "transport",
            "The transport in use (1 for the current one)",
            &Transport::ALL.map(Transport::as_str),
            s.wire_transport,
            reg,
        );
        let states: Vec<&'static str> = STATES.iter().map(|s| s.as_str()).collect();
        one_hot(
            "connection_state",
            "The connection state (1 for the current one)",
            &states,
            s.connection_state.as_str(),
            reg,
        );
        let counter = |name: &str, help: &str, v: u64, reg: &mut Registry| {
            let c: prometheus_client::metrics::counter::Counter = Default::default();
            c.inc_by(v);
            reg.register(name, help, c);
        };
        counter(
            "reconnect_attempts",
            "Connection attempts after the first",
            s.reconnect_attempts,
            reg,
        );
        counter(
            "messages_received",
            "Events delivered to the subscriber",
            s.messages_received,
            reg,
        );
        counter(
            "gaps_repaired",
            "Id gaps filled from the polling endpoint",
            s.gaps_repaired,
            reg,
        );
        counter(
            "duplicates_dropped",
            "Events dropped as already delivered",
            s.duplicates_dropped,
            reg,
        );
        counter(
            "fallbacks",
            "Switches from streaming to polling",
            s.fallbacks,
            reg,
        );
        counter(
            "upgrades",
            "Switches from polling back to streaming",
            s.upgrades,
            reg,
        );
        counter("heartbeats", "Server heartbeats received", s.heartbeats, reg);
        let gauge_f = |name: &str, help: &str, v: f64, reg: &mut Registry| {
            let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
            g.set(v);
            reg.register(name, help, g);
        };
        gauge_f(
            "message_rate",
            "Events per second over the last 10 s",
            s.message_rate,
            reg,
        );
        gauge_f(
            "latency_average_ms",
            "Mean publish-to-receipt latency",
            s.average_latency_ms,
            reg,
        );
        gauge_f(
            "latency_p50_ms",
            "Median publish-to-receipt latency",
            s.p50_latency_ms,
            reg,
        );
        gauge_f(
            "latency_p99_ms",
            "99th percentile publish-to-receipt latency",
            s.p99_latency_ms,
            reg,
        );
        gauge_f(
            "last_reconnect_timestamp_seconds",
            "When the client last reconnected (Unix time)",
            self.last_reconnect_us.load(Relaxed) as f64 / 1e6,
            reg,
        );
    }

    /// Prometheus text of these metrics alone.
    pub fn prometheus(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
