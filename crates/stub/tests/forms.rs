//! The stub's bytes are `wire`'s forms, byte for byte: a polling page equals
//! `Page::to_json`, the SSE body equals `wire::sse`'s encoders, and WebSocket
//! messages on a real socket equal `wire::ws::encode`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use stub::{Config, Log, Source, Stub};
use tower::ServiceExt;
use wire::{Control, Event, Message, Payload};

const PUB_US: u64 = 1_772_461_800_000_000;

fn payloads(n: usize) -> Vec<Payload> {
    let all = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    all.into_iter().cycle().take(n).collect()
}

/// A stub holding `n` events, and those events as `wire` types.
async fn stub(n: usize) -> (Stub, Vec<Event>) {
    let config = Config::default();
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| PUB_US),
    );
    let payloads = payloads(n);
    stub.publish(Source::Fixture, &payloads).await.unwrap();
    let events = payloads
        .into_iter()
        .zip(1..)
        .map(|(payload, id)| Event {
            id,
            pub_us: Some(PUB_US),
            prev: None,
            payload,
        })
        .collect();
    (stub, events)
}

async fn get(stub: &Stub, uri: &str) -> axum::response::Response {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    let res = stub::app(stub.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

#[tokio::test]
async fn a_polling_page_is_wires_page() {
    let (s, events) = stub(6).await;
    for (uri, from, to, next) in [
        ("/events?cursor=1&limit=3", 1, 4, 4),
        ("/events", 0, 6, 6),
        ("/events?cursor=6", 6, 6, 6),
    ] {
        let body = get(&s, uri).await.into_body().collect().await.unwrap().to_bytes();
        let page = wire::poll::Page {
            events: events[from..to].to_vec(),
            next_cursor: next,
            head: 6,
            epoch: Some(s.log().epoch()),
        };
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), page.to_json(), "{uri}");
    }
}

#[tokio::test]
async fn the_sse_body_is_wires_sse_form() {
    let (s, events) = stub(5).await;
    let mut expected = Vec::new();
    sse::encode::retry(&mut expected, Config::default().retry_ms);
    for e in &events[2..] {
        let cursor = wire::Cursor::new(s.log().epoch(), e.id);
        wire::sse::encode_parts(&mut expected, e.payload.kind(), cursor, &e.to_json());
    }
    wire::sse::encode_control(&mut expected, &Control::caught_up(5));

    let mut body = get(&s, "/stream?cursor=2").await.into_body();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("a frame in time")
            .expect("the stream goes on")
            .unwrap();
        got.extend_from_slice(&frame.into_data().unwrap());
    }
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

#[tokio::test]
async fn websocket_messages_are_wires_ws_form() {
    let (s, events) = stub(4).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(stub::serve(listener, s.clone(), std::future::pending()));

    let mut expected: Vec<String> = events[1..]
        .iter()
        .map(|e| wire::ws::encode(&Message::Event(e.clone())))
        .collect();
    expected.push(wire::ws::encode(&Message::Control(Control::caught_up(4))));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws?cursor=1"), stream)
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            got.push(text.to_string());
        }
    }
    assert_eq!(got, expected);
    assert!(got[0].starts_with("{\"type\":\"event\","), "{}", got[0]);

    s.shutdown_token().cancel();
    server.await.unwrap();
}
