//! The swarm: each seed draws a whole configuration (TigerBeetle's VOPR
//! does the same): how many clients and on which transports, which faults,
//! when and for how long, the stub's tunables, the publishing pattern and
//! the engine's restarts. Faults come one after another in a safety phase;
//! after the last one heals, a liveness phase without faults must bring
//! every client to the head.
//!
//! The ranges are realistic rather than exhaustive: the stub's heartbeat is
//! always under half the clients' idle deadline (a live stream must never
//! look dead), retention holds the whole run (expiry is `cursor_expired`'s
//! job), and the storage faults stay in their named scenarios.

use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use transport::Transport;

use crate::{Fault, Scenario};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const KINDS: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

/// The fixture's NVDA burst, where the engine trades and the kill switch
/// trips: around event 1,300 of the default day.
const BURST: usize = 1_300;

/// The scenario seed `seed` draws.
pub fn draw(seed: u64) -> Scenario {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5a41_2d5e_ed00_0001);
    let engine = r.random_bool(0.3);
    let n = match r.random_range(0..10) {
        0..=2 => 1,
        3..=7 => r.random_range(2..=4),
        _ => r.random_range(5..=12),
    };
    let mut clients: Vec<Transport> = (0..n).map(|_| KINDS[r.random_range(0..3)]).collect();
    let fallback = r.random_bool(0.3);
    if fallback {
        // `auto` is a streaming preference: polling clients stay strict.
        for c in clients.iter_mut().filter(|c| **c == Transport::Poll) {
            if r.random_bool(0.5) {
                *c = Transport::Sse;
            }
        }
    }
    let mut sc = Scenario::new("swarm", clients);
    sc.fallback = fallback;
    sc.events = if engine {
        // Past event 1,794 the day has orders after the kill switch trips
        // (at 1,368): a halt that stopped denying them shows there.
        r.random_range(1_500..=2_400)
    } else {
        r.random_range(100..=800)
    };
    sc.rate = if engine {
        r.random_range(100.0..=300.0)
    } else {
        r.random_range(20.0..=300.0)
    };
    for _ in 0..r.random_range(0..=2) {
        // Quiet spells: some longer than the idle deadline (6 s).
        let after = r.random_range(1..sc.events);
        sc.quiet.push((after, ms(r.random_range(1_000..=15_000))));
    }
    sc.quiet.sort();

    let stub = &mut sc.stub;
    stub.heartbeat_ms = r.random_range(500..=2_500);
    // Above and below the clients' 1 s base delay.
    stub.retry_ms = r.random_range(200..=3_000);
    stub.batch_events = r.random_range(1..=64);
    stub.max_lag = r.random_range(50..=1_000);
    stub.lag_grace_ms = r.random_range(200..=1_500);
    stub.retention = sc.events + r.random_range(0..=1_000);
    if r.random_bool(0.1) {
        stub.drop_every = r.random_range(17..=60);
    }
    if r.random_bool(0.1) {
        stub.dup_every = r.random_range(13..=50);
    }
    sc.random_order = r.random_bool(0.15);
    sc.client_delay = ms(r.random_range(0..=2_000));
    let slow_candidate = !engine && r.random_bool(0.15);
    if slow_candidate {
        sc.slow_reader = Some(ms(r.random_range(5..=50)));
        sc.stub.max_lag = r.random_range(50..=300);
    }
    if engine {
        sc.engine = Some(r.random_bool(0.5).then(|| {
            // Killed in the burst, where decisions are being made.
            let at = BURST + r.random_range(0..=40) - 20;
            sc.due(at) + sc.client_delay
        }));
        sc.stub.retention = sc.events + 1_000;
    }

    // The safety phase: faults one after another.
    let mut t = ms(r.random_range(500..=3_000));
    let targets = sc.clients.len();
    let pick = |r: &mut ChaCha8Rng| (r.random_bool(0.6)).then(|| r.random_range(0..targets));
    for _ in 0..r.random_range(0..=5) {
        // With `auto`, streaming goes off in a third of the faults: the
        // fallback, and the upgrade after it, are goals of their own.
        let kind = if fallback && r.random_bool(0.3) {
            7
        } else {
            r.random_range(0..7)
        };
        let (start, end, heal): (Fault, Duration, Option<Fault>) = match kind {
            0 => {
                let who = pick(&mut r);
                // Long ones reach the backoff cap (attempt 5 waits 16 s
                // after 15 s of failures).
                let d = if r.random_bool(0.25) {
                    r.random_range(20_000..=45_000)
                } else {
                    r.random_range(300..=10_000)
                };
                (Fault::Partition(who), ms(d), Some(Fault::Repair(who)))
            }
            1 => {
                let who = pick(&mut r);
                (
                    Fault::Silence(who),
                    ms(r.random_range(1_000..=20_000)),
                    Some(Fault::Repair(who)),
                )
            }
            2 => (
                Fault::Hold,
                ms(r.random_range(300..=10_000)),
                Some(Fault::Release),
            ),
            3 => (Fault::Bounce, Duration::ZERO, None),
            4 => (
                Fault::Crash,
                ms(r.random_range(300..=8_000)),
                Some(Fault::Restart),
            ),
            5 => (
                Fault::Latency(ms(r.random_range(50..=1_500))),
                ms(r.random_range(1_000..=15_000)),
                Some(Fault::Latency(Duration::ZERO)),
            ),
            6 => (Fault::Bounce, Duration::ZERO, None),
            _ => (
                Fault::StreamingOff,
                ms(r.random_range(3_000..=30_000)),
                Some(Fault::StreamingOn),
            ),
        };
        sc.faults.push((t, start));
        if let Some(heal) = heal {
            sc.faults.push((t + end, heal));
        }
        t += end + ms(r.random_range(200..=6_000));
    }
    // An upgrade needs events still flowing after streaming is back: at
    // least a probe interval (10 s) and a margin of them.
    let back = sc
        .faults
        .iter()
        .filter(|(_, f)| *f == Fault::StreamingOn)
        .map(|(t, _)| *t)
        .max();
    if let Some(back) = back
        && sc.engine.is_none()
    {
        let until = (back + Duration::from_secs(15)).as_secs_f64();
        sc.rate = sc.rate.min(sc.events as f64 / until).max(5.0);
    }
    // Time to settle: the longest backoff (16 s), a catch-up, and a slow
    // reader's pace through the whole log; each of its drops as a slow
    // consumer may cost an idle deadline and a capped backoff (its
    // connections never last long enough to reset the backoff).
    let slow = sc.slow_reader.map_or(Duration::ZERO, |d| {
        let drops = sc.events as u32 / sc.stub.max_lag.max(1) as u32 + 1;
        d * sc.events as u32 + Duration::from_secs(25) * drops
    });
    sc.liveness = Duration::from_secs(45) + slow;
    draw_filters(&mut sc, seed);
    sc.drawn = Some(describe(&sc));
    sc
}

