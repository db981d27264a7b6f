//! Filtered subscriptions at the server: bad filters are 400s naming the
//! value on every endpoint; a filtered SSE stream and page carry only
//! matches, each with `prev`, and `caught_up` / heartbeats say how far the
//! server looked; over real TCP, a WebSocket `subscribe` mid-stream takes
//! effect at the position it acknowledges, and nothing earlier arrives.

mod common;
use common::{call, check_error, frame, get, json, payloads, stub, stub_with};

use std::time::Duration;

use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use stub::{Config, Source};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wire::{Control, Filter, Message};

/// The ids of the first `n` fixture events that `filter` passes.
fn matching(filter: &Filter, n: usize) -> Vec<u64> {
    (1..)
        .zip(payloads(n))
        .filter(|(_, p)| filter.matches_payload(p))
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn a_bad_filter_is_a_400_naming_it_on_every_endpoint() {
    let s = stub(10);
    let many: Vec<String> = (0..1025).map(|i| format!("S{i}")).collect();
    let too_many = format!("symbols={}", many.join(","));
    let cases = [
        ("kinds=tick,trade", "\"trade\""),
        ("symbols=AAPL,%20BAD%24", "BAD$"),
        (too_many.as_str(), "at most 1024"),
    ];
    for path in ["/stream", "/events", "/ws"] {
        for (query, names) in &cases {
            let res = call(&s, get(&format!("{path}?{query}"))).await;
            let body = check_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(names), "{path}?{query}: {message}");
        }
    }
    // 1,024 symbols is the limit, not past it.
    let ok = format!("/events?symbols={}", many[..1024].join(","));
    assert_eq!(call(&s, get(&ok)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_filtered_page_holds_only_matches_each_with_its_prev() {
    let s = stub(500);
    let filter = Filter::from_query(Some("AAPL,SPY"), Some("tick")).unwrap();
    let want = matching(&filter, 500);
    let mut got = Vec::new();
    let mut cursor = 0;
    let mut last = 0;
    loop {
        let page = json(
            call(
                &s,
                get(&format!("/events?cursor={cursor}&limit=7&{}", filter.to_query())),
            )
            .await,
        )
        .await;
        let page: wire::poll::Page = serde_json::from_value(page).unwrap();
        for e in &page.events {
            assert_eq!(e.prev, Some(last), "event {}", e.id);
            assert!(filter.matches_payload(&e.payload));
            last = e.id;
            got.push(e.id);
        }
        assert!(page.next_cursor >= cursor);
        if page.events.is_empty() {
            assert_eq!(page.next_cursor, 500, "an empty page looked through to the head");
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn a_filtered_stream_says_how_far_it_looked() {
    let config = Config {
        heartbeat_ms: 1000,
        ..Config::default()
    };
    let s = stub_with(config, 300);
    let filter = Filter::from_query(Some("NVDA"), Some("news")).unwrap();
    let want = matching(&filter, 300);
    let res = call(&s, get(&format!("/stream?{}", filter.to_query()))).await;
    let mut body = res.into_body();
    let mut text = String::new();
    while !text.contains("event: caught_up") {
        text.push_str(&frame(&mut body).await.unwrap());
    }
    let messages = sse_messages(&text);
    let events: Vec<&wire::Event> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Event(e) => Some(e),
            Message::Control(_) => None,
        })
        .collect();
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), want);
    let last = *want.last().unwrap();
    assert_eq!(
        messages.last(),
        Some(&Message::Control(Control::CaughtUp {
            head: 300,
            scanned: Some(300),
            prev: Some(last)
        }))
    );
    // Events it does not want move the head; the heartbeat has looked
    // through them.
    let unwanted: Vec<wire::Payload> = payloads(300)
        .into_iter()
        .filter(|p| !filter.matches_payload(p))
        .take(40)
        .collect();
    s.publish(Source::Ingest, &unwanted).await.unwrap();
    let beat = sse_messages(&frame(&mut body).await.unwrap());
    assert_eq!(
        beat,
        vec![Message::Control(Control::Heartbeat {
            head: 340,
            scanned: Some(340),
            prev: Some(last)
        })]
    );
}

fn sse_messages(text: &str) -> Vec<Message> {
    let mut decoder = sse::Decoder::default();
    let mut out = Vec::new();
    decoder.push(text.as_bytes());
    while let Some(frame) = decoder.next_frame() {
        if let sse::Frame::Event(e) = frame.unwrap() {
            out.push(wire::sse::decode(&e).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn a_websocket_subscribe_mid_stream_takes_effect_at_its_acknowledged_position() {
    let s = stub(200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(stub::serve(listener, s.clone(), std::future::pending()));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}/ws?cursor=0&symbols=AAPL"), stream)
            .await
            .unwrap();
    let aapl = Filter::from_query(Some("AAPL"), None).unwrap();
    let mut last = 0;
    // The replay: AAPL only, then caught_up.
    loop {
        match recv(&mut ws).await {
            Message::Event(e) => {
                assert!(aapl.matches_payload(&e.payload));
                assert_eq!(e.prev, Some(last));
                last = e.id;
            }
            Message::Control(Control::CaughtUp { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, *matching(&aapl, 200).last().unwrap());
    ws.send(WsMessage::text(r#"{"type":"subscribe","symbols":["NVDA"]}"#))
        .await
        .unwrap();
    let Message::Control(Control::Subscribed { at, prev }) = recv(&mut ws).await else {
        panic!("no acknowledgement")
    };
    assert_eq!(
        at, 200,
        "the subscription takes effect after the head it had sent"
    );
    let both = Filter::from_query(Some("AAPL,NVDA"), None).unwrap();
    assert_eq!(prev, *matching(&both, 200).last().unwrap());
    // NVDA events at or before 200 never come; after it, both symbols do.
    s.publish(Source::Ingest, &payloads(400)[200..400]).await.unwrap();
    let want: Vec<u64> = matching(&both, 400).into_iter().filter(|id| *id > 200).collect();
    let mut got = Vec::new();
    let mut chain = prev;
    while got.len() < want.len() {
        match recv(&mut ws).await {
            Message::Event(e) => {
                assert_eq!(e.prev, Some(chain), "event {}", e.id);
                chain = e.id;
                got.push(e.id);
            }
            Message::Control(Control::Heartbeat { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, want);
    // A bad subscribe closes with a reason naming it.
    ws.send(WsMessage::text(r#"{"type":"subscribe","kinds":["trade"]}"#))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert!(frame.reason.contains("\"trade\""), "{}", frame.reason);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

async fn recv(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Message {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WsMessage::Text(t) = msg {
            return wire::ws::decode(&t).unwrap();
        }
    }
}
