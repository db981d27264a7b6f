//! End-to-end latency on loopback, from publish (`POST /events`) to receipt
//! by the client, at 1,000 events/s: SSE, WebSocket, polling every 1 s and
//! every 100 ms, and long-poll. Prints p50, p99 and max per transport.
//!
//! Run: `cargo bench -p transport --bench latency` (release). Each event is a
//! `probe` payload (a kind the wire does not know, carried as is) holding the
//! publisher's send time, so latency includes the POST itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use stub::{Config, Log, Stub};
use transport::{Client, ClientConfig, TokioConnect, Transport};
use wire::Payload;

const RATE: u64 = 1_000;
const SECONDS: u64 = 5;

#[allow(clippy::disallowed_methods)]
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// POSTs one probe event every millisecond on one keep-alive connection.
async fn publish(addr: SocketAddr, n: u64) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..n {
        tick.tick().await;
        let body = format!("{{\"kind\":\"probe\",\"sent_us\":{}}}\n", now_us());
        let req = Request::post("/events")
            .header("host", addr.to_string())
            .header("content-type", "application/x-ndjson")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert!(res.status().is_success());
    }
}

async fn measure(
    addr: SocketAddr,
    stub: &Stub,
    name: &str,
    kind: Transport,
    wait: Duration,
    interval: Duration,
) -> Vec<u64> {
    let mut config = ClientConfig::new(&format!("http://{addr}"), Arc::new(now_us));
    config.policy.transport = kind;
    config.poll_wait = wait;
    config.poll_interval = interval;
    config.start_after = wire::Cursor::bare(stub.log().head());
    let mut client = Client::connect(TokioConnect, config).unwrap();
    let mut sub = client.subscribe().unwrap();
    // Let the client connect before publishing starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = RATE * SECONDS;
    let publisher = tokio::spawn(publish(addr, n));
    let mut latencies = Vec::with_capacity(n as usize);
    while (latencies.len() as u64) < n {
        let event = sub.next().await.unwrap().unwrap();
        let received = now_us();
        if let Payload::Other { fields, .. } = &event.payload {
            let sent = fields["sent_us"].as_u64().unwrap();
            latencies.push(received.saturating_sub(sent));
        }
    }
    publisher.await.unwrap();
    client.close().await;
    eprintln!("{name}: {} events", latencies.len());
    latencies
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = Config::default();
        let stub = Stub::new(
            config.clone(),
            Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
            Arc::new(now_us),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
        let zero = Duration::ZERO;
        let modes = [
            ("SSE", Transport::Sse, zero, zero),
            ("WebSocket", Transport::Ws, zero, zero),
            ("polling every 1 s", Transport::Poll, zero, Duration::from_secs(1)),
            (
                "polling every 100 ms",
                Transport::Poll,
                zero,
                Duration::from_millis(100),
            ),
            ("long-poll", Transport::Poll, Duration::from_secs(5), zero),
        ];
        println!("| transport | events | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|");
        for (name, kind, wait, interval) in modes {
            let mut l = measure(addr, &stub, name, kind, wait, interval).await;
            l.sort_unstable();
            println!(
                "| {name} | {} | {:.3} | {:.3} | {:.3} |",
                l.len(),
                pct(&l, 0.50),
                pct(&l, 0.99),
                pct(&l, 1.0)
            );
        }
    });
}
