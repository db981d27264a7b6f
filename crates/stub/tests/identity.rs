//! Stream identity on every transport: a cursor names an id in an epoch.
//! One from another epoch gets a `reset` first (SSE, WebSocket) or 409
//! `epoch_changed` (polling); one past the head gets 409 `cursor_ahead`
//! everywhere; SSE ids carry the epoch, so `Last-Event-ID` resumes exactly;
//! every answer of the streaming and polling endpoints names its epoch.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use stub::{Config, Stub};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use wire::{Control, Cursor, EPOCH_HEADER, Epoch};

mod common;
use common::*;

/// The epoch of every stub here (see `common::stub_with`).
fn ours() -> Epoch {
    Epoch::from_random(0x5eed)
}

/// An epoch no stub here has: what a client of a recreated log holds.
fn theirs() -> Epoch {
    Epoch::from_random(0xbad_c0de)
}

/// 10 events, the newest 3 retained: oldest 8, head 10.
fn trimmed() -> Stub {
    stub_with(
        Config {
            retention: 3,
            ..Config::default()
        },
        10,
    )
}

fn with_last_event_id(uri: &str, id: &str) -> Request<Body> {
    Request::get(uri)
        .header("last-event-id", id)
        .body(Body::empty())
        .unwrap()
}

/// The full cursors of a body's SSE `id:` lines.
fn sse_cursors(text: &str) -> Vec<Cursor> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|i| i.parse().unwrap())
        .collect()
}

/// The stub on a real socket, until its shutdown token is cancelled.
async fn served(s: &Stub) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        tokio::spawn(stub::serve(listener, s.clone(), std::future::pending())),
    )
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn ws_connect(
    addr: SocketAddr,
    query: &str,
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://{addr}/ws{query}"), stream).await
}

/// A refused WebSocket handshake: its status and JSON error body.
async fn ws_refused(addr: SocketAddr, query: &str) -> (StatusCode, Value) {
    match ws_connect(addr, query).await {
        Err(tungstenite::Error::Http(res)) => {
            let body = res.body().clone().unwrap_or_default();
            let header = res.headers().get(EPOCH_HEADER).cloned();
            let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            if status != StatusCode::BAD_REQUEST {
                assert_eq!(header.unwrap(), ours().to_string().as_str(), "{body}");
            }
            (status, body)
        }
        Err(e) => panic!("not an HTTP refusal: {e}"),
        Ok(_) => panic!("{query} was upgraded"),
    }
}

async fn ws_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .unwrap();
        if let WsMessage::Text(text) = msg {
            return text.to_string();
        }
    }
}

fn reset_of(s: &Stub) -> Control {
    Control::Reset {
        from: theirs(),
        epoch: ours(),
        oldest: s.log().oldest(),
        head: s.log().head(),
    }
}

#[tokio::test]
async fn sse_from_another_epoch_gets_the_reset_first_then_the_new_epoch() {
    let s = trimmed();
    let reset_frame = format!(
        "event: reset\nid: {}-7\ndata: {{\"type\":\"reset\",\"from\":\"{}\",\"epoch\":\"{}\",\"oldest\":8,\"head\":10}}\n\n",
        ours(),
        theirs(),
        ours()
    );
    // Id 2 is long expired here, and 99 is past the head: in another epoch
    // neither matters, the reset comes first either way.
    for req in [
        get(&format!("/stream?cursor={}-2", theirs())),
        with_last_event_id("/stream?cursor=3", &format!("{}-99", theirs())),
    ] {
        let res = call(&s, req).await;
        assert_eq!(res.status(), StatusCode::OK);
        let mut body = res.into_body();
        assert_eq!(frame(&mut body).await.unwrap(), "retry: 1000\n");
        assert_eq!(frame(&mut body).await.unwrap(), reset_frame);
        let replay = frame(&mut body).await.unwrap();
        assert_eq!(sse_cursors(&replay), [8, 9, 10].map(|id| Cursor::new(ours(), id)));
        assert_eq!(
            frame(&mut body).await.unwrap(),
            "event: caught_up\ndata: {\"type\":\"caught_up\",\"head\":10}\n\n"
        );
    }
    let m = json(call(&s, get("/metrics.json")).await).await;
    assert_eq!(m["resets"], 2);
    let text = body_text(call(&s, get("/metrics")).await).await;
    assert!(text.lines().any(|l| l == "stub_resets_total 2"), "{text}");
}

