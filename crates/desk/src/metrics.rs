//! The desk's HTTP endpoints: `/metrics` (the client's `wire_*`, the
//! engine's `decision_*`, `decision_build_info` and `process_*`; OpenMetrics,
//! or the classic 0.0.4 text when the scraper's `Accept` prefers it), `/metrics.json` (the client's
//! snapshot plus the engine's summary under `engine`), `/healthz` (liveness:
//! the process answers) and `/readyz` (readiness: 200 only while the feed
//! is live, 503 with a JSON reason otherwise, for load balancers and
//! orchestrators).
//! Handlers lock the engine only to copy its summary out. The engine's
//! metrics are registered once, with the router, and set at each scrape.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use decision::{Summary, TradingState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use prometheus_client::registry::Registry;

use crate::Live;

/// The router, on `live`; serve it with `axum::serve`, or drive it in a
/// test with `tower::ServiceExt::oneshot`.
pub fn app(live: Live) -> Router {
    let dashboard = crate::dashboard::router(live.clone());
    let state = App {
        live,
        engine: Arc::new(Mutex::new(EngineMetrics::new())),
        standard: Arc::new(exposition::standard("decision", env!("CARGO_PKG_VERSION"))),
    };
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/metrics.json", get(metrics_json))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(dashboard)
}

#[derive(Debug, Clone)]
struct App {
    live: Live,
    /// Locked by a scrape while it sets and encodes them, so two scrapes
    /// cannot both add the same increase to a counter.
    engine: Arc<Mutex<EngineMetrics>>,
    /// `decision_build_info` and `process_*`.
    standard: Arc<Registry>,
}

async fn metrics_json(State(app): State<App>) -> impl IntoResponse {
    axum::Json(document(&app.live))
}

/// `/metrics.json`'s document; the dashboard's stream sends the same.
pub fn document(live: &Live) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(m) = live.wire_metrics()
        && let Ok(serde_json::Value::Object(w)) = serde_json::to_value(m.snapshot())
    {
        out.extend(w);
    }
    let summary = live.engine().summary();
    if let Ok(v) = serde_json::to_value(summary) {
        out.insert("engine".into(), v);
    }
    serde_json::Value::Object(out)
}

/// Ready only while the client is `Live`: connected, caught up, not in
/// backoff, not replaying, not stopped.
async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let (status, body) = readiness(app.live.wire_metrics().map(|m| m.state()));
    (status, axum::Json(body))
}

/// The answer of `/readyz` for the client's state (`None`: no client yet).
fn readiness(state: Option<transport::State>) -> (StatusCode, serde_json::Value) {
    use transport::State as S;
    let reason = match state {
        Some(S::Live) => {
            return (
                StatusCode::OK,
                serde_json::json!({ "ready": true, "state": "live" }),
            );
        }
        None => "the wire client has not started",
        Some(S::Connecting) => "connecting to the wire",
        Some(S::Replaying) => "replaying after the cursor: not caught up with the head",
        Some(S::Backoff) => "waiting to reconnect to the wire",
        Some(S::Stopped) => "the wire client stopped",
        Some(S::Closed) => "the wire client is closed",
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "ready": false, "state": state.map(|s| s.as_str()), "reason": reason }),
    )
}

/// A denial's reason code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// A trading state, the label name the client's state family uses too.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The engine's `decision_*` metrics: registered once, set in place from
/// the engine's summary at each scrape.
#[derive(Debug)]
struct EngineMetrics {
    registry: Registry,
    events: Counter,
    decisions: Counter,
    accepts: Counter,
    denials: Family<ReasonLabel, Counter>,
    kill_switch_trips: Counter,
    trading_state: Family<StateLabel, Gauge>,
    realised_pnl: FloatGauge,
    unrealised_pnl: FloatGauge,
    gross_exposure: FloatGauge,
}

