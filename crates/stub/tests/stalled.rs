//! A client that connects and then never reads, over a real socket: its
//! send buffers fill, its stream can no longer be polled by itself, and the
//! sweeper must still drop it, once, and free its registration.

use std::sync::Arc;
use std::time::Duration;

use stub::{Config, Log, Source, Stub};

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_dropped_once() {
    let config = Config {
        max_lag: 100,
        lag_grace_ms: 200,
        heartbeat_ms: 100,
        conn_buffer_bytes: 8192,
        ..Config::default()
    };
    let s = Stub::new(
        config.clone(),
        Log::new(200_000, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(stub::serve(listener, s.clone(), std::future::pending()));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws?cursor=0"), stream)
        .await
        .unwrap();
    // Far more than the socket buffers hold; the client reads none of it.
    let day = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    for _ in 0..20 {
        s.publish(Source::Fixture, &day).await.unwrap();
    }
    // Dropped within a few sweep periods (at most 10 s here).
    let mut gone = false;
    for _ in 0..1000 {
        if s.connections().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "still listed: {:?}", s.connections());
    assert_eq!(s.slow_consumer_drops(), 1);
    // Later sweeps find nothing left to drop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.slow_consumer_drops(), 1);
    drop(ws);
    s.shutdown_token().cancel();
    server.await.unwrap();
}
