//! Subscriptions: what a client subscribed to 5 of 10,000 symbols costs the
//! server, beside one that takes the whole stream, in the same run.
//!
//! The log holds events over 10,000 symbols (ticks, round robin). The
//! server runs on a tokio runtime of its own, one worker thread named
//! `bench-server`; its CPU time is read from `/proc/self/task/<tid>/schedstat`
//! (nanoseconds on CPU), so the publisher's and the readers' threads do not
//! count. Publishing is `Stub::publish` from another thread (no HTTP): the
//! appends are the log's, not a connection's. Each client is a raw HTTP/1.1
//! reader on loopback that counts the bytes and the events it receives.
//!
//! Two phases, each once per client kind, alone on the server:
//! - replay: the client connects at cursor 0 with `REPLAY` events in the log
//!   and reads until `caught_up`;
//! - live: the client is caught up, then `LIVE` events are published at
//!   `RATE` events/s; it reads until the last one it wants.
//!
//! Reported: events delivered, server CPU (ms) and CPU per delivered event
//! (µs), bytes received and bytes per delivered event.
//!
//! Run: `cargo bench -p stub --bench filter`. Without `--bench` (under
//! `cargo test --benches`) it runs the same phases small, and checks that
//! each client got exactly the events it asked for.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use stub::{Config, Log, Source, Stub};
use wire::{Filter, Payload, Tick};

const SYMBOLS: usize = 10_000;

struct Sizes {
    replay: usize,
    live: usize,
    rate: f64,
}

fn tick(i: usize) -> Payload {
    Payload::Tick(Tick {
        symbol: format!("S{:05}", i % SYMBOLS),
        last: 100.0 + (i % 97) as f64 * 0.01,
        bid: Some(99.9),
        ask: Some(100.1),
        size: Some(100),
        ts_utc: "2026-03-02T14:30:00Z".parse().unwrap(),
    })
}

/// Nanoseconds the server's worker thread has run.
fn server_cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim() == "bench-server" {
            let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// A raw SSE reader: bytes and event ids received, until `done` says so.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    bytes: u64,
    ids: Vec<u64>,
}

impl Reader {
    fn open(addr: SocketAddr, query: &str) -> Reader {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let req = format!(
            "GET /stream?cursor=0{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).unwrap();
        Reader {
            stream,
            buf: Vec::new(),
            bytes: 0,
            ids: Vec::new(),
        }
    }

    /// Reads until `done(ids, text seen)` holds.
    fn until(&mut self, done: &dyn Fn(&[u64], bool) -> bool) {
        let mut chunk = vec![0u8; 64 << 10];
        let mut caught_up = false;
        while !done(&self.ids, caught_up) {
            let n = self.stream.read(&mut chunk).expect("the stream in time");
            assert!(n > 0, "the stream ended");
            self.bytes += n as u64;
            self.buf.extend_from_slice(&chunk[..n]);
            // Whole lines only; ids from `id: <epoch>-<id>` lines.
            let end = self.buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            for line in self.buf[..end].split(|b| *b == b'\n') {
                if let Some(id) = line.strip_prefix(b"id: ") {
                    let text = String::from_utf8_lossy(id);
                    if let Ok(c) = text.trim().parse::<wire::Cursor>() {
                        self.ids.push(c.id);
                    }
                }
                caught_up |= line == b"event: caught_up";
            }
            self.buf.drain(..end);
        }
    }
}

struct Row {
    phase: &'static str,
    client: &'static str,
    delivered: usize,
    cpu_ns: u64,
    bytes: u64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            replay: 200_000,
            live: 100_000,
            rate: 20_000.0,
        }
    } else {
        Sizes {
            replay: 20_000,
            live: 4_000,
            rate: 4_000.0,
        }
    };
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .unwrap();
    let config = Config {
        retention: sizes.replay + 2 * sizes.live + 10,
        max_lag: u64::MAX / 2,
        ..Config::default()
    };
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(7)),
        Arc::new(|| 1),
    );
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    server.spawn(stub::serve(
        stub::nodelay(listener),
        stub.clone(),
        std::future::pending(),
    ));
    let publisher = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payloads: Vec<Payload> = (0..sizes.replay + 2 * sizes.live).map(tick).collect();
    publisher
        .block_on(stub.publish(Source::Fixture, &payloads[..sizes.replay]))
        .unwrap();

    let five: Vec<String> = [17, 2_403, 5_000, 7_777, 9_998]
        .iter()
        .map(|i| format!("S{i:05}"))
        .collect();
    let filter = Filter::new(&five, None::<&str>).unwrap();
    let clients: [(&str, String, Filter); 2] = [
        ("all 10,000 symbols", String::new(), Filter::all()),
        ("5 symbols", format!("&{}", filter.to_query()), filter),
    ];
    let mut rows = Vec::new();
    let mut published = sizes.replay;
    for (name, query, filter) in &clients {
        let want = |upto: usize| -> Vec<u64> {
            (1..=upto as u64)
                .filter(|id| filter.matches_payload(&payloads[*id as usize - 1]))
                .collect()
        };
        // Replay.
        let cpu = server_cpu_ns();
        let mut reader = Reader::open(addr, query);
        reader.until(&|_, caught_up| caught_up);
        rows.push(Row {
            phase: "replay",
            client: name,
            delivered: reader.ids.len(),
            cpu_ns: server_cpu_ns() - cpu,
            bytes: reader.bytes,
        });
        assert_eq!(reader.ids, want(published), "{name}: the replay");
        // Live, at the rate.
        let (bytes, before) = (reader.bytes, reader.ids.len());
        let cpu = server_cpu_ns();
        let batch = (sizes.rate / 100.0).max(1.0) as usize;
        let from = published;
        let to = published + sizes.live;
        let feeding = {
            let stub = stub.clone();
            let chunk = payloads[from..to].to_vec();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut tick = tokio::time::interval(Duration::from_millis(10));
                    for part in chunk.chunks(batch) {
                        tick.tick().await;
                        stub.publish(Source::Ingest, part).await.unwrap();
                    }
                });
            })
        };
        let last_wanted = want(to).last().copied().unwrap_or(0);
        reader.until(&|ids, _| ids.last().copied() >= Some(last_wanted));
        feeding.join().unwrap();
        rows.push(Row {
            phase: "live",
            client: name,
            delivered: reader.ids.len() - before,
            cpu_ns: server_cpu_ns() - cpu,
            bytes: reader.bytes - bytes,
        });
        assert_eq!(
            reader.ids,
            want(to),
            "{name}: every event it asked for, in order, once"
        );
        published = to;
    }
    println!(
        "filter: {SYMBOLS} symbols; replay of {} events, then {} live at {:.0}/s; server on 1 worker thread",
        sizes.replay, sizes.live, sizes.rate
    );
    println!(
        "{:<7} {:<20} {:>10} {:>12} {:>14} {:>14} {:>12}",
        "phase", "client", "delivered", "server ms", "µs/delivered", "bytes", "bytes/event"
    );
    for r in &rows {
        let per = |x: f64| {
            if r.delivered == 0 {
                f64::NAN
            } else {
                x / r.delivered as f64
            }
        };
        println!(
            "{:<7} {:<20} {:>10} {:>12.1} {:>14.2} {:>14} {:>12.0}",
            r.phase,
            r.client,
            r.delivered,
            r.cpu_ns as f64 / 1e6,
            per(r.cpu_ns as f64 / 1e3),
            r.bytes,
            per(r.bytes as f64)
        );
    }
}
