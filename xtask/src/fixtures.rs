//! `cargo xtask fixtures`: generates the default trading-day fixture from a
//! seed. The output is committed; `--check` proves the committed file is what
//! the generator makes, so the two never drift apart.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use jiff::Timestamp;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use wire::{News, Payload, Tick};

pub const SEED: u64 = 20_260_302;
pub const PATH: &str = "fixtures/default.jsonl";

/// 2026-03-02 14:30:00Z: a Monday's US cash open.
const OPEN_MS: i64 = 1_772_461_800_000;
/// 6.5 hours of trading.
const SESSION_MS: i64 = 23_400_000;
/// Nothing at all is published in this window: longer than any heartbeat.
const QUIET: (i64, i64) = (9_000_000, 9_300_000); // 17:00:00Z to 17:05:00Z

const SYMBOLS: [(&str, f64); 5] = [
    ("AAPL", 191.20),
    ("MSFT", 412.50),
    ("NVDA", 874.00),
    ("TSLA", 201.80),
    ("SPY", 512.30),
];
const PROVIDERS: [&str; 3] = ["newsdesk-a", "newsdesk-b", "filings"];

/// A news burst: many items on one symbol in a short window, then a jump.
struct Burst {
    symbol: &'static str,
    at_ms: i64,
    items: usize,
    /// Sentiment sign and the price move that follows it.
    jump: f64,
}

const BURSTS: [Burst; 2] = [
    Burst {
        symbol: "NVDA",
        at_ms: 4_500_000, // 15:45Z
        items: 24,
        jump: 0.06,
    },
    Burst {
        symbol: "TSLA",
        at_ms: 13_200_000, // 18:10Z
        items: 18,
        jump: -0.05,
    },
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask fixtures [--check]"),
    };
    let text = wire::fixture::to_jsonl(&generate(SEED));
    let path = Path::new(PATH);
    if check {
        let committed = std::fs::read_to_string(path).with_context(|| format!("reading {PATH}"))?;
        if committed != text {
            bail!("{PATH} differs from what `cargo xtask fixtures` generates; regenerate and commit it");
        }
        println!("{PATH} is up to date");
        return Ok(());
    }
    std::fs::write(path, &text).with_context(|| format!("writing {PATH}"))?;
    let payloads = wire::fixture::parse(PATH, &text)?;
    let ticks = payloads.iter().filter(|p| matches!(p, Payload::Tick(_))).count();
    println!(
        "wrote {PATH}: {} events ({ticks} ticks, {} news), seed {SEED}",
        payloads.len(),
        payloads.len() - ticks
    );
    Ok(())
}

/// One trading day, deterministic in `seed`.
pub fn generate(seed: u64) -> Vec<Payload> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // (time, order of creation) keys keep the merge stable and deterministic.
    let mut out: BTreeMap<(i64, usize), Payload> = BTreeMap::new();
    let mut push = |t: i64, p: Payload| {
        let n = out.len();
        out.insert((t, n), p);
    };
    let quiet = |t: i64| (QUIET.0..QUIET.1).contains(&t);

    // News first, so ticks know where the jumps are.
    let mut jumps: Vec<(&str, i64, f64)> = Vec::new();
    let mut t = 0;
    loop {
        t += exp_ms(&mut rng, 85_000.0);
        if t >= SESSION_MS {
            break;
        }
        if quiet(t) {
            continue;
        }
        let (symbol, _) = SYMBOLS[rng.random_range(0..SYMBOLS.len())];
        let score = round(rng.random_range(-0.6..0.6), 3);
        push(t, news(&mut rng, symbol, score, t));
    }
    for b in &BURSTS {
        let mut t = b.at_ms;
        for _ in 0..b.items {
            t += rng.random_range(500..6_000);
            let score = round(b.jump.signum() * rng.random_range(0.7..0.95), 3);
            push(t, news(&mut rng, b.symbol, score, t));
        }
        jumps.push((b.symbol, t, b.jump));
    }

    for (symbol, open) in SYMBOLS {
        let mut price = open;
        let mut t = rng.random_range(0..2_000);
        let mut pending: Vec<(i64, f64)> = jumps
            .iter()
            .filter(|(s, _, _)| *s == symbol)
            .map(|&(_, at, jump)| (at, jump))
            .collect();
        while t < SESSION_MS {
            if !quiet(t) {
                // A small random walk; a burst's jump lands over a few ticks.
                let mut ret = normal(&mut rng) * 0.0007;
                if let Some(i) = pending.iter().position(|&(at, _)| at <= t) {
                    let (_, jump) = pending.swap_remove(i);
                    ret += jump;
                }
                price = (price * (1.0 + ret)).max(1.0);
                let last = round(price, 2);
                let half = round((last * 0.0001).max(0.01), 2);
                push(
                    t,
                    Payload::Tick(Tick {
                        symbol: symbol.to_owned(),
                        last,
                        bid: Some(round(last - half, 2)),
                        ask: Some(round(last + half, 2)),
                        size: Some(rng.random_range(1..50u64) * 100),
                        ts_utc: ts(t),
                    }),
                );
            }
            t += exp_ms(&mut rng, 19_000.0).max(5);
        }
    }
    out.into_values().collect()
}

fn news(rng: &mut ChaCha8Rng, symbol: &str, score: f64, t: i64) -> Payload {
    let tone = if score > 0.3 {
        ["beats estimates", "raises guidance", "wins major contract"]
    } else if score < -0.3 {
        ["misses estimates", "cuts guidance", "faces regulatory probe"]
    } else {
        ["holds annual meeting", "names new CFO", "in line with consensus"]
    };
    let headline = format!("{symbol} {}", tone[rng.random_range(0..tone.len())]);
    Payload::News(News {
        symbol: symbol.to_owned(),
        score,
        provider: PROVIDERS[rng.random_range(0..PROVIDERS.len())].to_owned(),
        headline: Some(headline),
        ts_utc: ts(t),
    })
}

fn ts(offset_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(OPEN_MS + offset_ms).expect("session times are in range")
}

fn exp_ms(rng: &mut ChaCha8Rng, mean_ms: f64) -> i64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    (-u.ln() * mean_ms) as i64
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}
