//! The client's metrics: `prometheus-client` metrics made once and updated
//! in place; the JSON [`Snapshot`] reads the same ones, and `register` adds
//! them, live, to any registry under the `wire_` prefix. Latency is split
//! into live delivery and replay catch-up (so a backlog never looks like
//! slowness): a `wire_delivery_latency_seconds{phase}` histogram, and
//! quantiles for the JSON. Connection attempts and successful reconnects
//! are counted apart. The rate is derived at read time by one collector.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::time::Instant;

use crate::policy::Transport;

mod parts;
use parts::{Derived, Labels, OneHot, Phase, RATE_WINDOW_S, Rate, hdr, latency_histogram, latency_ms, lock};

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
    transport: OneHot,
    state: OneHot,
    /// Every connection attempt, the first included.
    attempts: Counter,
    /// Successful connections after the first successful one.
    reconnects: Counter,
    /// When the last successful reconnect was made: Unix time in seconds
    /// (0 before the first).
    last_reconnect: Gauge<f64, AtomicU64>,
    /// When the current connection opened (µs since the epoch; 0: none yet).
    connected_at_us: AtomicU64,
    /// The transports a connection was made on (bits of `Transport::ALL`).
    used: AtomicU8,
    received: Counter,
    replayed: Counter,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
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

fn transports() -> [&'static str; 3] {
    Transport::ALL.map(Transport::as_str)
}

fn state_names() -> [&'static str; 6] {
    STATES.map(State::as_str)
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            transport: OneHot::new("transport"),
            state: OneHot::new("state"),
            attempts: Counter::default(),
            reconnects: Counter::default(),
            last_reconnect: Gauge::default(),
            connected_at_us: AtomicU64::new(0),
            used: AtomicU8::new(0),
            received: Counter::default(),
            replayed: Counter::default(),
            latency: Family::new_with_constructor(latency_histogram),
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
                live_us: hdr(),
                replay_us: hdr(),
                rate: Mutex::new(Rate {
                    start: Instant::now(),
                    buckets: Default::default(),
                }),
            }),
        };
        // Both phases are there from the start, at zero.
        for phase in [Phase::Live, Phase::Replay] {
            let _ = m.latency.get_or_create(&vec![("phase", phase.as_str())]);
        }
        m.set_transport(Transport::ALL[0]);
        m.set_state(State::Connecting);
        m
    }
}

