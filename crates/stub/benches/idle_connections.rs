//! Memory per idle SSE connection held by the stub: N clients (default
//! 10,000) connect over TCP loopback (127.0.0.1), each with
//! `GET /stream?cursor=<head>`, read up to `caught_up` and then sit idle (the
//! stub's default 15 s heartbeat, so idle means idle). Prints the stub's
//! resident memory (`VmRSS` from `/proc/self/status`) before and after, per
//! connection.
//!
//! The stub runs in this process; the clients run in a child process (this
//! same binary, switched by an environment variable), so the RSS delta here
//! is the server's alone. The child reports its own delta (the client side),
//! and `/proc/net/sockstat` gives the kernel's TCP buffer pages (both ends).
//! `GET /metrics.json` (`"connections":{"sse":N}`) confirms that the stub
//! really holds N streams. Both processes use `wire-stub`'s allocator
//! (jemalloc).
//!
//! Run: `cargo bench -p stub --bench idle_connections`.
//! Each process needs N + 256 file descriptors: raise the limit first if
//! `ulimit -n` is lower (`ulimit -n 65536`); the bench checks and says so.
//! `IDLE_CONNECTIONS=N` sets N. Without `--bench` (as under
//! `cargo test --benches`) it runs a 100-connection smoke check.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use stub::{Config, Log, Source, Stub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What `wire-stub` allocates with (see its `main.rs`), so the memory
/// measured here is the binary's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Set in the child: `<addr> <cursor> <n>`.
const CLIENT_ENV: &str = "TICKWIRE_IDLE_CLIENT";
/// Overrides the number of connections.
const N_ENV: &str = "IDLE_CONNECTIONS";
/// Connections being set up at once by the client.
const CONCURRENT_CONNECTS: usize = 64;

fn main() {
    match std::env::var(CLIENT_ENV) {
        Ok(spec) => client_main(&spec),
        Err(_) => server_main(),
    }
}

/// A real clock for the elapsed times printed; the stub never sees it.
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn server_main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = match std::env::var(N_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{N_ENV}={v:?} is not a number"))),
        Err(_) if full => 10_000,
        Err(_) => 100,
    };
    let need = n as u64 + 256;
    let limit = open_files_limit();
    if limit < need {
        fail(&format!(
            "{n} connections need `ulimit -n` >= {need} in each process, and it is {limit}: \
             run `ulimit -n 65536` in this shell first, or set {N_ENV} lower"
        ));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payloads =
        wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).expect("default fixture");
    let config = Config::default();
    let heartbeat_ms = config.heartbeat_ms;
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 0u64),
    );
    rt.block_on(stub.publish(Source::Fixture, &payloads))
        .expect("publish");
    let head = stub.log().head();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    rt.spawn(stub::serve(listener, stub, std::future::pending()));

    // Warm up (one stream, one metrics request), so that one-time
    // allocations are not counted per connection.
    rt.block_on(async {
        let first = open_idle(addr, head).await.expect("warm-up stream");
        drop(first);
        sse_connections(addr).await;
    });
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = status_kib("VmRSS");
    let anon_before = status_kib("RssAnon");
    let tcp_before = tcp_mem_pages();

    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .env(CLIENT_ENV, format!("{addr} {head} {n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning the client process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut line)
        .expect("reading the client process");
    let report: Vec<&str> = line.split_whitespace().collect();
    let ["ready", client_before, client_after, connect_ms] = report[..] else {
        let _ = child.wait();
        fail(&format!("the client process failed: {line:?}"));
    };
    let client_kib = |s: &str| s.parse::<u64>().expect("client report");
    let (client_before, client_after) = (client_kib(client_before), client_kib(client_after));

    // Let the server settle: every stream has sent `caught_up` and waits.
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = status_kib("VmRSS");
    let anon_after = status_kib("RssAnon");
    let tcp_after = tcp_mem_pages();
    let held = rt.block_on(sse_connections(addr));

    let per = |before: u64, after: u64| after.saturating_sub(before) as f64 / n as f64;
    println!(
        "idle_connections: {n} idle SSE clients on 127.0.0.1 (cursor = head = {head}, heartbeat {heartbeat_ms} ms); \
         stub in pid {}, clients in pid {}",
        std::process::id(),
        child.id()
    );
    println!("  connected in {connect_ms} ms, {CONCURRENT_CONNECTS} at a time");
    println!("  stub /metrics.json connections.sse = {held}");
    println!(
        "  stub VmRSS   {:>8} KiB -> {:>8} KiB: {:>6.2} KiB per connection",
        rss_before,
        rss_after,
        per(rss_before, rss_after)
    );
    println!(
        "  stub RssAnon {:>8} KiB -> {:>8} KiB: {:>6.2} KiB per connection",
        anon_before,
        anon_after,
        per(anon_before, anon_after)
    );
    println!(
        "  client VmRSS {:>8} KiB -> {:>8} KiB: {:>6.2} KiB per connection (client side, for scale)",
        client_before,
        client_after,
        per(client_before, client_after)
    );
    println!(
        "  kernel TCP memory (/proc/net/sockstat, both ends, system-wide) {tcp_before} -> {tcp_after} pages: {:.2} KiB per connection",
        per(tcp_before * 4, tcp_after * 4)
    );

    // Close the clients (the child exits on EOF on its stdin), then see how
    // soon the stub notices.
    drop(child.stdin.take());
    let status = child.wait().expect("client process");
    let closed = now();
    let mut left = held;
    while left > 0 && closed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        left = rt.block_on(sse_connections(addr));
    }
    println!(
        "  clients closed ({status}): stub lists {left} sse connections {} ms later",
        closed.elapsed().as_millis()
    );
    if held != n as u64 {
        fail(&format!("the stub holds {held} sse connections, not {n}"));
    }
}