#[tokio::test]
async fn ws_from_another_epoch_gets_the_reset_as_its_first_message() {
    let s = trimmed();
    let (addr, server) = served(&s).await;
    let (mut ws, res) = ws_connect(addr, &format!("?cursor={}-2", theirs()))
        .await
        .unwrap();
    assert_eq!(res.headers()[EPOCH_HEADER], ours().to_string().as_str());
    assert_eq!(ws_text(&mut ws).await, wire::ws::encode_control(&reset_of(&s)));
    let mut ids = Vec::new();
    for _ in 8..=10 {
        match wire::ws::decode(&ws_text(&mut ws).await).unwrap() {
            wire::Message::Event(e) => ids.push(e.id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids, [8, 9, 10]);
    assert_eq!(
        ws_text(&mut ws).await,
        wire::ws::encode_control(&Control::caught_up(10))
    );
    assert_eq!(s.metrics_json()["resets"], 1);
    drop(ws);
    s.shutdown_token().cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn polling_from_another_epoch_is_409_epoch_changed() {
    let s = trimmed();
    let res = call(&s, get(&format!("/events?cursor={}-9", theirs()))).await;
    assert_eq!(res.headers()[EPOCH_HEADER], ours().to_string().as_str());
    let body = check_error(res, StatusCode::CONFLICT, "epoch_changed").await;
    let e = &body["error"];
    assert_eq!(
        (&e["epoch"], &e["oldest"], &e["head"]),
        (&json!(ours().to_string()), &json!(8), &json!(10))
    );
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(&theirs().to_string()), "{message}");
    assert!(message.contains(&format!("{}-7", ours())), "{message}");
    assert!(message.contains("no cursor"), "{message}");
    let text = body_text(call(&s, get("/metrics")).await).await;
    assert!(
        text.lines()
            .any(|l| l == "stub_requests_rejected_total{reason=\"epoch_changed\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cursor_past_the_head_is_409_cursor_ahead_on_every_transport() {
    let s = stub(3);
    let check = |body: Value| {
        let e = &body["error"];
        assert_eq!(e["epoch"], ours().to_string(), "{body}");
        assert_eq!(e["head"], 3, "{body}");
        assert!(e["message"].as_str().unwrap().contains("past the head"), "{body}");
    };
    let same = |id: u64| Cursor::new(ours(), id).to_string();
    let max = u64::MAX.to_string();
    for req in [
        get("/events?cursor=4"),
        get(&format!("/events?cursor={}", same(4))),
        // A long-poll too: refused at once, not left waiting.
        get(&format!("/events?cursor={max}&wait_ms=30000")),
        get("/stream?cursor=4"),
        get(&format!("/stream?cursor={}", same(9))),
        with_last_event_id("/stream", &same(4)),
        with_last_event_id("/stream?cursor=1", &max),
    ] {
        let uri = req.uri().clone();
        let res = call(&s, req).await;
        assert_eq!(res.headers()[EPOCH_HEADER], ours().to_string().as_str(), "{uri}");
        check(check_error(res, StatusCode::CONFLICT, "cursor_ahead").await);
    }
    let (addr, server) = served(&s).await;
    for query in ["?cursor=4".to_owned(), format!("?cursor={}", same(4))] {
        let (status, body) = ws_refused(addr, &query).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "cursor_ahead");
        check(body);
    }
    assert!(s.connections().is_empty(), "{:?}", s.connections());
    let text = body_text(call(&s, get("/metrics")).await).await;
    assert!(
        text.lines()
            .any(|l| l == "stub_requests_rejected_total{reason=\"cursor_ahead\"} 9"),
        "{text}"
    );
    s.shutdown_token().cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn bare_and_same_epoch_cursors_up_to_the_head_still_work() {
    let s = stub(3);
    for cursor in ["2".to_owned(), format!("{}-2", ours())] {
        let page = json(call(&s, get(&format!("/events?cursor={cursor}"))).await).await;
        assert_eq!(page["events"][0]["id"], 3, "{cursor}");
        assert_eq!(page["epoch"], ours().to_string());
        let mut body = call(&s, get(&format!("/stream?cursor={cursor}")))
            .await
            .into_body();
        frame(&mut body).await;
        assert_eq!(
            sse_cursors(&frame(&mut body).await.unwrap()),
            [Cursor::new(ours(), 3)]
        );
    }
    // At the head exactly: nothing yet, no error.
    let page = json(call(&s, get("/events?cursor=3")).await).await;
    assert_eq!(page["events"], json!([]));
    let mut body = call(&s, get(&format!("/stream?cursor={}-3", ours())))
        .await
        .into_body();
    frame(&mut body).await;
    assert_eq!(
        frame(&mut body).await.unwrap(),
        "event: caught_up\ndata: {\"type\":\"caught_up\",\"head\":3}\n\n"
    );

    let (addr, server) = served(&s).await;
    for query in [
        "?cursor=2".to_owned(),
        format!("?cursor={}-2", ours()),
        "?cursor=3".to_owned(),
    ] {
        let (mut ws, _) = ws_connect(addr, &query).await.unwrap();
        let first = ws_text(&mut ws).await;
        if query.ends_with('3') {
            assert_eq!(first, wire::ws::encode_control(&Control::caught_up(3)));
        } else {
            match wire::ws::decode(&first).unwrap() {
                wire::Message::Event(e) => assert_eq!(e.id, 3, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
    assert_eq!(s.metrics_json()["resets"], 0);
    s.shutdown_token().cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn sse_ids_carry_the_epoch_and_last_event_id_resumes_right_after_it() {
    let s = stub(5);
    let mut body = call(&s, get("/stream")).await.into_body();
    frame(&mut body).await;
    let all = frame(&mut body).await.unwrap();
    assert_eq!(
        sse_cursors(&all),
        (1..=5).map(|id| Cursor::new(ours(), id)).collect::<Vec<_>>()
    );
    assert!(
        all.starts_with(&format!("event: tick\nid: {}-1\ndata: {{", ours())),
        "{all}"
    );

    for (req, first) in [
        (
            with_last_event_id("/stream?cursor=1", &format!("{}-3", ours())),
            4,
        ),
        (with_last_event_id("/stream", "3"), 4),
        // An empty Last-Event-ID is none: the query's cursor counts.
        (with_last_event_id("/stream?cursor=2", ""), 3),
    ] {
        let mut body = call(&s, req).await.into_body();
        frame(&mut body).await;
        let ids: Vec<u64> = sse_cursors(&frame(&mut body).await.unwrap())
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, (first..=5).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn malformed_cursors_are_400_naming_both_forms() {
    let s = stub(3);
    let upper = ours().to_string().to_uppercase();
    let mut requests = Vec::new();
    for bad in [
        "x",
        "-1",
        "0a1b-3",
        "+2",
        &format!("{upper}-1"),
        &format!("{}-", ours()),
    ] {
        let q = bad.replace('+', "%2B");
        requests.push(get(&format!("/events?cursor={q}")));
        requests.push(get(&format!("/stream?cursor={q}")));
        requests.push(with_last_event_id("/stream", bad));
    }
    let mut non_ascii = with_last_event_id("/stream", "x");
    non_ascii.headers_mut().insert(
        "last-event-id",
        axum::http::HeaderValue::from_bytes("é7".as_bytes()).unwrap(),
    );
    requests.push(non_ascii);
    for req in requests {
        let uri = req.uri().clone();
        let body = check_error(call(&s, req).await, StatusCode::BAD_REQUEST, "bad_request").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("(42)") && message.contains("(0a1b2c3d4e5f-42)"),
            "{uri}: {message}"
        );
    }
    let (addr, server) = served(&s).await;
    let (status, body) = ws_refused(addr, "?cursor=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(0a1b2c3d4e5f-42)")
    );
    s.shutdown_token().cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn every_stream_page_publish_and_health_answer_names_its_epoch() {
    let s = trimmed();
    let epoch = ours().to_string();
    for req in [
        get("/healthz"),
        get("/events"),
        get("/stream"),
        post(TICK, Some("application/x-ndjson")),
        // Errors too: the client learns the epoch it must resume in.
        get("/events?cursor=2"),
        post("", Some("application/x-ndjson")),
    ] {
        let uri = (req.method().clone(), req.uri().clone());
        let res = call(&s, req).await;
        assert_eq!(res.headers()[EPOCH_HEADER], epoch.as_str(), "{uri:?}");
    }
    assert_eq!(
        json(call(&s, get("/healthz")).await).await,
        json!({"status": "ok", "epoch": epoch, "oldest": 9, "head": 11, "log": {"kind": "memory", "connected": true}})
    );
    // The WebSocket's 101 carries it (checked in the ws tests above too).
    let (addr, server) = served(&s).await;
    let (ws, res) = ws_connect(addr, "").await.unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()[EPOCH_HEADER], epoch.as_str());
    drop(ws);
    s.shutdown_token().cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn cors_exposes_the_epoch_and_allows_the_idempotency_key() {
    let s = stub_with(
        Config {
            cors_origins: vec!["http://localhost:3000".into()],
            ..Config::default()
        },
        1,
    );
    let preflight = Request::options("/events")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "idempotency-key,content-type")
        .body(Body::empty())
        .unwrap();
    let res = call(&s, preflight).await;
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    let req = Request::get("/events")
        .header("origin", "http://localhost:3000")
        .body(Body::empty())
        .unwrap();
    let res = call(&s, req).await;
    assert_eq!(res.headers()["access-control-expose-headers"], EPOCH_HEADER);
}
