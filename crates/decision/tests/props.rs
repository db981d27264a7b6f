//! Properties over generated markets and orders: no accepted order takes a
//! position past `max_position` or the book past `max_gross_exposure`; once
//! the kill switch trips nothing that adds exposure gets through; and the
//! engine is deterministic, across runs and across checkpoint restarts.

use std::path::Path;

use decision::broker::{self, Portfolio};
use decision::risk::{self, reduces_exposure};
use decision::{
    AuditRecord, Config, Engine, FeedHealth, Market, Order, OrderLog, Reason, RiskConfig, Side, TradingState,
    Verdict, checkpoint,
};
use jiff::Timestamp;
use proptest::prelude::*;
use wire::{Event, News, Payload, Tick};

const SYMBOLS: [&str; 3] = ["AAA", "BBB", "CCC"];
const START: [f64; 3] = [100.0, 40.0, 7.0];

fn feed_health() -> impl Strategy<Value = FeedHealth> {
    prop_oneof![
        12 => Just(FeedHealth::Live),
        1 => Just(FeedHealth::Disconnected),
        1 => Just(FeedHealth::Repairing),
        1 => Just(FeedHealth::Stale),
        1 => Just(FeedHealth::Degraded),
    ]
}

/// One step of a generated market.
#[derive(Debug, Clone)]
enum Step {
    /// A tick moving the symbol by `bp` basis points, `ms` after the last
    /// event (negative: a timestamp that goes backwards). `bad`: the print
    /// is x10 or /10 and the symbol's price does not really move.
    Tick {
        sym: usize,
        bp: i32,
        ms: i64,
        bad: Option<bool>,
    },
    News {
        sym: usize,
        score: f64,
        ms: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..3usize, -150..150i32, -1_500..4_000i64, prop::option::weighted(0.03, any::<bool>()))
            .prop_map(|(sym, bp, ms, bad)| Step::Tick { sym, bp, ms, bad }),
        1 => (0..3usize, -1.0..=1.0f64, 0..3_000i64).prop_map(|(sym, score, ms)| Step::News { sym, score, ms }),
    ]
}

/// Turns steps into wire events with ids 1, 2, 3, ...
fn events(steps: &[Step]) -> Vec<Event> {
    let mut prices = START;
    let mut ms = 1_772_461_800_000i64; // 2026-03-02T14:30:00Z
    let ts = |ms: i64| Timestamp::from_millisecond(ms).unwrap();
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let payload = match *s {
                Step::Tick { sym, bp, ms: dt, bad } => {
                    ms += dt;
                    prices[sym] *= 1.0 + f64::from(bp) / 10_000.0;
                    let last = match bad {
                        Some(true) => prices[sym] * 10.0,
                        Some(false) => prices[sym] / 10.0,
                        None => prices[sym],
                    };
                    Payload::Tick(Tick {
                        symbol: SYMBOLS[sym].into(),
                        last,
                        bid: None,
                        ask: None,
                        size: None,
                        ts_utc: ts(ms),
                    })
                }
                Step::News { sym, score, ms: dt } => {
                    ms += dt;
                    Payload::News(News {
                        symbol: SYMBOLS[sym].into(),
                        score,
                        provider: "gen".into(),
                        headline: None,
                        ts_utc: ts(ms),
                    })
                }
            };
            Event {
                id: i as u64 + 1,
                pub_us: None,
                prev: None,
                payload,
            }
        })
        .collect()
}

/// A config on the scale of the generated markets, with limits that bind:
/// momentum over 5 s, max 60 shares, 12,000 gross, 150 of daily loss.
fn tight() -> Config {
    let mut c = Config::default();
    c.strategy.momentum_secs = 5;
    c.strategy.min_momentum_pct = 0.05;
    c.strategy.news_threshold = 0.5;
    c.strategy.news_window_secs = 60;
    c.strategy.max_hold_secs = 120;
    c.strategy.target_notional = 5_000.0;
    c.risk.max_position = 60;
    c.risk.max_gross_exposure = 12_000.0;
    c.risk.daily_loss_limit = 150.0;
    c.risk.max_orders = 4;
    c.risk.rate_window_secs = 10;
    c
}

fn run(engine: &mut Engine, events: &[Event], feeds: &[FeedHealth]) -> Vec<AuditRecord> {
    let mut log = Vec::new();
    for (i, e) in events.iter().enumerate() {
        log.extend(engine.on_event(e, feeds[i % feeds.len()]));
    }
    log
}

