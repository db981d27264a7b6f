//! What a run tells its operator: the summary at the end (text, and JSON
//! for `--summary-json`), and the status line logged every 10 s while the
//! engine runs against a live wire. The latency reported is the live
//! delivery figure; replayed events are counted apart, with their age.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;
use transport::{Preference, Snapshot};

use crate::{Ended, Live};

/// How often the status line is logged.
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// The transports connections were made on, for a header: `sse`,
/// `sse and poll`, or `no transport (never connected)`; with the
/// preference asked for when it is not the one transport used.
pub fn transports(wire: Option<&Snapshot>, asked: Preference) -> String {
    let used = wire.map(|m| m.transports_used.clone()).unwrap_or_default();
    let text = match used.as_slice() {
        [] => "no transport (never connected)".to_owned(),
        used => used.join(" and "),
    };
    if used.len() == 1 && used[0] == asked.as_str() {
        text
    } else {
        format!("{text} (--transport {})", asked.as_str())
    }
}

/// The summary printed at the end.
pub fn summary_text(live: &Live, urls: &[String], asked: Preference, ended: &Ended) -> String {
    let s = live.engine().summary();
    let wire = live.wire_metrics().map(|m| m.snapshot());
    let c = &s.counts;
    let mut out = String::new();
    let denials: Vec<String> = c
        .denials_by_code
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let denials = if denials.is_empty() {
        "none".into()
    } else {
        denials.join(", ")
    };
    let _ = writeln!(
        out,
        "tickwire decision: {} over {}",
        urls.join(","),
        transports(wire.as_ref(), asked)
    );
    let _ = writeln!(out, "  ended         {ended}");
    let _ = writeln!(
        out,
        "  events        {} (ticks {}, news {}, ignored {})",
        c.events, c.ticks, c.news, c.ignored
    );
    let _ = writeln!(
        out,
        "  decisions     {}: {} accepted, {} denied",
        c.decisions, c.accepts, c.denials
    );
    let _ = writeln!(out, "  denials       {denials}");
    let _ = writeln!(
        out,
        "  P&L           realised {:.2}, unrealised {:.2}; state {}, kill switch trips {}",
        s.realised_pnl, s.unrealised_pnl, s.state, c.kill_switch_trips
    );
    if let Some(m) = &wire {
        let live_events = m.messages_received - m.messages_replayed;
        let figure = if live_events == 0 {
            "live none".to_owned()
        } else {
            format!(
                "live avg {:.3} ms, p50 {:.3} ms, p99 {:.3} ms ({live_events} events)",
                m.average_latency_ms, m.p50_latency_ms, m.p99_latency_ms
            )
        };
        let replay = if m.messages_replayed == 0 {
            "none replayed".to_owned()
        } else {
            format!(
                "{} replayed (catch-up, age avg {:.3} ms)",
                m.messages_replayed, m.replay_average_latency_ms
            )
        };
        let _ = writeln!(out, "  latency       {figure}; {replay}");
        let _ = writeln!(
            out,
            "  wire          reconnects {} ({} connection attempts), gaps repaired {}, duplicates dropped {}, fallbacks {}, failovers {}",
            m.reconnects,
            m.connection_attempts,
            m.gaps_repaired,
            m.duplicates_dropped,
            m.fallbacks,
            m.failovers
        );
    }
    out
}

/// The machine-readable summary (`--summary-json`): the same figures.
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    pub ended: String,
    pub exit_code: i32,
    pub wire_urls: Vec<String>,
    pub transport: &'static str,
    pub transports_used: Vec<&'static str>,
    pub engine: decision::Summary,
    /// The client's figures (`/metrics.json`'s); null if it never started.
    pub wire: Option<Snapshot>,
}

pub fn summary_json(live: &Live, urls: &[String], asked: Preference, ended: &Ended) -> SummaryJson {
    let wire = live.wire_metrics().map(|m| m.snapshot());
    SummaryJson {
        ended: ended.to_string(),
        exit_code: crate::session::exit_code(ended),
        wire_urls: urls.to_vec(),
        transport: asked.as_str(),
        transports_used: wire
            .as_ref()
            .map(|m| m.transports_used.clone())
            .unwrap_or_default(),
        engine: live.engine().summary(),
        wire,
    }
}

/// One status line's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub events: u64,
    /// Events per second over the last 10 s.
    pub rate: f64,
    /// The client's connection state.
    pub wire_state: &'static str,
    /// The engine's trading state.
    pub trading_state: &'static str,
    pub realised_pnl: f64,
    pub unrealised_pnl: f64,
}

pub fn status(live: &Live) -> Status {
    let s = live.engine().summary();
    let wire = live.wire_metrics();
    Status {
        events: s.counts.events,
        rate: wire.as_ref().map_or(0.0, |m| m.snapshot().message_rate),
        wire_state: wire.map_or("connecting", |m| m.state().as_str()),
        trading_state: s.state.as_str(),
        realised_pnl: s.realised_pnl,
        unrealised_pnl: s.unrealised_pnl,
    }
}

/// Hands `emit` the status every `every` (tokio's clock), the first after
/// one period; never returns.
pub async fn report_status(live: Live, every: Duration, mut emit: impl FnMut(Status)) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        emit(status(&live));
    }
}

/// The status as an info log line.
pub fn log_status(s: Status) {
    tracing::info!(
        events = s.events,
        rate = format!("{:.1}", s.rate),
        wire = s.wire_state,
        state = s.trading_state,
        realised_pnl = format!("{:.2}", s.realised_pnl),
        unrealised_pnl = format!("{:.2}", s.unrealised_pnl),
        "status: {} events, {:.1}/s, wire {}, trading {}, P&L realised {:.2} unrealised {:.2}",
        s.events,
        s.rate,
        s.wire_state,
        s.trading_state,
        s.realised_pnl,
        s.unrealised_pnl
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use decision::{Config, Engine};

    #[tokio::test(start_paused = true)]
    async fn the_status_comes_every_period_with_the_live_figures() {
        let live = Live::new(Engine::new(Config::default()).unwrap());
        let wire = std::sync::Arc::new(transport::Metrics::default());
        wire.set_state(transport::State::Live);
        *live.wire.lock().unwrap() = Some(wire);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(report_status(live.clone(), STATUS_EVERY, move |s| {
            let _ = tx.send((tokio::time::Instant::now(), s));
        }));
        let start = tokio::time::Instant::now();
        let (at, first) = rx.recv().await.unwrap();
        assert_eq!(at - start, STATUS_EVERY);
        assert_eq!(
            first,
            Status {
                events: 0,
                rate: 0.0,
                wire_state: "live",
                trading_state: "active",
                realised_pnl: 0.0,
                unrealised_pnl: 0.0,
            }
        );
        live.engine().halt();
        let (at, second) = rx.recv().await.unwrap();
        assert_eq!(at - start, 2 * STATUS_EVERY);
        assert_eq!(second.trading_state, "halted");
        task.abort();
    }

    #[test]
    fn the_header_names_the_transports_used() {
        let m = transport::Metrics::default();
        let snap = |m: &transport::Metrics| Some(m.snapshot());
        assert_eq!(
            transports(snap(&m).as_ref(), Preference::Auto),
            "no transport (never connected) (--transport auto)"
        );
        m.set_state(transport::State::Replaying); // on sse, the default
        assert_eq!(transports(snap(&m).as_ref(), Preference::Sse), "sse");
        assert_eq!(
            transports(snap(&m).as_ref(), Preference::Auto),
            "sse (--transport auto)"
        );
    }
}
