//! The router without sockets: every endpoint and every error answer, driven
//! through `tower::ServiceExt::oneshot`. Time is tokio's paused clock, so
//! heartbeats, long-polls and lag grace periods take no real time.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use stub::{Config, Source};

mod common;
use common::*;

#[tokio::test]
async fn healthz_answers_with_the_epoch_and_the_ids_held() {
    let res = call(&stub(3), get("/healthz")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        json(res).await,
        serde_json::json!({"status": "ok", "epoch": "000000005eed", "oldest": 1, "head": 3, "log": {"kind": "memory", "connected": true}})
    );
}

#[tokio::test]
async fn polling_pages_through_the_log() {
    let s = stub(5);
    let page = json(call(&s, get("/events?cursor=1&limit=2")).await).await;
    let ids: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
    assert_eq!(
        (page["next_cursor"].as_u64(), page["head"].as_u64()),
        (Some(3), Some(5))
    );
    // The page parses as the wire's polling form.
    let typed: wire::poll::Page = serde_json::from_value(page).unwrap();
    assert_eq!(typed.events[0].payload, payloads(5)[1]);

    // No cursor: from the oldest retained. At the head: nothing, cursor kept.
    let page = json(call(&s, get("/events")).await).await;
    assert_eq!(page["events"][0]["id"], 1);
    let page = json(call(&s, get("/events?cursor=5")).await).await;
    assert_eq!(
        page,
        serde_json::json!({"events": [], "next_cursor": 5, "head": 5, "epoch": "000000005eed"})
    );
}

#[tokio::test]
async fn a_cursor_ahead_of_the_head_is_409_naming_the_head() {
    let body = check_error(
        call(&stub(5), get("/events?cursor=9")).await,
        StatusCode::CONFLICT,
        "cursor_ahead",
    )
    .await;
    assert_eq!(body["error"]["head"], 5);
}

#[tokio::test]
async fn a_cursor_older_than_retention_is_410_naming_the_oldest() {
    let s = stub_with(
        Config {
            retention: 3,
            ..Config::default()
        },
        10,
    );
    let body = check_error(
        call(&s, get("/events?cursor=2")).await,
        StatusCode::GONE,
        "cursor_expired",
    )
    .await;
    assert_eq!(
        (body["error"]["oldest"].as_u64(), body["error"]["head"].as_u64()),
        (Some(8), Some(10))
    );
    // Right at the edge is fine.
    let page = json(call(&s, get("/events?cursor=7")).await).await;
    assert_eq!(page["events"][0]["id"], 8);
}

