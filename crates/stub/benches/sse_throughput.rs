//! SSE throughput to one client over real TCP loopback (127.0.0.1), in events
//! per second: the stub (`GET /stream?cursor=0`) against a baseline, a
//! minimal axum server streaming the same events with axum's own
//! `axum::response::sse::Sse`.
//!
//! Both servers hold the default fixture published `COPIES` times (63,470
//! events) and run on a tokio multi-thread runtime; the client runs on its
//! own current-thread runtime on the bench thread. One iteration is one whole
//! client session: connect, `GET`, read the chunked body with hyper's HTTP/1
//! client, decode it with `sse::Decoder`, stop at the event with the last id.
//! Connection set-up and client-side decoding are in the figure for both
//! servers alike; for the stub the client is the busier side (perf: about 60%
//! of the CPU), so its figure is a floor on what the stub can send. Axum's
//! `Sse` sends one HTTP chunk per event, the stub one per batch
//! (`batch_events`): most of the gap is that framing, on both sides.
//! On a 2-core machine, run it with nothing else busy: a concurrent build
//! halves the figures.
//!
//! Run: `cargo bench -p stub --bench sse_throughput`
//! (one of them: `cargo bench -p stub --bench sse_throughput -- tickwire_stub`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as AxumEvent, Sse};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sse::{Decoder, Frame};
use stub::{Config, Log, Source, Stub};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// How many times the default fixture (6,347 events) is published.
const COPIES: usize = 10;

fn payloads() -> Vec<wire::Payload> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).expect("default fixture")
}

/// The stub on 127.0.0.1:0 with the fixture published `COPIES` times.
/// Returns its address and the last event id.
fn start_stub(rt: &Runtime, payloads: &[wire::Payload]) -> (SocketAddr, u64) {
    let retention = payloads.len() * COPIES;
    let config = Config {
        retention,
        ..Config::default()
    };
    let stub = Stub::new(
        config,
        Log::new(retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 0u64),
    );
    for _ in 0..COPIES {
        rt.block_on(stub.publish(Source::Fixture, payloads))
            .expect("publish");
    }
    let head = stub.log().head();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    rt.spawn(stub::serve(listener, stub, std::future::pending()));
    (addr, head)
}

/// A minimal axum server: one route answering the same events, pre-built,
/// as `axum::response::sse::Sse`; like the stub, the stream stays open after
/// the last event.
fn start_axum(rt: &Runtime, payloads: &[wire::Payload]) -> (SocketAddr, u64) {
    let mut events = Vec::with_capacity(payloads.len() * COPIES);
    let mut id = 0u64;
    for _ in 0..COPIES {
        for payload in payloads {
            id += 1;
            let json = wire::Event {
                id,
                pub_us: Some(0),
                prev: None,
                payload: payload.clone(),
            }
            .to_json();
            events.push(
                AxumEvent::default()
                    .event(payload.kind())
                    .id(id.to_string())
                    .data(json),
            );
        }
    }
    let events = Arc::new(events);
    let router = axum::Router::new().route(
        "/stream",
        axum::routing::get(move || {
            let events = events.clone();
            async move {
                let all = futures_util::stream::iter(0..events.len())
                    .map(move |i| Ok::<_, Infallible>(events[i].clone()));
                Sse::new(all.chain(futures_util::stream::pending()))
            }
        }),
    );
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    rt.spawn(async move { axum::serve(listener, router).await });
    (addr, id)
}

/// One client session: reads `/stream?cursor=0` until the event with id
/// `last` arrives. Returns the number of events (tick/news) decoded.
async fn read_stream(addr: SocketAddr, last: &str) -> u64 {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("/stream?cursor=0")
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    assert_eq!(res.status(), hyper::StatusCode::OK);
    let mut body = res.into_body();
    let mut decoder = Decoder::default();
    let mut events = 0u64;
    let mut done = false;
    while !done {
        let frame = body
            .frame()
            .await
            .expect("the stream ended early")
            .expect("body error");
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push(&data);
        while let Some(frame) = decoder.next_frame() {
            if let Ok(Frame::Event(e)) = frame
                && (e.event == "tick" || e.event == "news")
            {
                events += 1;
                // The stub's ids are `<epoch>-<id>`, axum's baseline's bare.
                done |= e.id.rsplit('-').next() == Some(last);
            }
        }
    }
    drop(body);
    conn.abort();
    events
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let servers = [
        ("tickwire_stub", start_stub(&server_rt, &payloads)),
        ("axum_sse_baseline", start_axum(&server_rt, &payloads)),
    ];
    let expected = (payloads.len() * COPIES) as u64;

    let mut group = c.benchmark_group("sse_one_client");
    group.throughput(Throughput::Elements(expected));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    for (name, (addr, last)) in servers {
        assert_eq!(last, expected);
        let last = last.to_string();
        // Check once, outside the timing, that every event arrives.
        assert_eq!(client_rt.block_on(read_stream(addr, &last)), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let n = client_rt.block_on(read_stream(addr, &last));
                assert_eq!(n, expected);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
