//! The `decision` binary's live dashboard: the page at `/` and its
//! `/dashboard/stream`, and [`Recent`], the bounded ring of the latest
//! decisions the stream sends.
//!
//! The stream (through `stub::dashboard::DashboardStreams`: pulled, bounded,
//! encoded with the `sse` crate) sends at once and then every second by
//! tokio's clock: a `decision` event per decision not sent yet (its id the
//! decision's sequence number, so a browser reconnecting with
//! `Last-Event-ID` gets only those it missed, as far as the ring reaches),
//! then a `metrics` event whose data is `/metrics.json`'s document, built by
//! the same function ([`crate::metrics::document`]). A `metrics` event every
//! second keeps the stream from ever being silent, so it needs no other
//! heartbeat.

use std::collections::VecDeque;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use decision::AuditRecord;
use stub::dashboard::{self, DashboardStreams};

use crate::Live;

/// The page, before `stub::dashboard::assemble`.
const PAGE: &str = include_str!("dashboard/desk.html");

/// Decisions [`Recent`] holds.
pub const RECENT: usize = 50;

/// The latest decisions, as their audit lines, each with its sequence
/// number in this process (1 for the first): at most [`RECENT`].
#[derive(Debug, Default)]
pub struct Recent {
    seen: u64,
    ring: VecDeque<(u64, String)>,
}

impl Recent {
    pub fn push(&mut self, record: &AuditRecord) {
        self.seen += 1;
        if self.ring.len() == RECENT {
            self.ring.pop_front();
        }
        self.ring.push_back((self.seen, record.to_json_line()));
    }

    /// Those held with a number above `after`; all of them when `after` is
    /// past the last one (a number from another run of the process).
    pub fn after(&self, after: u64) -> Vec<(u64, String)> {
        let after = if after > self.seen { 0 } else { after };
        self.ring.iter().filter(|(n, _)| *n > after).cloned().collect()
    }

    /// Decisions pushed so far (not only those still held).
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

impl Live {
    /// Keeps `records` among the latest decisions, for the dashboard.
    pub fn decided(&self, records: &[AuditRecord]) {
        if records.is_empty() {
            return;
        }
        let mut recent = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        records.iter().for_each(|r| recent.push(r));
    }

    /// The latest decisions numbered above `after` (see [`Recent::after`]).
    pub fn decisions_after(&self, after: u64) -> Vec<(u64, String)> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after(after)
    }
}

/// `/` and `/dashboard/stream`, on `live`; merged into `metrics::app`.
pub fn router(live: Live) -> Router {
    let state = Dashboard {
        live,
        streams: DashboardStreams::new(dashboard::MAX_STREAMS),
    };
    Router::new()
        .route("/", get(page))
        .route("/dashboard/stream", get(stream))
        .with_state(state)
}

#[derive(Debug, Clone)]
struct Dashboard {
    live: Live,
    streams: DashboardStreams,
}

async fn page() -> Response {
    static ASSEMBLED: OnceLock<String> = OnceLock::new();
    dashboard::html(ASSEMBLED.get_or_init(|| dashboard::assemble(PAGE)))
}

async fn stream(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let mut sent = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let live = d.live;
    d.streams
        .open(dashboard::PERIOD, std::future::pending(), move |out| {
            for (n, line) in live.decisions_after(sent) {
                // A number and an audit line (JSON, one line): never refused.
                let _ = sse::encode::event(out, Some("decision"), Some(&n.to_string()), &line);
                sent = n;
            }
            let doc = crate::metrics::document(&live).to_string();
            let _ = sse::encode::event(out, Some("metrics"), None, &doc);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_id: u64) -> AuditRecord {
        let order = decision::Order {
            symbol: "X".into(),
            side: decision::Side::Buy,
            qty: 1,
            price: 100.0,
            reason: decision::Reason::NewsMomentumLong,
            reduces_exposure: false,
        };
        let ts = jiff::Timestamp::from_second(1_772_460_000).unwrap();
        AuditRecord::new(event_id, ts, &order, decision::Verdict::Accept)
    }

    #[test]
    fn recent_holds_the_latest_decisions_and_what_came_after_a_number() {
        let mut r = Recent::default();
        assert!(r.after(0).is_empty());
        for id in 1..=(RECENT as u64 + 7) {
            r.push(&record(id));
        }
        let all = r.after(0);
        assert_eq!(all.len(), RECENT, "bounded");
        assert_eq!(all[0].0, 8, "the oldest were dropped");
        assert_eq!(all.last().unwrap().0, RECENT as u64 + 7);
        assert_eq!(all.last().unwrap().1, record(RECENT as u64 + 7).to_json_line());
        let tail = r.after(RECENT as u64 + 5);
        assert_eq!(tail.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [56, 57]);
        assert!(r.after(RECENT as u64 + 7).is_empty());
        // A number from another run (past the last): everything held.
        assert_eq!(r.after(1_000).len(), RECENT);
        assert_eq!(r.seen(), RECENT as u64 + 7);
    }
}
