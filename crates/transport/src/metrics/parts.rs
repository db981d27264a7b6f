//! The pieces of the client's metrics: one-hot gauge families, the
//! latency phases and buckets, and what is derived at read time (the JSON's
//! latency quantiles, the event rate).

use std::sync::Mutex;

use hdrhistogram::Histogram as HdrHistogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use tokio::time::Instant;

/// A family's labels: one pair (`state="live"`, `transport="sse"`,
/// `phase="replay"`).
pub(super) type Labels = Vec<(&'static str, &'static str)>;

/// One-hot gauges: 1 for the current value, 0 for the others, under one
/// label name (`state` for states, `transport` for transports: the same
/// names as the stub's and the engine's families).
#[derive(Debug, Clone)]
pub(super) struct OneHot {
    pub(super) key: &'static str,
    pub(super) family: Family<Labels, Gauge>,
}

impl OneHot {
    pub(super) fn new(key: &'static str) -> OneHot {
        OneHot {
            key,
            family: Family::default(),
        }
    }

    pub(super) fn gauge(&self, v: &'static str) -> Gauge {
        self.family.get_or_create(&vec![(self.key, v)]).clone()
    }

    pub(super) fn set(&self, values: &[&'static str], current: &str) {
        // The new value first: a scrape in between sees two, never none.
        for v in values.iter().filter(|v| **v == current) {
            self.gauge(v).set(1);
        }
        for v in values.iter().filter(|v| **v != current) {
            self.gauge(v).set(0);
        }
    }

    pub(super) fn get(&self, values: &[&'static str]) -> usize {
        values.iter().rposition(|v| self.gauge(v).get() == 1).unwrap_or(0)
    }
}

/// Publish-to-receipt latency buckets, in seconds: 50 µs to an hour, so
/// both a live delivery (sub-millisecond on loopback) and a replayed
/// event's age land in a bucket that says something.
pub(super) const LATENCY_BUCKETS: [f64; 20] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 60.0, 300.0, 900.0, 3600.0,
];

pub(super) fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Which of an event's deliveries it was: `live` (published after the
/// connection opened, handed over while caught up) or `replay` (catch-up:
/// older than the connection, or read before `caught_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Live,
    Replay,
}

impl Phase {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Phase::Live => "live",
            Phase::Replay => "replay",
        }
    }
}

/// What is computed when read: latency quantiles (for the JSON) and the
/// event rate.
#[derive(Debug)]
pub(super) struct Derived {
    pub(super) live_us: Mutex<HdrHistogram<u64>>,
    pub(super) replay_us: Mutex<HdrHistogram<u64>>,
    pub(super) rate: Mutex<Rate>,
}

/// Events per second over the last ten whole seconds.
#[derive(Debug)]
pub(super) struct Rate {
    pub(super) start: Instant,
    /// (second since start, count), newest last.
    pub(super) buckets: std::collections::VecDeque<(u64, u64)>,
}

pub(super) const RATE_WINDOW_S: u64 = 10;

pub(super) fn hdr() -> Mutex<HdrHistogram<u64>> {
    // 1 µs to 1 hour at 3 significant digits; cannot fail.
    Mutex::new(
        HdrHistogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
            HdrHistogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
        }),
    )
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// (average, p50, p99) in ms; zeros before any latency.
pub(super) fn latency_ms(h: &Mutex<HdrHistogram<u64>>) -> (f64, f64, f64) {
    let h = lock(h);
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

impl Derived {
    pub(super) fn message_rate(&self) -> f64 {
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
        let g = ConstGauge::new(self.message_rate());
        g.encode(encoder.encode_descriptor(
            "message_rate",
            "Events per second over the last 10 s",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}
