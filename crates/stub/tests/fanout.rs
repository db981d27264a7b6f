//! What makes fan-out cheap: an event rendered once and shared by every
//! connection, events that arrive within the write delay sharing one write,
//! and accepted sockets that send at once.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::serve::Listener as _;
use common::{call, get, payloads, sse_ids, stub, stub_with};
use http_body_util::BodyExt;
use stub::{Config, Source};

/// The next data frame of a body, as the bytes the server wrote.
async fn chunk(body: &mut Body) -> bytes::Bytes {
    let f = tokio::time::timeout(Duration::from_secs(60), body.frame())
        .await
        .expect("a frame in time")
        .expect("the stream goes on")
        .unwrap();
    f.into_data().unwrap()
}

/// A live stream, past `retry` and `caught_up`.
async fn live(s: &stub::Stub) -> Body {
    let mut body = call(s, get(&format!("/stream?cursor={}", s.log().head())))
        .await
        .into_body();
    let retry = chunk(&mut body).await;
    assert!(retry.starts_with(b"retry:"));
    let caught_up = chunk(&mut body).await;
    assert!(caught_up.starts_with(b"event: caught_up"));
    body
}

#[tokio::test(start_paused = true)]
async fn every_connection_writes_the_bytes_the_log_rendered_once() {
    let s = stub(3);
    let (mut a, mut b) = (live(&s).await, live(&s).await);
    s.publish(Source::Ingest, &payloads(1)).await.unwrap();
    let (from_a, from_b) = (chunk(&mut a).await, chunk(&mut b).await);
    assert_eq!(sse_ids(std::str::from_utf8(&from_a).unwrap()), [4]);
    let mut stored = None;
    s.log()
        .read_with(3, 1, &mut |e| stored = Some(e.sse(s.log().epoch()).clone()))
        .unwrap();
    let stored = stored.unwrap();
    assert_eq!(from_a, stored);
    // Not equal bytes: the same bytes, in the buffer the log filled.
    assert_eq!(
        from_a.as_ptr(),
        stored.as_ptr(),
        "connection a encoded the event itself"
    );
    assert_eq!(
        from_b.as_ptr(),
        stored.as_ptr(),
        "connection b encoded the event itself"
    );
}

#[tokio::test(start_paused = true)]
async fn events_arriving_within_the_write_delay_share_the_next_write() {
    let config = Config {
        write_delay_ms: 50,
        ..Config::default()
    };
    let s = stub_with(config, 3);
    let mut body = live(&s).await;
    let t0 = tokio::time::Instant::now();
    // After a quiet spell the first event goes out at once.
    s.publish(Source::Ingest, &payloads(1)).await.unwrap();
    assert_eq!(
        sse_ids(std::str::from_utf8(&chunk(&mut body).await).unwrap()),
        [4]
    );
    assert_eq!(t0.elapsed(), Duration::ZERO);
    // Three more, 10 ms apart: one write, 50 ms after the first.
    let publisher = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                s.publish(Source::Ingest, &payloads(1)).await.unwrap();
            }
        })
    };
    let next = chunk(&mut body).await;
    assert_eq!(sse_ids(std::str::from_utf8(&next).unwrap()), [5, 6, 7]);
    assert_eq!(t0.elapsed(), Duration::from_millis(50));
    publisher.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_write_delay_each_event_is_written_when_it_arrives() {
    let s = stub(3);
    let mut body = live(&s).await;
    let t0 = tokio::time::Instant::now();
    for id in 4..=6 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        s.publish(Source::Ingest, &payloads(1)).await.unwrap();
        assert_eq!(
            sse_ids(std::str::from_utf8(&chunk(&mut body).await).unwrap()),
            [id]
        );
        assert_eq!(t0.elapsed(), Duration::from_millis(10 * (id - 3)));
    }
}

#[tokio::test]
async fn accepted_sockets_send_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut listener = stub::nodelay(listener);
    let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = listener.accept().await;
    assert!(
        accepted.nodelay().unwrap(),
        "TCP_NODELAY is off: Nagle holds small writes"
    );
}
