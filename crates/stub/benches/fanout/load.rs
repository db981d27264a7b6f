//! The load generator, one process pinned to core 1 on a current-thread
//! runtime: N streaming clients (SSE or WebSocket) and one publisher that
//! posts one event per `POST /events` at R events/s on a keep-alive
//! connection (pipelined: it never waits for an answer before the next).
//!
//! Latency is from the moment the publisher writes an event's request to
//! the moment a client reads the event's id. Ids are 1, 2, 3, ... in
//! publish order on both servers, so the publisher's send times, kept in a
//! table by id, time every delivery. Clients read into one shared buffer
//! and scan for ids (`\nid: ` in SSE, `"id":` in WebSocket text) without
//! decoding more than that: the generator must outrun the server.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memchr::memmem::Finder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::now;
use crate::report::{Cpu, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Ws,
}

/// One load run's parameters.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    pub server_pid: u32,
    pub transport: Transport,
    pub clients: usize,
    pub rate: u64,
    pub warmup: Duration,
    pub window: Duration,
    /// The clients' source address (127.0.0.x), a fresh one per run so
    /// the previous run's TIME_WAIT ports do not run out.
    pub source: Ipv4Addr,
    /// How long to wait after the last publish for the last deliveries.
    pub drain: Duration,
}

/// What the run saw.
pub struct Outcome {
    pub sample: Sample,
    /// Clients whose stream ended (an `overflow`, a cut) during the run.
    pub ended: usize,
    /// Deliveries at any time, in the window or not.
    pub total: u64,
}

#[derive(Default)]
struct Shared {
    /// Send time (ns since `t0`) of event id `i + 1`.
    sent: Vec<u64>,
    window: Option<(u64, u64)>,
    latency: Option<Histogram<u64>>,
    delivered: u64,
    /// Deliveries at any time, in the window or not.
    total: u64,
    ended: usize,
    out_of_order: u64,
}

pub fn run(plan: &Plan) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    rt.block_on(run_async(plan))
}

async fn run_async(plan: &Plan) -> Outcome {
    let t0 = now();
    let shared = Rc::new(RefCell::new(Shared {
        latency: Some(Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram")),
        ..Shared::default()
    }));
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut connected = 0;
            let mut pending = Vec::new();
            for _ in 0..plan.clients {
                pending.push(connect(plan));
                if pending.len() == 64 {
                    for stream in futures_util::future::join_all(pending.drain(..)).await {
                        start_client(stream, plan.transport, shared.clone(), t0);
                        connected += 1;
                    }
                }
            }
            for stream in futures_util::future::join_all(pending).await {
                start_client(stream, plan.transport, shared.clone(), t0);
                connected += 1;
            }
            assert_eq!(connected, plan.clients);
            // Let every stream reach the live head before the first event.
            tokio::time::sleep(Duration::from_millis(300 + plan.clients as u64 / 20)).await;
            let start = t0.elapsed() + plan.warmup;
            let end = start + plan.window;
            shared.borrow_mut().window = Some((start.as_nanos() as u64, end.as_nanos() as u64));
            let cpu_at = {
                let shared = shared.clone();
                let pid = plan.server_pid;
                tokio::task::spawn_local(async move {
                    tokio::time::sleep_until((t0 + start).into()).await;
                    let a = (Cpu::of(pid), Cpu::own(), Cpu::core(0), crate::report::writes(pid));
                    tokio::time::sleep_until((t0 + end).into()).await;
                    let b = (Cpu::of(pid), Cpu::own(), Cpu::core(0), crate::report::writes(pid));
                    let _ = shared;
                    (a, b)
                })
            };
            let publisher = tokio::task::spawn_local(publish(plan.addr, plan.rate, t0, end, shared.clone()));
            let ((a, b), published) = (cpu_at.await.expect("cpu"), publisher.await.expect("publisher"));
            // Give the last events time to arrive (all of them, unless the
            // server cannot keep up: then a second is enough).
            let expected = published * plan.clients as u64;
            let give_up = now() + plan.drain;
            while shared.borrow().total < expected && now() < give_up {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut s = shared.borrow_mut();
            let window = plan.window.as_secs_f64();
            let latency = s.latency.take().expect("histogram");
            Outcome {
                sample: Sample {
                    offered: plan.clients as f64 * plan.rate as f64,
                    achieved: s.delivered as f64 / window,
                    published,
                    latency,
                    server_cpu: b.0.since(&a.0) / window,
                    core0_busy: b.2.since(&a.2) / window,
                    load_cpu: b.1.since(&a.1) / window,
                    server_rss_kib: crate::report::rss_kib(plan.server_pid),
                    out_of_order: s.out_of_order,
                    writes: (b.3 - a.3) as f64 / window,
                },
                total: s.total,
                ended: s.ended,
            }
        })
        .await
}