/// The client process: opens `n` streams, reports, then holds them until its
/// stdin closes.
fn client_main(spec: &str) {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [addr, cursor, n] = parts[..] else {
        fail(&format!("{CLIENT_ENV}={spec:?}: expected `<addr> <cursor> <n>`"));
    };
    let addr: SocketAddr = addr.parse().expect("addr");
    let cursor: u64 = cursor.parse().expect("cursor");
    let n: usize = n.parse().expect("n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let before = status_kib("VmRSS");
    let start = now();
    let opened = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CONNECTS));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..n {
            let gate = gate.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("semaphore");
                match open_idle(addr, cursor).await {
                    Ok(stream) => {
                        drop(permit);
                        let _ = tx.send(Ok(()));
                        // Idle: hold the socket, read nothing, until exit.
                        std::future::pending::<()>().await;
                        drop(stream);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        }
        for _ in 0..n {
            rx.recv().await.expect("client tasks")?;
        }
        Ok::<(), String>(())
    });
    let connect_ms = start.elapsed().as_millis();
    if let Err(e) = opened {
        println!("error {e}");
        std::process::exit(1);
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = status_kib("VmRSS");
    println!("ready {before} {after} {connect_ms}");
    let _ = std::io::stdout().flush();
    // Wait for the parent to close our stdin, then exit (closing every socket).
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    std::process::exit(0);
}

/// Opens one stream after `cursor` and reads until `caught_up`.
async fn open_idle(addr: SocketAddr, cursor: u64) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET /stream?cursor={cursor} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::other("the stub closed the stream"));
        }
        if buf.len() >= 12 && !buf.starts_with(b"HTTP/1.1 200") {
            return Err(std::io::Error::other(format!(
                "unexpected answer: {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        if contains(&buf, b"event: caught_up") {
            return Ok(stream);
        }
        if buf.len() > 64 << 10 {
            return Err(std::io::Error::other("no caught_up in the first 64 KiB"));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `connections.sse` from `GET /metrics.json`.
async fn sse_connections(addr: SocketAddr) -> u64 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let body: serde_json::Value = serde_json::from_slice(&answer[split + 4..]).expect("metrics JSON");
    body["connections"]["sse"].as_u64().expect("connections.sse")
}

/// A `kB` field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| fail(&format!("no {field} in /proc/self/status")))
}

/// Pages of TCP socket memory in use, system-wide (`/proc/net/sockstat`).
fn tcp_mem_pages() -> u64 {
    let stat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    stat.lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .and_then(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == "mem")?;
            fields.get(at + 1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| {
            let soft = l.split_whitespace().next()?;
            if soft == "unlimited" {
                Some(u64::MAX)
            } else {
                soft.parse().ok()
            }
        })
        .unwrap_or(u64::MAX)
}

fn fail(message: &str) -> ! {
    eprintln!("idle_connections: {message}");
    std::process::exit(2);
}
