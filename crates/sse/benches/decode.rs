//! Decoder throughput on market-data SSE: the default fixture encoded as the
//! stub sends it, fed in 4 KiB and 64 KiB chunks. Reported as bytes/s and as
//! events/s. Run: `cargo bench -p sse --bench decode`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sse::{Decoder, Frame};

fn stream() -> (Vec<u8>, u64) {
    let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap();
    let mut bytes = Vec::new();
    for (i, payload) in payloads.into_iter().enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: Some(1_772_461_800_000_000 + i as u64 * 1_000),
            prev: None,
            payload,
        };
        wire::sse::encode_event(&mut bytes, &event);
        if i % 100 == 99 {
            wire::sse::encode_control(&mut bytes, &wire::Control::heartbeat(i as u64 + 1));
        }
    }
    let events = bytes.windows(2).filter(|w| w == b"\n\n").count() as u64;
    (bytes, events)
}

fn decode_all(bytes: &[u8], chunk: usize) -> (u64, usize) {
    let mut d = Decoder::default();
    let mut events = 0;
    let mut data = 0;
    for c in bytes.chunks(chunk) {
        d.push(c);
        while let Some(frame) = d.next_frame() {
            if let Ok(Frame::Event(e)) = frame {
                events += 1;
                data += e.data.len() + e.id.len() + e.event.len();
            }
        }
    }
    d.finish();
    (events, data)
}

fn bench(c: &mut Criterion) {
    let (bytes, events) = stream();
    assert_eq!(decode_all(&bytes, 4096).0, events);
    eprintln!(
        "stream: {} bytes, {events} events, {:.0} bytes/event",
        bytes.len(),
        bytes.len() as f64 / events as f64
    );
    for (unit, throughput) in [
        ("bytes", Throughput::BytesDecimal(bytes.len() as u64)),
        ("events", Throughput::Elements(events)),
    ] {
        let mut group = c.benchmark_group(format!("sse_decode_{unit}"));
        group.throughput(throughput);
        for chunk in [4096, 65536] {
            group.bench_function(format!("{}KiB_chunks", chunk / 1024), |b| {
                b.iter(|| decode_all(black_box(&bytes), chunk))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