fn market_steps() -> impl Strategy<Value = (Vec<Step>, Vec<FeedHealth>)> {
    (
        prop::collection::vec(step(), 1..300),
        prop::collection::vec(feed_health(), 1..20),
    )
}

/// One generated order against the pure risk check: symbol, side, shares,
/// and the price's offset from the trusted price in basis points.
fn order_step() -> impl Strategy<Value = (usize, bool, u64, i32, i32)> {
    (0..3usize, any::<bool>(), 1..300u64, -700..700i32, -300..300i32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) and (c) against `risk::check` and the broker directly: random
    /// price moves and random orders (any side, size and price, in any
    /// trading state and feed health); after every accepted order no
    /// position is past `max_position`, and after every accepted order that
    /// adds exposure the gross exposure is within `max_gross_exposure`
    /// (one that reduces exposure never raises it).
    #[test]
    fn accepted_orders_keep_positions_and_gross_exposure_within_limits(
        orders in prop::collection::vec(order_step(), 1..200),
        feeds in prop::collection::vec(feed_health(), 1..10),
        reduce_only_every in 0..7usize,
    ) {
        let limits = RiskConfig {
            max_position: 150,
            max_gross_exposure: 20_000.0,
            max_order_notional: 15_000.0,
            max_orders: 1_000,
            ..RiskConfig::default()
        };
        let mut market = Market::default();
        let mut portfolio = Portfolio::new(100_000.0);
        let mut log = OrderLog::default();
        let mut prices = START;
        let mut now = Timestamp::from_second(1_772_461_800).unwrap();
        for (i, &(sym, buy, qty, off, mv)) in orders.iter().enumerate() {
            now += jiff::SignedDuration::from_millis(700);
            market.advance(now);
            prices[sym] *= 1.0 + f64::from(mv) / 10_000.0;
            if market.on_tick(SYMBOLS[sym], prices[sym], limits.price_band_pct, limits.band_confirm_ticks) {
                portfolio.mark(SYMBOLS[sym], prices[sym]);
            }
            let trusted = market.trusted(SYMBOLS[sym]).unwrap();
            let order = Order {
                symbol: SYMBOLS[sym].into(),
                side: if buy { Side::Buy } else { Side::Sell },
                qty,
                price: trusted * (1.0 + f64::from(off) / 10_000.0),
                reason: Reason::NewsMomentumLong,
                reduces_exposure: false,
            };
            let state = if reduce_only_every > 0 && i % reduce_only_every == 0 {
                TradingState::ReduceOnly
            } else {
                TradingState::Active
            };
            let feed = feeds[i % feeds.len()];
            let adding = !reduces_exposure(&order, &portfolio);
            let before = portfolio.gross_exposure();
            if risk::check(&order, &portfolio, &market, feed, state, &limits, &log) == Verdict::Accept {
                broker::fill(&mut portfolio, &order, 5.0, now);
                portfolio.mark(&order.symbol, trusted);
                log.record(now, &order, &limits);
                for (symbol, p) in &portfolio.positions {
                    prop_assert!(p.qty.unsigned_abs() <= limits.max_position, "{symbol}: {}", p.qty);
                }
                let after = portfolio.gross_exposure();
                if adding {
                    prop_assert!(after <= limits.max_gross_exposure, "gross {after}");
                    prop_assert_eq!(feed, FeedHealth::Live);
                    prop_assert_eq!(state, TradingState::Active);
                } else {
                    prop_assert!(after <= before + 1e-6, "reducing raised gross {before} -> {after}");
                }
            }
        }
    }

    /// (b) against `risk::check`: with the day's loss beyond the limit, no
    /// order that adds exposure is accepted, whatever the state and feed.
    #[test]
    fn a_breached_loss_limit_accepts_no_added_exposure(
        held in -200..200i64,
        loss in 2_000.01..1e7f64,
        (buy, qty, off) in (any::<bool>(), 1..400u64, -400..400i32),
        feed in feed_health(),
        state in prop_oneof![Just(TradingState::Active), Just(TradingState::ReduceOnly), Just(TradingState::Halted)],
    ) {
        let limits = RiskConfig::default();
        let now = Timestamp::from_second(1_772_461_800).unwrap();
        let mut market = Market::default();
        market.advance(now);
        market.on_tick("AAA", 100.0, 5.0, 3);
        let mut portfolio = Portfolio::new(100_000.0);
        portfolio.realised_pnl = -loss;
        if held != 0 {
            let side = if held > 0 { Side::Buy } else { Side::Sell };
            let open = Order { symbol: "AAA".into(), side, qty: held.unsigned_abs(), price: 100.0, reason: Reason::NewsMomentumLong, reduces_exposure: false };
            broker::fill(&mut portfolio, &open, 0.0, now);
        }
        let order = Order {
            symbol: "AAA".into(),
            side: if buy { Side::Buy } else { Side::Sell },
            qty,
            price: 100.0 * (1.0 + f64::from(off) / 10_000.0),
            reason: Reason::NewsMomentumLong,
            reduces_exposure: false,
        };
        let verdict = risk::check(&order, &portfolio, &market, feed, state, &limits, &OrderLog::default());
        if !reduces_exposure(&order, &portfolio) {
            prop_assert_ne!(verdict, Verdict::Accept);
        }
    }

    /// (a), (b) and (c) through the engine: random ticks (bad prints and
    /// backward timestamps included), news and feed health. No position
    /// ever passes `max_position`; an accepted opening order leaves gross
    /// exposure within the limit; once the kill switch trips (and nobody
    /// resumes), every later decision is denied.
    #[test]
    fn the_engine_keeps_its_limits_and_its_halt((steps, feeds) in market_steps()) {
        let config = tight();
        let mut engine = Engine::new(config.clone()).unwrap();
        let mut halted = false;
        for (i, e) in events(&steps).iter().enumerate() {
            let records = engine.on_event(e, feeds[i % feeds.len()]);
            let s = engine.summary();
            for (symbol, p) in &s.positions {
                prop_assert!(p.qty.unsigned_abs() <= config.risk.max_position, "{symbol}: {}", p.qty);
            }
            for r in &records {
                if halted {
                    prop_assert_eq!((r.verdict.as_str(), r.code.as_deref()), ("deny", Some("halted")));
                }
                let opening = matches!(r.reason, Reason::NewsMomentumLong | Reason::NewsMomentumShort);
                if r.verdict == "accept" && opening {
                    prop_assert!(s.gross_exposure <= config.risk.max_gross_exposure, "gross {}", s.gross_exposure);
                }
            }
            if s.counts.kill_switch_trips > 0 {
                halted = true;
                prop_assert_eq!(s.state, TradingState::Halted);
            }
        }
    }

    /// (d) The same events give the same audit log, and the same state,
    /// run after run; and a checkpoint restart at any point changes nothing.
    #[test]
    fn the_engine_is_deterministic((steps, feeds) in market_steps(), split in any::<prop::sample::Index>()) {
        let events = events(&steps);
        let mut a = Engine::new(tight()).unwrap();
        let mut b = Engine::new(tight()).unwrap();
        let log_a = run(&mut a, &events, &feeds);
        let log_b = run(&mut b, &events, &feeds);
        prop_assert_eq!(&log_a, &log_b);
        prop_assert_eq!(checkpoint::to_json(&a), checkpoint::to_json(&b));

        let at = split.index(events.len() + 1);
        let mut first = Engine::new(tight()).unwrap();
        let mut log = Vec::new();
        for (i, e) in events[..at].iter().enumerate() {
            log.extend(first.on_event(e, feeds[i % feeds.len()]));
        }
        let loaded = checkpoint::from_json(Path::new("mem"), &checkpoint::to_json(&first)).unwrap();
        let mut second = Engine::restore(tight(), loaded.state).unwrap();
        for (i, e) in events.iter().enumerate().skip(at) {
            log.extend(second.on_event(e, feeds[i % feeds.len()]));
        }
        let lines = |l: &[AuditRecord]| l.iter().map(AuditRecord::to_json_line).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(lines(&log), lines(&log_a));
        prop_assert_eq!(second, a);
    }
}

/// The generated markets do exercise the controls: over a fixed set of
/// seeds, the engine property above sees accepts, the kill switch and
/// several denial codes (otherwise it would prove little).
#[test]
fn generated_markets_exercise_the_controls() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut accepts, mut trips) = (0, 0);
    for _ in 0..200 {
        let (steps, feeds) = market_steps().new_tree(&mut runner).unwrap().current();
        let mut engine = Engine::new(tight()).unwrap();
        run(&mut engine, &events(&steps), &feeds);
        let s = engine.summary();
        accepts += s.counts.accepts;
        trips += s.counts.kill_switch_trips;
        for (code, n) in s.counts.denials_by_code {
            *codes.entry(code).or_default() += n;
        }
    }
    println!("accepts {accepts}, kill switch trips {trips}, denials {codes:?}");
    assert!(accepts > 0 && trips > 0);
    for code in ["halted", "price_band", "max_position", "feed_stale"] {
        assert!(codes.contains_key(code), "{code} never denied: {codes:?}");
    }
}
