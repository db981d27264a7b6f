//! `decision`: today it replays the embedded default fixture through the wire
//! codec (SSE encode, chunked decode, event parse) and checks that every
//! event comes back once, in order. The engine, fed by a live wire, replaces
//! this (see the issue tracker); the command stays the same.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use wire::{Message, Payload};

fn main() -> anyhow::Result<()> {
    let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)
        .context("loading the embedded fixture")?;

    let mut stream = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            payload: payload.clone(),
        };
        wire::sse::encode_event(&mut stream, &event);
    }

    let mut decoder = sse::Decoder::default();
    let mut next_id = 1;
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_symbol: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in stream.chunks(4096) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_frame() {
            let sse::Frame::Event(e) = frame? else { continue };
            let Message::Event(event) = wire::sse::decode(&e)? else {
                continue;
            };
            if event.id != next_id {
                bail!("expected event {next_id}, got {}", event.id);
            }
            if event.payload != payloads[(event.id - 1) as usize] {
                bail!("event {} changed on the way", event.id);
            }
            next_id += 1;
            *per_kind.entry(event.payload.kind().to_owned()).or_default() += 1;
            if let Some(symbol) = event.payload.symbol() {
                *per_symbol.entry(symbol.to_owned()).or_default() += 1;
            }
        }
    }
    decoder.finish();
    if next_id - 1 != payloads.len() as u64 {
        bail!("{} of {} events came back", next_id - 1, payloads.len());
    }

    let first = payloads.first().map(ts).unwrap_or_default();
    let last = payloads.last().map(ts).unwrap_or_default();
    println!("tickwire: {} through the SSE codec", wire::fixture::DEFAULT_NAME);
    println!(
        "  events      {} (ids 1..={}, each once, in order)",
        payloads.len(),
        next_id - 1
    );
    for (kind, n) in &per_kind {
        println!("  {kind:<11} {n}");
    }
    let symbols: Vec<String> = per_symbol.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("  symbols     {}", symbols.join(", "));
    println!("  SSE bytes   {}", stream.len());
    println!("  market time {first} .. {last}");
    println!("  last id     {:?}", decoder.last_event_id());
    Ok(())
}

fn ts(p: &Payload) -> String {
    match p {
        Payload::Tick(t) => t.ts_utc.to_string(),
        Payload::News(n) => n.ts_utc.to_string(),
        Payload::Other { .. } => String::new(),
    }
}
