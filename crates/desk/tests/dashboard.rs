//! The decision dashboard over the router, without sockets, on tokio's
//! paused clock: `/` is the page (offline, small, on `EventSource`), and
//! `/dashboard/stream` is an event stream, read with the project's own SSE
//! decoder, whose `metrics` events are `/metrics.json`'s document, byte for
//! byte, and whose `decision` events are the latest decisions, numbered, each
//! sent once (and again only after a reconnect's `Last-Event-ID` before it).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use decision::{AuditRecord, Config, Engine, FeedHealth};
use desk::Live;
use http_body_util::BodyExt;
use sse::{Decoder, Limits, OwnedFrame};
use tower::ServiceExt;

fn tick(id: u64, last: f64) -> wire::Event {
    wire::Event {
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
    }
}

/// An engine some events in, with a wire client's metrics.
fn live() -> Live {
    let live = Live::new(Engine::new(Config::default()).unwrap());
    for id in 1..=3 {
        live.engine()
            .on_event(&tick(id, 100.0 + id as f64), FeedHealth::Live);
    }
    let wire = std::sync::Arc::new(transport::Metrics::default());
    wire.set_state(transport::State::Live);
    *live.wire.lock().unwrap() = Some(wire);
    live
}

fn record(event_id: u64, deny: bool) -> AuditRecord {
    let order = decision::Order {
        symbol: "X".into(),
        side: decision::Side::Sell,
        qty: 10,
        price: 101.25,
        reason: decision::Reason::StopLoss,
        reduces_exposure: true,
    };
    let verdict = if deny {
        decision::Verdict::Deny(decision::Code::PriceBand)
    } else {
        decision::Verdict::Accept
    };
    AuditRecord::new(
        event_id,
        jiff::Timestamp::from_second(1_772_460_000).unwrap(),
        &order,
        verdict,
    )
}

async fn send(live: &Live, req: Request<Body>) -> axum::response::Response {
    desk::metrics::app(live.clone()).oneshot(req).await.unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn text(res: axum::response::Response) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The frames of the body's next chunk, by the `sse` crate's decoder.
async fn chunk(body: &mut Body, decoder: &mut Decoder) -> Vec<OwnedFrame> {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a chunk in time")
        .expect("the stream goes on")
        .unwrap();
    decoder.push(&frame.into_data().unwrap());
    let mut out = Vec::new();
    while let Some(f) = decoder.next_frame() {
        out.push(f.unwrap().to_owned_frame());
    }
    out
}

fn event(kind: &str, id: &str, data: String) -> OwnedFrame {
    OwnedFrame::Event(sse::Event {
        event: kind.into(),
        data,
        id: id.into(),
    })
}

#[tokio::test(start_paused = true)]
async fn the_page_is_html_on_eventsource_offline_and_small() {
    let res = send(&live(), get("/")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let page = text(res).await;
    assert!(
        page.contains("dash.connect('/dashboard/stream'"),
        "the stream it opens"
    );
    assert!(
        page.contains("new EventSource(url)"),
        "on the browser's EventSource"
    );
    assert!(!page.contains("/*tickwire:"), "the shared CSS and JS put in");
    for outside in ["src=\"http", "href=\"http", "//cdn", "import ", "@import"] {
        assert!(
            !page.contains(outside),
            "nothing fetched from elsewhere: {outside}"
        );
    }
    assert!(page.len() < 30_000, "{} bytes", page.len());
    for pointer in [
        "/engine/cash",
        "/engine/state",
        "/connection_state",
        "/p99_latency_ms",
    ] {
        assert!(page.contains(&format!("data-metric=\"{pointer}\"")), "{pointer}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_stream_starts_with_the_metrics_json_document_and_ticks_every_second() {
    let live = live();
    let res = send(&live, get("/dashboard/stream")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    let mut decoder = Decoder::new(Limits::default());
    let first = chunk(&mut body, &mut decoder).await;
    let json = text(send(&live, get("/metrics.json")).await).await;
    assert!(json.contains("\"engine\":{"), "{json}");
    assert_eq!(
        first,
        [
            OwnedFrame::Retry(1000),
            OwnedFrame::Comment("tickwire dashboard".into()),
            event("metrics", "", json),
        ]
    );
    // Nothing more until a second has passed; then the figures again, as
    // they are now.
    let next = tokio::time::timeout(Duration::from_millis(999), body.frame()).await;
    assert!(next.is_err(), "a tick before the second was up");
    live.engine().on_event(&tick(4, 99.0), FeedHealth::Live);
    let second = chunk(&mut body, &mut decoder).await;
    let json = text(send(&live, get("/metrics.json")).await).await;
    assert!(json.contains("\"last_event_id\":4"), "{json}");
    assert_eq!(second, [event("metrics", "", json)]);
}

#[tokio::test(start_paused = true)]
async fn decisions_are_sent_once_numbered_before_the_figures_and_resumed_by_last_event_id() {
    let live = live();
    live.decided(&[record(1, false), record(2, true)]);
    let mut body = send(&live, get("/dashboard/stream")).await.into_body();
    let mut decoder = Decoder::new(Limits::default());
    let first = chunk(&mut body, &mut decoder).await;
    let line = |id, deny| record(id, deny).to_json_line();
    assert_eq!(
        first[2..4],
        [
            event("decision", "1", line(1, false)),
            event("decision", "2", line(2, true))
        ]
    );
    assert!(
        line(2, true).contains("\"code\":\"price_band\""),
        "the denial reason"
    );
    assert!(
        matches!(&first[4], OwnedFrame::Event(e) if e.event == "metrics"),
        "{first:?}"
    );
    assert_eq!(first.len(), 5);

    live.decided(&[record(3, true)]);
    let second = chunk(&mut body, &mut decoder).await;
    assert_eq!(second.len(), 2, "only the new one, then the figures: {second:?}");
    assert_eq!(second[0], event("decision", "3", line(3, true)));

    // A browser reconnecting after decision 2 gets 3 only.
    let req = Request::get("/dashboard/stream")
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let mut body = send(&live, req).await.into_body();
    let mut decoder = Decoder::new(Limits::default());
    let resumed = chunk(&mut body, &mut decoder).await;
    assert_eq!(resumed[2], event("decision", "3", line(3, true)));
    assert!(
        matches!(&resumed[3], OwnedFrame::Event(e) if e.event == "metrics"),
        "{resumed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn at_most_sixteen_streams_are_open_at_once() {
    let live = live();
    let app = desk::metrics::app(live.clone());
    let mut open = Vec::new();
    for _ in 0..stub::dashboard::MAX_STREAMS {
        let res = app.clone().oneshot(get("/dashboard/stream")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = app.clone().oneshot(get("/dashboard/stream")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(res).await.contains("too_many_streams"));
    // A browser gone frees its place.
    drop(open.pop());
    let res = app.oneshot(get("/dashboard/stream")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