/// The symbols a filter is drawn from: the day's and the publisher's.
const SYMBOLS: [&str; 6] = ["AAPL", "MSFT", "NVDA", "SPY", "TSLA", crate::publisher::SYMBOL];

/// About a third of the subscribers (never the engine) take part of the
/// wire: one to five symbols, and ticks, news or both. Drawn from a stream
/// of their own, so the rest of a seed's story is as it was before filters.
fn draw_filters(sc: &mut Scenario, seed: u64) {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x6669_6c74_6572_0001);
    for i in 0..sc.clients.len() {
        if (i == 0 && sc.engine.is_some()) || !r.random_bool(0.3) {
            continue;
        }
        let mask: u32 = r.random_range(1..(1 << SYMBOLS.len()) - 1);
        let symbols = SYMBOLS
            .iter()
            .enumerate()
            .filter(|(k, _)| mask & (1 << k) != 0)
            .map(|(_, s)| *s);
        let kinds: &[&str] = match r.random_range(0..3) {
            0 => &[],
            1 => &["tick"],
            _ => &["news"],
        };
        if let Ok(filter) = wire::Filter::new(symbols, kinds) {
            sc.filters.insert(i, filter);
        }
    }
}

/// The drawn configuration in one line, printed with the seed.
pub fn describe(sc: &Scenario) -> String {
    let kinds: Vec<&str> = sc.clients.iter().map(|k| k.as_str()).collect();
    let mut out = format!(
        "clients [{}]{}{}, {} events at {:.0}/s",
        kinds.join(","),
        if sc.fallback { " auto" } else { "" },
        match sc.engine {
            Some(Some(at)) => format!(", engine killed at {} ms", at.as_millis()),
            Some(None) => ", engine".to_string(),
            None => String::new(),
        },
        sc.events,
        sc.rate
    );
    for (after, d) in &sc.quiet {
        let _ = write!(out, ", quiet {} ms after #{after}", d.as_millis());
    }
    let s = &sc.stub;
    let _ = write!(
        out,
        "; stub heartbeat {} retry {} batch {} max_lag {} grace {} retention {}",
        s.heartbeat_ms, s.retry_ms, s.batch_events, s.max_lag, s.lag_grace_ms, s.retention
    );
    if s.drop_every > 0 {
        let _ = write!(out, " drop_every {}", s.drop_every);
    }
    if s.dup_every > 0 {
        let _ = write!(out, " dup_every {}", s.dup_every);
    }
    if let Some(d) = sc.slow_reader {
        let _ = write!(out, "; slow reader {} ms/event", d.as_millis());
    }
    if sc.random_order {
        out += "; random order";
    }
    for (i, f) in &sc.filters {
        let _ = write!(out, "; client {i} {}", f.to_query());
    }
    let _ = write!(out, "; client delay {} ms; faults", sc.client_delay.as_millis());
    if sc.faults.is_empty() {
        out += " none";
    }
    for (t, f) in &sc.faults {
        let _ = write!(out, " {}@{f:?}", t.as_millis());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_one_configuration_and_seeds_differ() {
        assert_eq!(describe(&draw(7)), describe(&draw(7)));
        let distinct: std::collections::BTreeSet<String> = (0..50).map(|s| describe(&draw(s))).collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn the_swarm_spreads_over_clients_faults_and_tunables() {
        let draws: Vec<Scenario> = (0..300).map(draw).collect();
        let any = |f: &dyn Fn(&Scenario) -> bool| draws.iter().any(f);
        assert!(any(&|s| s.clients.len() == 1));
        assert!(any(&|s| s.clients.len() >= 5));
        assert!(any(&|s| s.engine == Some(None)));
        assert!(any(&|s| matches!(s.engine, Some(Some(_)))));
        assert!(any(&|s| s.fallback));
        assert!(any(&|s| s.slow_reader.is_some()));
        assert!(any(&|s| s.stub.retry_ms > 1_000) && any(&|s| s.stub.retry_ms < 1_000));
        assert!(any(&|s| s.quiet.iter().any(|(_, d)| *d > Duration::from_secs(6))));
        assert!(any(&|s| s.stub.drop_every > 0));
        for kind in [
            "partition",
            "one_way_partition",
            "hold",
            "bounce",
            "crash",
            "latency_spike",
            "streaming_off",
        ] {
            assert!(any(&|s| s.faults.iter().any(|(_, f)| f.kind() == kind)), "{kind}");
        }
        // A heartbeat always beats well inside the idle deadline (6 s).
        assert!(draws.iter().all(|s| s.stub.heartbeat_ms <= 3_000));
    }
}
