//! The idle deadline is on whole messages, not bytes, over real TCP: a
//! hand-written server sends SSE headers and then one byte every 200 ms of
//! an event it never finishes. With a 1 s idle timeout the client reports
//! the silent connection and reconnects, instead of staying connected.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use transport::{Client, ClientConfig, Failure, Lifecycle, PolicyConfig, TokioConnect, Transport};

/// Accepts connections; for each, reports it and drips a never-finished
/// event, one byte per 200 ms, for as long as the client stays.
async fn dripping_server() -> (String, mpsc::UnboundedReceiver<tokio::time::Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let _ = tx.send(tokio::time::Instant::now());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for byte in b"data: this event never ends ".iter().cycle() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if sock.write_all(&[*byte]).await.is_err() || sock.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_stream_dripping_bytes_of_an_unfinished_event_is_silent() {
    let (url, mut connections) = dripping_server().await;
    let mut config = ClientConfig::new(&url, Arc::new(|| 1));
    config.policy = PolicyConfig {
        transport: Transport::Sse,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        jitter: 0.0,
        ..PolicyConfig::default()
    };
    config.idle_timeout = Duration::from_secs(1);
    let client = Client::connect(TokioConnect, config).unwrap();
    let first = connections.recv().await.unwrap();
    // The deadline (1 s) plus the backoff (50 ms) plus slack.
    let second = tokio::time::timeout(Duration::from_secs(3), connections.recv())
        .await
        .expect("no reconnect: the dripping stream was kept open")
        .unwrap();
    let took = second - first;
    assert!(
        took >= Duration::from_millis(1000),
        "reconnected after {took:?}, before the deadline"
    );
    let silent = client.timeline().iter().any(|t| {
        matches!(
            &t.event,
            Lifecycle::Disconnected {
                cause: Failure::Silent { .. }
            }
        )
    });
    assert!(silent, "{:#?}", client.timeline());
    client.close().await;
}

/// A server that keeps the stream alive with comment lines (every 200 ms,
/// 1.6 s of them, past the 1 s deadline) and then sends event 1.
async fn commenting_server() -> (String, mpsc::UnboundedReceiver<tokio::time::Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let payload = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()[0].clone();
    let mut event = Vec::new();
    wire::sse::encode_event(
        &mut event,
        &wire::Event {
            id: 1,
            pub_us: None,
            prev: None,
            payload,
        },
    );
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let _ = tx.send(tokio::time::Instant::now());
            let event = event.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
                let _ = sock.write_all(head.as_bytes()).await;
                for _ in 0..8 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if sock.write_all(b": keep-alive\n").await.is_err() {
                        return;
                    }
                }
                let _ = sock.write_all(&event).await;
                // Hold the connection open.
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn comment_lines_keep_a_stream_alive() {
    let (url, mut connections) = commenting_server().await;
    let mut config = ClientConfig::new(&url, Arc::new(|| 1));
    config.policy.jitter = 0.0;
    config.idle_timeout = Duration::from_secs(1);
    let mut client = Client::connect(TokioConnect, config).unwrap();
    let mut sub = client.subscribe().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("event 1 arrives")
        .unwrap()
        .unwrap();
    assert_eq!(first.id, 1);
    connections.recv().await.unwrap();
    assert!(
        connections.try_recv().is_err(),
        "the client reconnected: {:#?}",
        client.timeline()
    );
    client.close().await;
}
