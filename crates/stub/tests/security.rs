//! What a hostile web page or peer must not get from the stub, through the
//! router without sockets: no publishing by a cross-site form or
//! `text/plain` POST, no answer to a foreign `Host` (DNS rebinding), a
//! token in a URL that opens streams and nothing else, and cursors and
//! limits at the edges of their types answered, never a panic.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use stub::Config;

mod common;
use common::*;

fn with_host(mut req: Request<Body>, host: &str) -> Request<Body> {
    req.headers_mut().insert(header::HOST, host.parse().unwrap());
    req
}

/// A page on any site may POST `text/plain` (or no type) without a CORS
/// preflight; the stub answers 415 and publishes nothing.
#[tokio::test]
async fn only_json_and_ndjson_bodies_publish() {
    let s = stub(2);
    for ct in [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonl"),
    ] {
        let mut req = post(TICK, ct);
        req.headers_mut()
            .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        check_error(
            call(&s, req).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert_eq!(s.log().head(), 2, "nothing was published");
    for (ct, body) in [
        ("application/json; charset=utf-8", format!("[{TICK}]")),
        ("Application/JSON", format!("[{TICK}]")),
        ("application/x-ndjson", format!("{TICK}\n")),
    ] {
        let res = call(&s, post(&body, Some(ct))).await;
        assert_eq!(res.status(), StatusCode::OK, "{ct}");
    }
    assert_eq!(s.log().head(), 5);
    let text = body_text(call(&s, get("/metrics")).await).await;
    assert!(
        text.lines()
            .any(|l| l.contains("rejected") && l.ends_with("{reason=\"unsupported_media_type\"} 6")),
        "{text}"
    );
}

#[tokio::test]
async fn a_foreign_host_is_misdirected_unless_allowed() {
    let s = stub(2);
    for host in ["evil.example", "evil.example:8091", "127.0.0.1.evil.example", ""] {
        check_error(
            call(&s, with_host(get("/healthz"), host)).await,
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_host",
        )
        .await;
        let req = with_host(post(TICK, Some("application/x-ndjson")), host);
        assert_eq!(call(&s, req).await.status(), StatusCode::MISDIRECTED_REQUEST);
    }
    assert_eq!(s.log().head(), 2, "a rebound page published nothing");
    for host in [
        "127.0.0.1:8091",
        "10.1.2.3",
        "[::1]:8091",
        "[2001:db8::1]",
        "localhost:8091",
        "LOCALHOST",
    ] {
        let res = call(&s, with_host(get("/healthz"), host)).await;
        assert_eq!(res.status(), StatusCode::OK, "{host}");
    }
    // Without a Host header the request came from no browser.
    assert_eq!(call(&s, get("/healthz")).await.status(), StatusCode::OK);

    let named = stub_with(
        Config {
            allowed_hosts: vec!["wire.example.com".into()],
            ..Config::default()
        },
        0,
    );
    for (host, status) in [
        ("wire.example.com", StatusCode::OK),
        ("Wire.Example.COM:443", StatusCode::OK),
        ("example.com", StatusCode::MISDIRECTED_REQUEST),
    ] {
        let res = call(&named, with_host(get("/healthz"), host)).await;
        assert_eq!(res.status(), status, "{host}");
    }
    let any = stub_with(
        Config {
            allowed_hosts: vec!["*".into()],
            ..Config::default()
        },
        0,
    );
    let res = call(&any, with_host(get("/healthz"), "anything.example")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

fn guarded(events: usize) -> stub::Stub {
    stub_with(
        Config {
            token: Some("s3cret".into()),
            ..Config::default()
        },
        events,
    )
}

/// `?access_token=` is for the two streams a browser opens without
/// headers; a token leaked in a link can neither publish nor cut clients.
#[tokio::test]
async fn a_token_in_the_query_opens_streams_and_nothing_else() {
    let s = guarded(2);
    assert_eq!(
        call(&s, get("/stream?access_token=s3cret")).await.status(),
        StatusCode::OK
    );
    // Past auth: the WebSocket route then wants an upgrade.
    assert_eq!(
        call(&s, get("/ws?access_token=s3cret")).await.status(),
        StatusCode::UPGRADE_REQUIRED
    );
    let mut publish = post(TICK, Some("application/x-ndjson"));
    *publish.uri_mut() = "/events?access_token=s3cret".parse().unwrap();
    let cut = Request::delete("/connections/1?access_token=s3cret")
        .body(Body::empty())
        .unwrap();
    for req in [
        publish,
        cut,
        get("/events?access_token=s3cret"),
        get("/connections?access_token=s3cret"),
        get("/metrics?access_token=s3cret"),
    ] {
        check_error(call(&s, req).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_eq!(s.log().head(), 2, "nothing was published");
}

/// The scheme is case-insensitive (RFC 9110); the token is not.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = guarded(0);
    let with = |auth: &str| {
        Request::get("/events")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    for (auth, status) in [
        ("Bearer s3cret", StatusCode::OK),
        ("bearer s3cret", StatusCode::OK),
        ("BEARER s3cret", StatusCode::OK),
        ("Bearer   s3cret", StatusCode::OK),
        ("Bearer S3CRET", StatusCode::UNAUTHORIZED),
        ("Bearers3cret", StatusCode::UNAUTHORIZED),
        ("Bearer ", StatusCode::UNAUTHORIZED),
        ("Basic s3cret", StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(call(&s, with(auth)).await.status(), status, "{auth:?}");
    }
}

/// Cursors and limits at the ends of their types: answered by the rules,
/// never a panic (a debug build panics on overflow) nor a wrong answer.
#[tokio::test]
async fn cursors_and_limits_at_their_boundaries() {
    let max = u64::MAX;
    let s = stub(3);
    // Past the head: 409, whatever its size, bare or in this epoch.
    for cursor in [max.to_string(), format!("{}-{max}", s.log().epoch())] {
        let body = check_error(
            call(&s, get(&format!("/events?cursor={cursor}"))).await,
            StatusCode::CONFLICT,
            "cursor_ahead",
        )
        .await;
        assert_eq!(body["error"]["head"], 3);
    }
    // Past u64, or negative: a bad query, not a wrap-around.
    for q in [
        "cursor=18446744073709551616",
        "cursor=-1",
        "limit=0",
        "limit=18446744073709551616",
        "limit=10001",
        "wait_ms=18446744073709551615",
    ] {
        check_error(
            call(&s, get(&format!("/events?{q}"))).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
    let res = call(
        &s,
        Request::get("/stream")
            .header("last-event-id", max.to_string())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    check_error(res, StatusCode::CONFLICT, "cursor_ahead").await;
    check_error(
        call(
            &s,
            Request::get("/stream")
                .header("last-event-id", "18446744073709551616")
                .body(Body::empty())
                .unwrap(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    // Retention moved on: oldest is 6 of 10. The cursor just below the
    // oldest-but-one is expired; the one just before the oldest is not.
    let short = stub_with(
        Config {
            retention: 5,
            ..Config::default()
        },
        10,
    );
    let gone = check_error(
        call(&short, get("/events?cursor=4")).await,
        StatusCode::GONE,
        "cursor_expired",
    )
    .await;
    assert_eq!(gone["error"]["oldest"], 6);
    let page = json(call(&short, get("/events?cursor=5&limit=1")).await).await;
    assert_eq!(page["events"][0]["id"], 6);
    let page = json(call(&short, get("/events?cursor=10")).await).await;
    assert_eq!(page["next_cursor"], 10);
    assert_eq!(page["head"], 10);
}