/// A copy of every figure, for `/metrics.json` and summaries. The latency
/// figures without a prefix are the live ones; `replay_*` is catch-up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    pub wire_transport: &'static str,
    /// Every transport a connection was made on, in `Transport::ALL` order
    /// (a fallback to polling makes it `["sse", "poll"]`).
    pub transports_used: Vec<&'static str>,
    pub connection_state: State,
    /// Every connection attempt, the first included, failed ones too.
    pub connection_attempts: u64,
    /// Connection attempts after the first.
    pub reconnect_attempts: u64,
    /// Successful reconnects: connections made after the first one.
    pub reconnects: u64,
    /// RFC 3339 time of the last successful reconnect, or null before one.
    pub last_reconnect: Option<String>,
    pub messages_received: u64,
    /// Of `messages_received`, those delivered as catch-up (replay).
    pub messages_replayed: u64,
    pub message_rate: f64,
    /// Live delivery latency (events published while connected and caught up).
    pub average_latency_ms: f64,
    pub p50_latency_ms: f64,
    pub p99_latency_ms: f64,
    /// Replay catch-up: the age of events older than the connection.
    pub replay_average_latency_ms: f64,
    pub replay_p99_latency_ms: f64,
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
    /// readiness check) can be tested without a client. `Replaying` means
    /// a connection (or an upgrade's) was made on the current transport.
    pub fn set_state(&self, state: State) {
        if state == State::Replaying
            && let Some(i) = Transport::ALL.iter().position(|t| *t == self.transport())
        {
            self.used.fetch_or(1 << i, Ordering::Relaxed);
        }
        self.state.set(&state_names(), state.as_str());
    }

    /// A connection attempt (each one, the first included).
    pub(crate) fn attempting(&self) {
        self.attempts.inc();
    }

    /// A connection made at `now_us` (µs since the epoch): after the first,
    /// a successful reconnect. Events older than it are catch-up.
    pub(crate) fn connected(&self, now_us: u64) {
        if self.connected_at_us.swap(now_us.max(1), Ordering::Relaxed) != 0 {
            self.reconnects.inc();
            self.last_reconnect.set(now_us as f64 / 1e6);
        }
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
    /// at `now_us` (both µs since the epoch): live if the client is caught
    /// up and the event is no older than the connection, else replay.
    pub(crate) fn delivered(&self, pub_us: Option<u64>, now_us: u64) {
        self.received.inc();
        let since = self.connected_at_us.load(Ordering::Relaxed);
        let live = self.state() == State::Live && pub_us.is_none_or(|p| p >= since);
        let phase = if live { Phase::Live } else { Phase::Replay };
        if phase == Phase::Replay {
            self.replayed.inc();
        }
        if let Some(p) = pub_us {
            let us = now_us.saturating_sub(p).max(1);
            let hdr = match phase {
                Phase::Live => &self.derived.live_us,
                Phase::Replay => &self.derived.replay_us,
            };
            let _ = lock(hdr).record(us);
            self.latency
                .get_or_create(&vec![("phase", phase.as_str())])
                .observe(us as f64 / 1e6);
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

    /// The transports a connection was made on, in `Transport::ALL` order.
    pub fn transports_used(&self) -> Vec<Transport> {
        let used = self.used.load(Ordering::Relaxed);
        Transport::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| used & (1 << i) != 0)
            .map(|(_, t)| t)
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        let (avg, p50, p99) = latency_ms(&self.derived.live_us);
        let (replay_avg, _, replay_p99) = latency_ms(&self.derived.replay_us);
        let last = (self.last_reconnect.get() * 1e6).round() as i64;
        let attempts = self.attempts.get();
        Snapshot {
            wire_transport: self.transport().as_str(),
            transports_used: self
                .transports_used()
                .into_iter()
                .map(Transport::as_str)
                .collect(),
            connection_state: self.state(),
            connection_attempts: attempts,
            reconnect_attempts: attempts.saturating_sub(1),
            reconnects: self.reconnects.get(),
            last_reconnect: (last > 0)
                .then(|| jiff::Timestamp::from_microsecond(last).ok())
                .flatten()
                .map(|t| t.to_string()),
            messages_received: self.received.get(),
            messages_replayed: self.replayed.get(),
            message_rate: self.derived.message_rate(),
            average_latency_ms: avg,
            p50_latency_ms: p50,
            p99_latency_ms: p99,
            replay_average_latency_ms: replay_avg,
            replay_p99_latency_ms: replay_p99,
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
            self.transport.family.clone(),
        );
        reg.register(
            "connection_state",
            "The connection state (1 for the current one)",
            self.state.family.clone(),
        );
        for (name, help, c) in [
            (
                "connection_attempts",
                "Connection attempts, the first and failed ones included",
                &self.attempts,
            ),
            (
                "reconnects",
                "Successful reconnects: connections made after the first",
                &self.reconnects,
            ),
            (
                "messages_received",
                "Events delivered to the subscriber",
                &self.received,
            ),
            (
                "messages_replayed",
                "Events delivered as replay catch-up (part of messages_received)",
                &self.replayed,
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
            "delivery_latency_seconds",
            "Publish-to-receipt latency: phase live (caught up) or replay (catch-up, the age of older events)",
            self.latency.clone(),
        );
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
            "When the client last reconnected successfully (Unix time; 0 before)",
            self.last_reconnect.clone(),
        );
        reg.register_collector(Box::new(self.derived.clone()));
    }

    /// Prometheus text of these metrics alone (OpenMetrics).
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
            "wire_transport{transport=\"ws\"} 1",
            "wire_transport{transport=\"sse\"} 0",
            "wire_connection_state{state=\"live\"} 1",
            "wire_connection_state{state=\"connecting\"} 0",
            "wire_repairing_gap 1",
            "wire_failovers_total 1",
            "wire_url_index 1",
            "wire_delivery_latency_seconds_count{phase=\"live\"} 1",
            "wire_delivery_latency_seconds_sum{phase=\"live\"} 0.002",
            "wire_delivery_latency_seconds_bucket{le=\"0.0025\",phase=\"live\"} 1",
            "wire_delivery_latency_seconds_bucket{le=\"0.001\",phase=\"live\"} 0",
            "wire_delivery_latency_seconds_count{phase=\"replay\"} 0",
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
    fn reconnects_count_successes_and_attempts_count_every_try() {
        let m = Metrics::default();
        assert_eq!(m.snapshot().last_reconnect, None);
        // The first connection, then three failed attempts, then one that
        // connects: one reconnect, five attempts, the success's time.
        m.attempting();
        m.connected(1_772_461_700_000_000);
        assert_eq!((m.snapshot().reconnects, m.snapshot().last_reconnect), (0, None));
        for _ in 0..4 {
            m.attempting();
        }
        let us = 1_772_461_800_123_456;
        m.connected(us);
        let s = m.snapshot();
        assert_eq!(
            (s.connection_attempts, s.reconnect_attempts, s.reconnects),
            (5, 4, 1)
        );
        assert_eq!(
            s.last_reconnect,
            Some(jiff::Timestamp::from_microsecond(us as i64).unwrap().to_string())
        );
        let t = m.prometheus();
        assert!(t.contains("wire_connection_attempts_total 5\n"), "{t}");
        assert!(t.contains("wire_reconnects_total 1\n"), "{t}");
        assert!(
            t.contains("wire_last_reconnect_timestamp_seconds 1772461800.123456"),
            "{t}"
        );
    }

    #[test]
    fn backlog_is_replay_and_only_caught_up_news_is_live() {
        let m = Metrics::default();
        let at = 1_000_000_000;
        m.attempting();
        m.connected(at);
        m.set_state(State::Replaying);
        // Read before caught_up: replay, however fresh.
        m.delivered(Some(at + 10), at + 20);
        m.set_state(State::Live);
        // Caught up but older than the connection (a polling backlog): replay.
        m.delivered(Some(at - 30_000_000), at + 30);
        // Published after the connection, caught up: live, 300 µs.
        m.delivered(Some(at + 100), at + 400);
        let s = m.snapshot();
        assert_eq!((s.messages_received, s.messages_replayed), (3, 2));
        assert_eq!(s.p50_latency_ms, 0.3);
        assert!(s.replay_p99_latency_ms > 29_000.0, "{s:?}");
        let t = m.prometheus();
        assert!(
            t.contains("wire_delivery_latency_seconds_count{phase=\"live\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("wire_delivery_latency_seconds_count{phase=\"replay\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("wire_messages_replayed_total 2\n"), "{t}");
    }

    #[test]
    fn the_transports_used_are_those_connected_on() {
        let m = Metrics::default();
        assert!(m.transports_used().is_empty());
        m.set_transport(Transport::Sse);
        m.set_state(State::Connecting);
        m.set_state(State::Replaying);
        // Attempted on WebSocket, never connected: not used.
        m.set_transport(Transport::Ws);
        m.set_state(State::Connecting);
        m.set_transport(Transport::Poll);
        m.set_state(State::Replaying);
        assert_eq!(m.transports_used(), [Transport::Sse, Transport::Poll]);
        assert_eq!(m.snapshot().transports_used, ["sse", "poll"]);
    }

    #[test]
    fn the_json_field_names_stay() {
        let v = serde_json::to_value(Metrics::default().snapshot()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "wire_transport",
            "transports_used",
            "connection_state",
            "connection_attempts",
            "reconnect_attempts",
            "reconnects",
            "last_reconnect",
            "messages_received",
            "messages_replayed",
            "message_rate",
            "average_latency_ms",
            "p50_latency_ms",
            "p99_latency_ms",
            "replay_average_latency_ms",
            "replay_p99_latency_ms",
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
