//! The stub's metrics: Prometheus text at `/metrics` (OpenMetrics, or the
//! classic 0.0.4 text when the scraper prefers it; with `process_*` and
//! `stub_build_info`), the same figures as JSON at `/metrics.json`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::conns::{Conns, Transport};
use crate::log::EventLog;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: &'static str,
}

/// Why a request was answered with an error: its problem code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub published: Counter,
    pub sent: Family<TransportLabel, Counter>,
    pub opened: Family<TransportLabel, Counter>,
    pub overflow_drops: Counter,
    pub cursor_expired: Counter,
    /// Streams whose cursor named another epoch, sent a `reset`.
    pub resets: Counter,
    pub rejected: Family<ReasonLabel, Counter>,
}

impl Metrics {
    pub fn sent(&self, t: Transport, n: u64) {
        self.sent
            .get_or_create(&TransportLabel {
                transport: t.as_str(),
            })
            .inc_by(n);
    }

    pub fn opened(&self, t: Transport) {
        self.opened
            .get_or_create(&TransportLabel {
                transport: t.as_str(),
            })
            .inc();
    }

    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition in `format`.
    pub fn prometheus(&self, log: &dyn EventLog, conns: &Conns, format: exposition::Format) -> String {
        use prometheus_client::metrics::gauge::Gauge;
        let mut reg = Registry::with_prefix("stub");
        let head: Gauge = Gauge::default();
        head.set(log.head() as i64);
        let oldest: Gauge = Gauge::default();
        oldest.set(log.oldest() as i64);
        let connections: Family<TransportLabel, Gauge> = Family::default();
        for t in Transport::ALL {
            connections
                .get_or_create(&TransportLabel {
                    transport: t.as_str(),
                })
                .set(conns.count(t) as i64);
        }
        reg.register("head_id", "Newest event id in the log", head);
        reg.register("oldest_id", "Oldest event id still retained", oldest);
        reg.register("connections", "Live clients by transport", connections);
        reg.register(
            "events_published",
            "Events appended to the log",
            self.published.clone(),
        );
        reg.register(
            "events_sent",
            "Events handed to clients, by transport",
            self.sent.clone(),
        );
        reg.register(
            "connections_opened",
            "Clients accepted, by transport",
            self.opened.clone(),
        );
        reg.register(
            "slow_consumer_drops",
            "Clients disconnected for falling too far behind",
            self.overflow_drops.clone(),
        );
        reg.register(
            "cursor_expired",
            "Requests whose cursor was older than retention",
            self.cursor_expired.clone(),
        );
        reg.register(
            "resets",
            "Streams sent a reset: their cursor named another epoch",
            self.resets.clone(),
        );
        reg.register(
            "requests_rejected",
            "Requests answered with an error, by reason (the problem code)",
            self.rejected.clone(),
        );
        let standard = exposition::standard("stub", env!("CARGO_PKG_VERSION"));
        exposition::render(format, &[&reg, &standard])
    }

    pub fn json(&self, log: &dyn EventLog, conns: &Conns) -> Value {
        let by_transport = |f: &dyn Fn(Transport) -> u64| -> Value {
            Transport::ALL
                .iter()
                .map(|&t| (t.as_str().to_owned(), json!(f(t))))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let label = |t: Transport| TransportLabel {
            transport: t.as_str(),
        };
        json!({
            "head_id": log.head(),
            "oldest_id": log.oldest(),
            "events_published": self.published.get(),
            "connections": by_transport(&|t| conns.count(t) as u64),
            "events_sent": by_transport(&|t| self.sent.get_or_create(&label(t)).get()),
            "connections_opened": by_transport(&|t| self.opened.get_or_create(&label(t)).get()),
            "slow_consumer_drops": self.overflow_drops.get(),
            "cursor_expired": self.cursor_expired.get(),
            "resets": self.resets.get(),
        })
    }
}
