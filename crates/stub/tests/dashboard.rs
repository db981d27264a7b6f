//! wire-stub's dashboard over the router, without sockets, on tokio's paused
//! clock: `/` is the page (offline, small, on `EventSource`), and
//! `/dashboard/stream`, read with the project's own SSE decoder, sends
//! `/metrics.json`'s and `/connections`'s documents byte for byte, every
//! second, ends when the server shuts down, and sits behind the token.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sse::{Decoder, Limits, OwnedFrame};
use stub::{Config, Source};

mod common;
use common::*;

async fn chunk(body: &mut Body, decoder: &mut Decoder) -> Option<Vec<OwnedFrame>> {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a chunk in time")?;
    decoder.push(&frame.unwrap().into_data().unwrap());
    let mut out = Vec::new();
    while let Some(f) = decoder.next_frame() {
        out.push(f.unwrap().to_owned_frame());
    }
    Some(out)
}

fn event(kind: &str, data: String) -> OwnedFrame {
    OwnedFrame::Event(sse::Event {
        event: kind.into(),
        data,
        id: String::new(),
    })
}

#[tokio::test(start_paused = true)]
async fn the_page_is_html_on_eventsource_offline_and_small() {
    let res = call(&stub(3), get("/")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let page = body_text(res).await;
    assert!(page.contains("dash.connect('/dashboard/stream'"));
    assert!(page.contains("new EventSource(url)"));
    assert!(!page.contains("/*tickwire:"), "the shared CSS and JS put in");
    for outside in ["src=\"http", "href=\"http", "//cdn", "import ", "@import"] {
        assert!(
            !page.contains(outside),
            "nothing fetched from elsewhere: {outside}"
        );
    }
    assert!(page.len() < 30_000, "{} bytes", page.len());
    for pointer in ["/head_id", "/events_published", "/connections/sse"] {
        assert!(page.contains(&format!("data-metric=\"{pointer}\"")), "{pointer}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_stream_sends_metrics_json_and_connections_every_second_until_shutdown() {
    let s = stub(3);
    let res = call(&s, get("/dashboard/stream")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    let mut decoder = Decoder::new(Limits::default());
    let first = chunk(&mut body, &mut decoder).await.unwrap();
    let metrics = body_text(call(&s, get("/metrics.json")).await).await;
    let conns = body_text(call(&s, get("/connections")).await).await;
    assert!(metrics.contains("\"head_id\":3"), "{metrics}");
    assert_eq!(
        first,
        [
            OwnedFrame::Retry(1000),
            OwnedFrame::Comment("tickwire dashboard".into()),
            event("metrics", metrics),
            event("connections", conns),
        ]
    );

    // A client streaming, and two more events: the next tick shows them.
    let mut client = call(&s, get("/stream?cursor=0")).await.into_body();
    let _ = frame(&mut client).await;
    at_once(s.publish(Source::Ingest, &payloads(2))).unwrap();
    let next = tokio::time::timeout(Duration::from_millis(999), body.frame()).await;
    assert!(next.is_err(), "a tick before the second was up");
    let second = chunk(&mut body, &mut decoder).await.unwrap();
    let metrics = body_text(call(&s, get("/metrics.json")).await).await;
    let conns = body_text(call(&s, get("/connections")).await).await;
    assert!(metrics.contains("\"head_id\":5"), "{metrics}");
    assert!(conns.contains("\"transport\":\"sse\""), "{conns}");
    assert_eq!(second, [event("metrics", metrics), event("connections", conns)]);

    // Shutdown ends it.
    s.shutdown_token().cancel();
    assert_eq!(chunk(&mut body, &mut decoder).await, None);
}

#[tokio::test(start_paused = true)]
async fn the_stream_needs_the_token_and_at_most_sixteen_are_open() {
    let config = Config {
        token: Some("secret".into()),
        ..Config::default()
    };
    let s = stub_with(config, 1);
    let res = call(&s, get("/dashboard/stream")).await;
    check_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The page itself holds no figures: it is served without one.
    assert_eq!(call(&s, get("/")).await.status(), StatusCode::OK);
    let authed = || {
        Request::get("/dashboard/stream")
            .header(header::AUTHORIZATION, "Bearer secret")
            .body(Body::empty())
            .unwrap()
    };
    let app = stub::app(s.clone());
    let mut open = Vec::new();
    for _ in 0..stub::dashboard::MAX_STREAMS {
        let res = tower::ServiceExt::oneshot(app.clone(), authed()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = tower::ServiceExt::oneshot(app.clone(), authed()).await.unwrap();
    check_error(res, StatusCode::SERVICE_UNAVAILABLE, "too_many_streams").await;
    drop(open.pop());
    let res = tower::ServiceExt::oneshot(app, authed()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
