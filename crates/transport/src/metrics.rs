//! The client's metrics: `prometheus-client` metrics made once and updated
//! in place; the JSON [`Snapshot`] reads the same ones, and `register` adds
//! them, live, to any registry under the `wire_` prefix. Figures derived at
//! read time (rate, latency quantiles) come from one collector.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
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

/// The one label of the one-hot families: `wire_transport{value="sse"}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Label {
    value: &'static str,
}

/// One-hot gauges: 1 for the current value, 0 for the others.
#[derive(Debug, Clone, Default)]
struct OneHot(Family<Label, Gauge>);

impl OneHot {
    fn set(&self, values: &[&'static str], current: &str) {
        // The new value first: a scrape in between sees two, never none.
        for v in values.iter().filter(|v| **v == current) {
            self.0.get_or_create(&Label { value: v }).set(1);
        }
        for v in values.iter().filter(|v| **v != current) {
            self.0.get_or_create(&Label { value: v }).set(0);
        }
    }

    fn get(&self, values: &[&'static str]) -> usize {
        values
            .iter()
            .rposition(|v| self.0.get_or_create(&Label { value: v }).get() == 1)
            .unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct Metrics {
    transport: OneHot,
    state: OneHot,
    reconnects: Counter,
    /// Unix time in seconds (0 before the first reconnect).
    last_reconnect: Gauge<f64, AtomicU64>,
    received: Counter,
    duplicates: Counter,
    gaps_repaired: Counter,
    fallbacks: Counter,
    failovers: Counter,
    upgrades: Counter,
    heartbeats: Counter,
    repairing: Gauge,
    url_index: Gauge,
    url: Mutex<String>,
    derived: Arc<Derived>,
}

/// What is computed when read: latency quantiles and the event rate.
#[derive(Debug)]
struct Derived {
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

fn transports() -> [&'static str; 3] {
    Transport::ALL.map(Transport::as_str)
}

fn state_names() -> [&'static str; 6] {
    STATES.map(State::as_str)
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            transport: OneHot::default(),
            state: OneHot::default(),
            reconnects: Counter::default(),
            last_reconnect: Gauge::default(),
            received: Counter::default(),
            duplicates: Counter::default(),
            gaps_repaired: Counter::default(),
            fallbacks: Counter::default(),
            failovers: Counter::default(),
            upgrades: Counter::default(),
            heartbeats: Counter::default(),
            repairing: Gauge::default(),
            url_index: Gauge::default(),
            url: Mutex::default(),
            derived: Arc::new(Derived {
                // 1 µs to 1 hour at 3 significant digits; cannot fail.
                latency_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(
                    |_| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid")),
                )),
                rate: Mutex::new(Rate {
                    start: Instant::now(),
                    buckets: Default::default(),
                }),
            }),
        };
        m.set_transport(Transport::ALL[0]);
        m.set_state(State::Connecting);
        m
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
    /// Moves to another of the client's URLs.
    pub failovers: u64,
    /// The current URL's index in `ClientConfig::urls` (as configured).
    pub wire_url_index: u64,
    /// The current URL (empty before the client starts).
    pub wire_url: String,
    pub upgrades: u64,
    pub heartbeats: u64,
    pub repairing_gap: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Derived {
    /// (average, p50, p99) in ms; zeros before any latency.
    fn latency_ms(&self) -> (f64, f64, f64) {
        let h = lock(&self.latency_us);
        if h.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let ms = |us: f64| us / 1000.0;
        (
            ms(h.mean()),
            ms(h.value_at_quantile(0.5) as f64),
            ms(h.value_at_quantile(0.99) as f64),
        )
    }

    fn message_rate(&self) -> f64 {
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
    }
}

impl Collector for Derived {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (avg, p50, p99) = self.latency_ms();
        for (name, help, v) in [
            (
                "message_rate",
                "Events per second over the last 10 s",
                self.message_rate(),
            ),
            ("latency_average_ms", "Mean publish-to-receipt latency", avg),
            ("latency_p50_ms", "Median publish-to-receipt latency", p50),
            (
                "latency_p99_ms",
                "99th percentile publish-to-receipt latency",
                p99,
            ),
        ] {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn transport(&self) -> Transport {
        Transport::ALL[self.transport.get(&transports())]
    }

    pub(crate) fn set_transport(&self, kind: Transport) {
        self.transport.set(&transports(), kind.as_str());
    }

    pub fn state(&self) -> State {
        STATES[self.state.get(&state_names())]
    }

    /// Set by the client's driver; public so that what reads the state (a
    /// readiness check) can be tested without a client.
    pub fn set_state(&self, state: State) {
        self.state.set(&state_names(), state.as_str());
    }

    /// A reconnect (an attempt after the first) at `now_us` (µs since the epoch).
    pub(crate) fn reconnected(&self, now_us: u64) {
        self.reconnects.inc();
        self.last_reconnect.set(now_us as f64 / 1e6);
    }

    pub(crate) fn duplicate(&self) {
        self.duplicates.inc();
    }

    pub(crate) fn gap_repaired(&self) {
        self.gaps_repaired.inc();
    }

    pub(crate) fn fell_back(&self) {
        self.fallbacks.inc();
    }

    pub(crate) fn failed_over(&self) {
        self.failovers.inc();
    }

    /// The URL in use: its index in the configured list, and itself.
    pub(crate) fn set_url(&self, index: usize, url: &str) {
        url.clone_into(&mut lock(&self.url));
        self.url_index.set(i64::try_from(index).unwrap_or(i64::MAX));
    }

    pub(crate) fn upgraded(&self) {
        self.upgrades.inc();
    }

    pub(crate) fn heartbeat(&self) {
        self.heartbeats.inc();
    }

    pub(crate) fn set_repairing(&self, on: bool) {
        self.repairing.set(i64::from(on));
    }

    /// One event handed to the subscriber, published at `pub_us`, received
    /// at `now_us` (both µs since the epoch).
    pub(crate) fn delivered(&self, pub_us: Option<u64>, now_us: u64) {
        self.received.inc();
        if let Some(p) = pub_us {
            let _ = lock(&self.derived.latency_us).record(now_us.saturating_sub(p).max(1));
        }
        let mut rate = lock(&self.derived.rate);
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
        let (avg, p50, p99) = self.derived.latency_ms();
        let last = (self.last_reconnect.get() * 1e6).round() as i64;
        Snapshot {
            wire_transport: self.transport().as_str(),
            connection_state: self.state(),
            reconnect_attempts: self.reconnects.get(),
            last_reconnect: (last > 0)
                .then(|| jiff::Timestamp::from_microsecond(last).ok())
                .flatten()
                .map(|t| t.to_string()),
            messages_received: self.received.get(),
            message_rate: self.derived.message_rate(),
            average_latency_ms: avg,
            p50_latency_ms: p50,
            p99_latency_ms: p99,
            gaps_repaired: self.gaps_repaired.get(),
            duplicates_dropped: self.duplicates.get(),
            fallbacks: self.fallbacks.get(),
            failovers: self.failovers.get(),
            wire_url_index: u64::try_from(self.url_index.get()).unwrap_or(0),
            wire_url: lock(&self.url).clone(),
            upgrades: self.upgrades.get(),
            heartbeats: self.heartbeats.get(),
            repairing_gap: self.repairing.get() != 0,
        }
    }

    /// Adds these metrics, live (later changes show in later scrapes),
    /// under `wire_` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let reg = registry.sub_registry_with_prefix("wire");
        reg.register(
            "transport",
            "The transport in use (1 for the current one)",
            self.transport.0.clone(),
        );
        reg.register(
            "connection_state",
            "The connection state (1 for the current one)",
            self.state.0.clone(),
        );
        for (name, help, c) in [
            (
                "reconnect_attempts",
                "Connection attempts after the first",
                &self.reconnects,
            ),
            (
                "messages_received",
                "Events delivered to the subscriber",
                &self.received,
            ),
            (
                "gaps_repaired",
                "Id gaps filled from the polling endpoint",
                &self.gaps_repaired,
            ),
            (
                "duplicates_dropped",
                "Events dropped as already delivered",
                &self.duplicates,
            ),
            ("fallbacks", "Switches from streaming to polling", &self.fallbacks),
            (
                "failovers",
                "Moves to another of the client's URLs",
                &self.failovers,
            ),
            (
                "upgrades",
                "Switches from polling back to streaming",
                &self.upgrades,
            ),
            ("heartbeats", "Server heartbeats received", &self.heartbeats),
        ] {
            reg.register(name, help, c.clone());
        }
        reg.register(
            "repairing_gap",
            "1 while a gap is being repaired from the polling endpoint",
            self.repairing.clone(),
        );
        reg.register(
            "url_index",
            "The index of the URL in use in the client's list",
            self.url_index.clone(),
        );
        reg.register(
            "last_reconnect_timestamp_seconds",
            "When the client last reconnected (Unix time)",
            self.last_reconnect.clone(),
        );
        reg.register_collector(Box::new(self.derived.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn a_registry_shows_later_changes_and_the_snapshot_agrees() {
        let m = Metrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        // Every change after registering.
        m.set_transport(Transport::Ws);
        m.set_state(State::Live);
        m.delivered(Some(1), 2_001);
        m.delivered(None, 3_000);
        m.duplicate();
        m.set_repairing(true);
        m.failed_over();
        m.set_url(1, "http://b");
        let t = text(&registry);
        for line in [
            "wire_messages_received_total 2",
            "wire_duplicates_dropped_total 1",
            "wire_transport{value=\"ws\"} 1",
            "wire_transport{value=\"sse\"} 0",
            "wire_connection_state{value=\"live\"} 1",
            "wire_connection_state{value=\"connecting\"} 0",
            "wire_repairing_gap 1",
            "wire_failovers_total 1",
            "wire_url_index 1",
            "wire_latency_p99_ms 2.0",
        ] {
            assert!(t.lines().any(|l| l.starts_with(line)), "{line} in\n{t}");
        }
        let s = m.snapshot();
        assert_eq!(
            (s.wire_transport, s.connection_state, s.messages_received),
            ("ws", State::Live, 2)
        );
        assert_eq!((s.duplicates_dropped, s.repairing_gap), (1, true));
        assert_eq!(s.p99_latency_ms, 2.0);
        assert_eq!(
            (s.failovers, s.wire_url_index, s.wire_url.as_str()),
            (1, 1, "http://b")
        );
    }

    #[test]
    fn the_last_reconnect_keeps_its_microseconds() {
        let m = Metrics::default();
        assert_eq!(m.snapshot().last_reconnect, None);
        let us = 1_772_461_800_123_456;
        m.reconnected(us);
        let s = m.snapshot();
        assert_eq!(s.reconnect_attempts, 1);
        assert_eq!(
            s.last_reconnect,
            Some(jiff::Timestamp::from_microsecond(us as i64).unwrap().to_string())
        );
    }

    #[test]
    fn the_json_field_names_stay() {
        let v = serde_json::to_value(Metrics::default().snapshot()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "wire_transport",
            "connection_state",
            "reconnect_attempts",
            "last_reconnect",
            "messages_received",
            "message_rate",
            "average_latency_ms",
            "p50_latency_ms",
            "p99_latency_ms",
            "gaps_repaired",
            "duplicates_dropped",
            "fallbacks",
            "failovers",
            "wire_url_index",
            "wire_url",
            "upgrades",
            "heartbeats",
            "repairing_gap",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
    }
}