impl EngineMetrics {
    fn new() -> EngineMetrics {
        let mut m = EngineMetrics {
            registry: Registry::default(),
            events: Counter::default(),
            decisions: Counter::default(),
            accepts: Counter::default(),
            denials: Family::default(),
            kill_switch_trips: Counter::default(),
            trading_state: Family::default(),
            realised_pnl: FloatGauge::default(),
            unrealised_pnl: FloatGauge::default(),
            gross_exposure: FloatGauge::default(),
        };
        let reg = m.registry.sub_registry_with_prefix("decision");
        reg.register("events", "Events applied", m.events.clone());
        reg.register("decisions", "Orders proposed", m.decisions.clone());
        reg.register("accepts", "Orders accepted by risk", m.accepts.clone());
        reg.register("denials", "Orders denied, by reason code", m.denials.clone());
        // Every reason at 0 from the start: a rate has a baseline, and a
        // dashboard a series, before the first denial.
        for code in decision::Code::ALL {
            let _ = m.denials.get_or_create(&ReasonLabel {
                reason: code.as_str().to_owned(),
            });
        }
        reg.register(
            "kill_switch_trips",
            "Times the daily loss limit halted trading",
            m.kill_switch_trips.clone(),
        );
        reg.register(
            "trading_state",
            "Trading state (1 for the current one)",
            m.trading_state.clone(),
        );
        reg.register("realised_pnl", "Realised P&L", m.realised_pnl.clone());
        reg.register("unrealised_pnl", "Unrealised P&L", m.unrealised_pnl.clone());
        reg.register("gross_exposure", "Gross exposure", m.gross_exposure.clone());
        m
    }

    fn set(&self, s: &Summary) {
        // The engine's counts only grow: a counter catches up by the difference.
        let set = |c: &Counter, v: u64| {
            c.inc_by(v.saturating_sub(c.get()));
        };
        set(&self.events, s.counts.events);
        set(&self.decisions, s.counts.decisions);
        set(&self.accepts, s.counts.accepts);
        set(&self.kill_switch_trips, s.counts.kill_switch_trips);
        for (code, n) in &s.counts.denials_by_code {
            let label = ReasonLabel { reason: code.clone() };
            set(&self.denials.get_or_create(&label), *n);
        }
        for state in TradingState::ALL {
            let label = StateLabel {
                state: state.as_str(),
            };
            self.trading_state
                .get_or_create(&label)
                .set(i64::from(state == s.state));
        }
        self.realised_pnl.set(s.realised_pnl);
        self.unrealised_pnl.set(s.unrealised_pnl);
        self.gross_exposure.set(s.gross_exposure);
    }
}