#[tokio::test]
async fn bad_polling_parameters_are_400() {
    let s = stub(1);
    for uri in [
        "/events?cursor=abc",
        "/events?cursor=-1",
        "/events?limit=0",
        "/events?limit=10001",
        "/events?wait_ms=30001",
        "/events?limit=x",
    ] {
        check_error(call(&s, get(uri)).await, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_answers_as_soon_as_an_event_exists() {
    let s = stub(2);
    let publisher = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        publisher.publish(Source::Ingest, &payloads(1)).await.unwrap();
    });
    let started = tokio::time::Instant::now();
    let page = json(call(&s, get("/events?cursor=2&wait_ms=20000")).await).await;
    assert_eq!(page["events"][0]["id"], 3);
    assert_eq!(started.elapsed(), Duration::from_millis(700));

    // Nothing arrives: the wait ends at wait_ms with an empty page.
    let started = tokio::time::Instant::now();
    let page = json(call(&s, get("/events?cursor=3&wait_ms=1500")).await).await;
    assert_eq!(page["events"], serde_json::json!([]));
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn the_stream_replays_says_caught_up_then_goes_live_with_heartbeats() {
    let s = stub(4);
    let res = call(&s, get("/stream?cursor=1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut body = res.into_body();
    assert_eq!(frame(&mut body).await.unwrap(), "retry: 1000\n");
    let replay = frame(&mut body).await.unwrap();
    assert_eq!(sse_ids(&replay), [2, 3, 4]);
    assert!(
        replay.starts_with("event: tick\nid: 000000005eed-2\ndata: {"),
        "{replay}"
    );
    assert_eq!(
        frame(&mut body).await.unwrap(),
        "event: caught_up\ndata: {\"type\":\"caught_up\",\"head\":4}\n\n"
    );
    s.publish(Source::Ingest, &payloads(1)).await.unwrap();
    assert_eq!(sse_ids(&frame(&mut body).await.unwrap()), [5]);
    // 15 s of silence: a heartbeat carrying the head.
    let started = tokio::time::Instant::now();
    assert_eq!(
        frame(&mut body).await.unwrap(),
        "event: heartbeat\ndata: {\"type\":\"heartbeat\",\"head\":5}\n\n"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(15));
}

#[tokio::test]
async fn last_event_id_wins_over_the_cursor() {
    let s = stub(6);
    let req = Request::get("/stream?cursor=1")
        .header("last-event-id", "4")
        .body(Body::empty())
        .unwrap();
    let mut body = call(&s, req).await.into_body();
    frame(&mut body).await;
    assert_eq!(sse_ids(&frame(&mut body).await.unwrap()), [5, 6]);

    let req = Request::get("/stream")
        .header("last-event-id", "x7")
        .body(Body::empty())
        .unwrap();
    check_error(call(&s, req).await, StatusCode::BAD_REQUEST, "bad_request").await;
    check_error(
        call(&s, get("/stream?cursor=x")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn an_expired_stream_cursor_gets_an_event_then_the_end() {
    let s = stub_with(
        Config {
            retention: 3,
            ..Config::default()
        },
        10,
    );
    let mut body = call(&s, get("/stream?cursor=0")).await.into_body();
    frame(&mut body).await;
    assert_eq!(
        frame(&mut body).await.unwrap(),
        "event: cursor_expired\ndata: {\"type\":\"cursor_expired\",\"cursor\":0,\"oldest\":8,\"head\":10}\n\n"
    );
    assert_eq!(frame(&mut body).await, None);
}

#[tokio::test]
async fn a_live_client_too_far_behind_is_told_overflow_and_dropped() {
    let config = Config {
        max_lag: 10,
        lag_grace_ms: 0,
        ..Config::default()
    };
    let s = stub_with(config, 1);
    let mut body = call(&s, get("/stream?cursor=0")).await.into_body();
    frame(&mut body).await; // retry
    frame(&mut body).await; // event 1
    frame(&mut body).await; // caught_up
    s.publish(Source::Ingest, &payloads(50)).await.unwrap();
    assert_eq!(
        frame(&mut body).await.unwrap(),
        "event: overflow\ndata: {\"type\":\"overflow\",\"last_id\":1}\n\n"
    );
    assert_eq!(frame(&mut body).await, None);
    let m = json(call(&s, get("/metrics.json")).await).await;
    assert_eq!(m["slow_consumer_drops"], 1);
}

#[tokio::test]
async fn connections_are_listed_and_can_be_dropped() {
    let s = stub(3);
    let mut body = call(&s, get("/stream?cursor=1")).await.into_body();
    frame(&mut body).await;
    frame(&mut body).await;
    let list = json(call(&s, get("/connections")).await).await;
    let conn = &list[0];
    assert_eq!(conn["transport"], "sse");
    assert_eq!(conn["last_id_sent"], 3);
    assert_eq!(conn["lag"], 0);
    assert_eq!(conn["events_sent"], 2);
    assert_eq!(conn["peer"], "unknown");
    assert_eq!(conn["connected_since"], "2026-03-02T14:30:00Z");
    let id = conn["id"].as_u64().unwrap();

    let res = call(
        &s,
        Request::delete(format!("/connections/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The stream ends (after any frame already produced).
    while frame(&mut body).await.is_some() {}
    drop(body);
    assert_eq!(
        json(call(&s, get("/connections")).await).await,
        serde_json::json!([])
    );

    let res = call(
        &s,
        Request::delete(format!("/connections/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    check_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call(
        &s,
        Request::delete("/connections/abc").body(Body::empty()).unwrap(),
    )
    .await;
    check_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn ws_without_an_upgrade_is_426() {
    check_error(
        call(&stub(1), get("/ws")).await,
        StatusCode::UPGRADE_REQUIRED,
        "upgrade_required",
    )
    .await;
}

#[tokio::test]
async fn metrics_in_prometheus_text_and_json() {
    let s = stub(7);
    call(&s, get("/events?cursor=0&limit=3")).await;
    let res = call(&s, get("/metrics")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = body_text(res).await;
    for line in [
        "stub_head_id 7",
        "stub_oldest_id 1",
        "stub_events_published_total 7",
        "stub_events_sent_total{transport=\"poll\"} 3",
        "stub_connections{transport=\"sse\"} 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let m = json(call(&s, get("/metrics.json")).await).await;
    assert_eq!(m["head_id"], 7);
    assert_eq!(m["events_sent"]["poll"], 3);
    assert_eq!(m["connections"]["ws"], 0);
}

#[tokio::test]
async fn ingest_takes_a_json_array_or_ndjson_and_gives_the_next_ids() {
    let s = stub(2);
    let res = call(&s, post(&format!("[{TICK},{TICK}]"), Some("application/json"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        json(res).await,
        serde_json::json!({"first_id": 3, "last_id": 4, "head": 4, "epoch": "000000005eed", "replayed": false})
    );
    let res = call(
        &s,
        post(&format!("{TICK}\n\n{TICK}\n"), Some("application/x-ndjson")),
    )
    .await;
    assert_eq!(
        json(res).await,
        serde_json::json!({"first_id": 5, "last_id": 6, "head": 6, "epoch": "000000005eed", "replayed": false})
    );
    let page = json(call(&s, get("/events?cursor=5")).await).await;
    assert_eq!(page["events"][0]["symbol"], "AAPL");
    assert_eq!(page["events"][0]["pub_us"], 1_772_461_800_000_000u64);
}

#[tokio::test]
async fn bad_ingest_bodies_are_refused_whole() {
    let s = stub_with(
        Config {
            max_body_bytes: 1024,
            ..Config::default()
        },
        2,
    );
    let bad_item = format!("[{TICK},{}]", TICK.replace("191.5", "-3"));
    let body = check_error(
        call(&s, post(&bad_item, Some("application/json"))).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("item 2: field `last`"),
        "{body}"
    );
    for (text, ct, status, code) in [
        (
            "[1,",
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "",
            Some("application/x-ndjson"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            TICK,
            Some("text/csv"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "{\"kind\":\"tick\"}",
            Some("application/x-ndjson"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        check_error(call(&s, post(text, ct)).await, status, code).await;
    }
    let big = format!("[{}]", vec![TICK; 20].join(","));
    check_error(
        call(&s, post(&big, Some("application/json"))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let req = Request::post("/events")
        .body(Body::from(vec![0xFFu8, 0xFE]))
        .unwrap();
    check_error(call(&s, req).await, StatusCode::BAD_REQUEST, "bad_request").await;
    // Nothing was published by any of them.
    assert_eq!(s.log().head(), 2);
}

#[tokio::test]
async fn a_token_guards_everything_but_healthz() {
    let s = stub_with(
        Config {
            token: Some("s3cret".into()),
            ..Config::default()
        },
        1,
    );
    assert_eq!(call(&s, get("/healthz")).await.status(), StatusCode::OK);
    for uri in [
        "/events",
        "/stream",
        "/connections",
        "/metrics",
        "/metrics.json",
        "/ws",
    ] {
        let res = call(&s, get(uri)).await;
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        check_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let with = |auth: &str| {
        Request::get("/events")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&s, with("Bearer s3cret")).await.status(), StatusCode::OK);
    assert_eq!(
        call(&s, with("Bearer s3cre")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, with("Bearer s3cret2")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, with("Basic s3cret")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Browsers' EventSource cannot set headers: the query form opens a
    // stream (and nothing else: see tests/security.rs).
    assert_eq!(
        call(&s, get("/stream?access_token=s3cret")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&s, get("/stream?access_token=nope")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = call(&s, post(TICK, None)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let s = stub_with(
        Config {
            cors_origins: vec!["http://localhost:3000".into()],
            ..Config::default()
        },
        1,
    );
    let preflight = |origin: &str| {
        Request::options("/stream")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "last-event-id")
            .body(Body::empty())
            .unwrap()
    };
    let res = call(&s, preflight("http://localhost:3000")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    assert!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("last-event-id")
    );
    let res = call(&s, preflight("http://evil.example")).await;
    assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let req = Request::get("/healthz")
        .header(header::ORIGIN, "http://localhost:3000")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        call(&s, req).await.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let s = stub(0);
    check_error(call(&s, get("/nope")).await, StatusCode::NOT_FOUND, "not_found").await;
    let req = Request::put("/events").body(Body::empty()).unwrap();
    check_error(
        call(&s, req).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn streaming_can_be_turned_off_and_polling_still_works() {
    let s = stub(2);
    s.set_streaming(false);
    check_error(call(&s, get("/stream")).await, StatusCode::NOT_FOUND, "not_found").await;
    check_error(call(&s, get("/ws")).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(call(&s, get("/events")).await.status(), StatusCode::OK);
    s.set_streaming(true);
    assert_eq!(call(&s, get("/stream")).await.status(), StatusCode::OK);
}

/// An event whose kind is a control name would go out on SSE as, say,
/// `event: heartbeat` with an id, and every client would fail to read it.
#[tokio::test]
async fn an_event_kind_that_is_a_control_name_is_refused_naming_kind() {
    let s = stub(2);
    for control in wire::Control::every() {
        let name = control.name();
        let one = format!(r#"{{"kind":"{name}","head":7}}"#);
        for (body, ct) in [
            (one.clone(), Some("application/x-ndjson")),
            (format!("[{TICK},{one}]"), Some("application/json")),
        ] {
            let err = check_error(
                call(&s, post(&body, ct)).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            )
            .await;
            let message = err["error"]["message"].as_str().unwrap();
            assert!(message.contains("field `kind`"), "{name}: {message}");
            assert!(message.contains(name), "{name}: {message}");
        }
    }
    assert_eq!(s.log().head(), 2, "nothing was published");
    assert_eq!(
        json(call(&s, get("/metrics.json")).await).await["events_published"],
        2
    );
}