async fn connect(plan: &Plan) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((plan.source, 0)))
        .expect("bind the source");
    let mut stream = socket.connect(plan.addr).await.expect("connect");
    let host = plan.addr;
    let request = match plan.transport {
        Transport::Sse => {
            format!("GET /stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n")
        }
        Transport::Ws => format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    };
    stream.write_all(request.as_bytes()).await.expect("request");
    // The status line and headers; the first bytes of the body (if any came
    // with them) hold no event yet: nothing is published before every
    // client is in.
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("response");
        assert!(n > 0, "the server closed before answering");
        head.extend_from_slice(&byte[..n]);
    }
    let status = String::from_utf8_lossy(&head[..head.len().min(12)]).into_owned();
    assert!(
        status.ends_with("200") || status.ends_with("101"),
        "answered {status}"
    );
    stream
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 << 10]);
}

fn start_client(stream: TcpStream, transport: Transport, shared: Rc<RefCell<Shared>>, t0: Instant) {
    tokio::task::spawn_local(async move {
        let pattern: &[u8] = match transport {
            Transport::Sse => b"\nid: ",
            Transport::Ws => b"\"id\":",
        };
        let finder = Finder::new(pattern);
        let mut carry: Vec<u8> = Vec::new();
        let mut last_id = 0u64;
        loop {
            if stream.readable().await.is_err() {
                break;
            }
            let done = BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let start = carry.len();
                buf[..start].copy_from_slice(&carry);
                match stream.try_read(&mut buf[start..]) {
                    Ok(0) => true,
                    Ok(n) => {
                        let at = t0.elapsed().as_nanos() as u64;
                        let data = &buf[..start + n];
                        let keep = scan(&finder, data, &mut last_id, &mut shared.borrow_mut(), at);
                        carry.clear();
                        carry.extend_from_slice(&data[keep..]);
                        false
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                    Err(_) => true,
                }
            });
            if done {
                break;
            }
        }
        shared.borrow_mut().ended += 1;
    });
}

/// Records every id in `data`; returns where the unread tail starts (a
/// match whose number may continue in the next read, or the last bytes
/// that could begin one).
fn scan(finder: &Finder<'_>, data: &[u8], last_id: &mut u64, s: &mut Shared, at: u64) -> usize {
    let mut from = 0;
    while let Some(found) = finder.find(&data[from..]) {
        let at_match = from + found;
        let mut i = at_match + finder.needle().len();
        // An SSE id is `<epoch>-<id>` (the stub) or `<id>` (the baseline).
        let mut id = 0u64;
        let mut digits = 0;
        while i < data.len() {
            match data[i] {
                b @ b'0'..=b'9' => {
                    id = id * 10 + u64::from(b - b'0');
                    digits += 1;
                }
                b'a'..=b'f' | b'-' => {
                    id = 0;
                    digits = 0;
                }
                _ => break,
            }
            i += 1;
        }
        if i == data.len() {
            return at_match;
        }
        if digits > 0 {
            record(id, last_id, s, at);
        }
        from = i;
    }
    data.len().saturating_sub(finder.needle().len() - 1).max(from)
}

fn record(id: u64, last_id: &mut u64, s: &mut Shared, at: u64) {
    if id <= *last_id {
        s.out_of_order += 1;
    }
    *last_id = id;
    s.total += 1;
    let Some(&sent) = s.sent.get(id as usize - 1) else {
        return;
    };
    let Some((start, end)) = s.window else { return };
    if at < start || at >= end {
        return;
    }
    s.delivered += 1;
    let us = (at.saturating_sub(sent) / 1_000).max(1);
    if let Some(h) = s.latency.as_mut() {
        let _ = h.record(us);
    }
}

/// Posts one tick per request at `rate`/s until `end` (ns since `t0`);
/// returns how many it posted.
async fn publish(
    addr: SocketAddr,
    rate: u64,
    t0: Instant,
    end: Duration,
    shared: Rc<RefCell<Shared>>,
) -> u64 {
    let stream = TcpStream::connect(addr).await.expect("publisher connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut rd, mut wr) = stream.into_split();
    // Answers are read and counted, so the server's write side never fills;
    // the connection stays open until the last is in (a close with a
    // request in flight may lose it).
    let answered = Rc::new(std::cell::Cell::new(0u64));
    let answers = tokio::task::spawn_local({
        let answered = answered.clone();
        async move {
            let mut buf = vec![0u8; 64 << 10];
            let ok = Finder::new(b"HTTP/1.1 200");
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answered.set(answered.get() + ok.find_iter(&buf[..n]).count() as u64),
                }
            }
        }
    });
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let first = t0.elapsed();
    let mut k = 0u64;
    loop {
        let due = first + period * k as u32;
        if due >= end {
            break;
        }
        tokio::time::sleep_until((t0 + due).into()).await;
        let price = 100.0 + (k % 1000) as f64 / 100.0;
        let body = format!(
            "[{{\"kind\":\"tick\",\"symbol\":\"MSFT\",\"bid\":{price:.2},\"ask\":{:.2},\"last\":{price:.2},\
             \"size\":100,\"ts_utc\":\"2026-03-02T14:30:00.078Z\"}}]",
            price + 0.04
        );
        let request = format!(
            "POST /events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        shared.borrow_mut().sent.push(t0.elapsed().as_nanos() as u64);
        wr.write_all(request.as_bytes()).await.expect("publish");
        k += 1;
    }
    let give_up = now() + Duration::from_secs(30);
    while answered.get() < k && now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    answers.abort();
    answered.get()
}