async fn prometheus(State(app): State<App>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = exposition::Format::negotiate(accept);
    // The client's figures come as a snapshot registered per scrape.
    let mut wire = Registry::default();
    if let Some(m) = app.live.wire_metrics() {
        m.register(&mut wire);
    }
    let summary = app.live.engine().summary();
    let engine = app.engine.lock().unwrap_or_else(|p| p.into_inner());
    engine.set(&summary);
    let out = exposition::render(format, &[&wire, &engine.registry, &app.standard]);
    ([(header::CONTENT_TYPE, format.content_type())], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use decision::{Config, Engine};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(live: &Live, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app(live.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn live(edit: impl FnOnce(&mut Engine)) -> Live {
        let mut engine = Engine::new(Config::default()).unwrap();
        edit(&mut engine);
        Live::new(engine)
    }

    /// The engine's lines in `/metrics`, without the client's (none here).
    fn lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn the_trading_state_gauge_is_one_hot_with_stable_names() {
        for (edit, current) in [
            (None, "active"),
            (Some(Engine::reduce_only as fn(&mut Engine)), "reduce_only"),
            (Some(Engine::halt as fn(&mut Engine)), "halted"),
        ] {
            let live = live(|e| edit.into_iter().for_each(|f| f(e)));
            let (status, text) = get(&live, "/metrics").await;
            assert_eq!(status, StatusCode::OK);
            let expect: Vec<String> = ["active", "reduce_only", "halted"]
                .iter()
                .map(|s| {
                    format!(
                        "decision_trading_state{{state=\"{s}\"}} {}",
                        i64::from(*s == current)
                    )
                })
                .collect();
            let mut got = lines(&text, "decision_trading_state{");
            got.sort();
            let mut expect = expect;
            expect.sort();
            assert_eq!(got, expect, "{text}");
        }
    }

    #[tokio::test]
    async fn metrics_show_the_engine_counts_and_end_in_eof() {
        let live = live(|_| {});
        let (_, text) = get(&live, "/metrics").await;
        assert!(text.contains("decision_events_total 0\n"), "{text}");
        assert!(
            text.contains("# TYPE decision_kill_switch_trips counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains("wire_"), "no client yet: {text}");
    }

    #[tokio::test]
    async fn the_classic_text_when_the_scraper_asks_with_build_info_and_every_reason() {
        let live = live(|_| {});
        let request = Request::get("/metrics")
            .header("accept", "text/plain; version=0.0.4")
            .body(Body::empty())
            .unwrap();
        let response = app(live).oneshot(request).await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for line in [
            "# TYPE decision_events_total counter",
            "decision_denials_total{reason=\"price_band\"} 0",
            "decision_denials_total{reason=\"max_position\"} 0",
            &format!(
                "decision_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[tokio::test]
    async fn metrics_json_has_the_engine_summary_and_healthz_says_ok() {
        let live = live(Engine::halt);
        let (status, text) = get(&live, "/metrics.json").await;
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["engine"]["state"], "halted");
        assert_eq!(json["engine"]["events"], 0);
        assert_eq!(get(&live, "/healthz").await, (StatusCode::OK, "ok\n".into()));
        assert_eq!(get(&live, "/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn readyz_is_200_only_while_the_feed_is_live() {
        use transport::State as S;
        let live = live(|_| {});
        let (status, text) = get(&live, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["reason"], "the wire client has not started", "{text}");
        let wire = std::sync::Arc::new(transport::Metrics::default());
        *live.wire.lock().unwrap() = Some(wire.clone());
        for (state, code) in [
            (S::Connecting, StatusCode::SERVICE_UNAVAILABLE),
            (S::Replaying, StatusCode::SERVICE_UNAVAILABLE),
            (S::Live, StatusCode::OK),
            (S::Backoff, StatusCode::SERVICE_UNAVAILABLE),
            (S::Stopped, StatusCode::SERVICE_UNAVAILABLE),
            (S::Closed, StatusCode::SERVICE_UNAVAILABLE),
        ] {
            wire.set_state(state);
            let (status, text) = get(&live, "/readyz").await;
            assert_eq!(status, code, "{state:?}: {text}");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["state"], state.as_str(), "{text}");
            assert_eq!(json["ready"], code == StatusCode::OK, "{text}");
            assert_eq!(json["reason"].is_string(), code != StatusCode::OK, "{text}");
        }
        // Liveness is another question: /healthz says ok whatever the feed.
        wire.set_state(S::Backoff);
        assert_eq!(get(&live, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    }

    #[tokio::test]
    async fn one_router_follows_the_engine_across_scrapes() {
        let live = live(|_| {});
        let app = app(live.clone());
        let scrape = |app: Router| async move {
            let request = Request::get("/metrics").body(Body::empty()).unwrap();
            let body = app.oneshot(request).await.unwrap().into_body();
            String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
        };
        let _ = scrape(app.clone()).await;
        let tick = |id: u64, last: f64| wire::Event {
            id,
            pub_us: None,
            prev: None,
            payload: wire::Payload::Tick(wire::Tick {
                symbol: "X".into(),
                last,
                bid: None,
                ask: None,
                size: None,
                ts_utc: jiff::Timestamp::from_second(1_772_460_000 + id as i64).unwrap(),
            }),
        };
        for id in 1..=3 {
            live.engine()
                .on_event(&tick(id, 100.0), decision::FeedHealth::Live);
        }
        let text = scrape(app.clone()).await;
        assert!(text.contains("decision_events_total 3\n"), "{text}");
        // Scraped again with nothing new: not counted twice.
        let text = scrape(app).await;
        assert!(text.contains("decision_events_total 3\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}
