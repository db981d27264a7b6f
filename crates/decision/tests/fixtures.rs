//! The engine over the committed fixtures: the default trading day trades
//! and meets the risk controls; the edge cases (bad prices, out-of-order
//! timestamps, unknown kinds, a quiet spell) are handled as
//! `fixtures/edge/README.md` says.

use decision::{AuditRecord, Config, Engine, FeedHealth, Reason, Side, Summary, TradingState};

/// Runs payloads through a fresh engine, ids 1, 2, 3, ... on a live feed;
/// returns the audit log and the summary.
fn run(config: Config, name: &str, text: &str) -> (Vec<AuditRecord>, Summary) {
    let payloads = wire::fixture::parse(name, text).unwrap();
    let mut engine = Engine::new(config).unwrap();
    let mut log = Vec::new();
    for (i, payload) in payloads.into_iter().enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            prev: None,
            payload,
        };
        log.extend(engine.on_event(&event, FeedHealth::Live));
    }
    (log, engine.summary())
}

/// The edge fixtures span seconds, not minutes: momentum over 1 s, and a
/// lower bar for it, so that the strategy acts on them at all.
fn seconds_scale() -> Config {
    let mut config = Config::default();
    config.strategy.momentum_secs = 1;
    config.strategy.min_momentum_pct = 0.02;
    config
}

fn edge(name: &str) -> (Vec<AuditRecord>, Summary) {
    let path = format!("{}/../../fixtures/edge/{name}", env!("CARGO_MANIFEST_DIR"));
    run(seconds_scale(), name, &std::fs::read_to_string(path).unwrap())
}

fn decisions(log: &[AuditRecord]) -> Vec<(u64, Side, Reason, &str, Option<&str>)> {
    log.iter()
        .map(|r| {
            (
                r.event_id,
                r.action,
                r.reason,
                r.verdict.as_str(),
                r.code.as_deref(),
            )
        })
        .collect()
}

#[test]
fn the_default_day_trades_and_meets_the_risk_controls() {
    let (log, summary) = run(
        Config::default(),
        wire::fixture::DEFAULT_NAME,
        wire::fixture::DEFAULT,
    );
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    for r in &log {
        println!("{}", r.to_json_line());
    }
    assert_eq!(summary.counts.events, 6347);
    assert_eq!(summary.counts.decisions, log.len() as u64);
    assert_eq!(
        summary.counts.accepts + summary.counts.denials,
        summary.counts.decisions
    );

    // It trades: a long on NVDA after its good news, a short on TSLA after
    // its bad news, each opened and closed.
    let opened = |symbol: &str, reason: Reason| {
        log.iter()
            .any(|r| r.symbol == symbol && r.reason == reason && r.verdict == "accept")
    };
    assert!(opened("NVDA", Reason::NewsMomentumLong));
    assert!(opened("TSLA", Reason::NewsMomentumShort));
    assert!(summary.counts.accepts >= 4, "{summary:?}");
    assert!(summary.positions.is_empty(), "{summary:?}");

    // And risk denies: the price band holds on the first ticks of the
    // NVDA +6% and TSLA -5% jumps, until the new level is confirmed.
    assert!(summary.counts.denials > 0);
    let band: Vec<u64> = log
        .iter()
        .filter(|r| r.code.as_deref() == Some("price_band"))
        .map(|r| r.event_id)
        .collect();
    assert_eq!(band, vec![1297, 1298, 3589, 3590]);
    assert_eq!(summary.state, TradingState::Active);
    assert_eq!(summary.counts.kill_switch_trips, 0);
}

#[test]
fn the_price_band_denies_trading_on_bad_ticks() {
    let (log, summary) = edge("bad_price.jsonl");
    assert_eq!(
        decisions(&log),
        vec![
            // The x10 print right after strong news looks like momentum: denied.
            (4, Side::Buy, Reason::NewsMomentumLong, "deny", Some("price_band")),
            // A genuine small rise: the long opens.
            (5, Side::Buy, Reason::NewsMomentumLong, "accept", None),
            // The /10 print looks like a stop loss: denied, the long stays.
            (6, Side::Sell, Reason::StopLoss, "deny", Some("price_band")),
        ]
    );
    assert_eq!(log[1].price, 412.80);
    // Neither bad print became the mark: the position is marked at 412.95.
    let msft = &summary.positions["MSFT"];
    assert_eq!((msft.qty, msft.mark), (24, 412.95));
    assert!(summary.unrealised_pnl.abs() < 10.0, "{summary:?}");

    // With the default minute-scale momentum the day is too short to trade
    // at all, and nothing is accepted at a bad price either way.
    let path = format!(
        "{}/../../fixtures/edge/bad_price.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let (log, _) = run(Config::default(), "bad_price.jsonl", &text);
    assert!(
        log.iter()
            .all(|r| r.verdict == "deny" || (r.price - 412.8).abs() < 1.0)
    );
}

#[test]
fn out_of_order_timestamps_are_taken_in_stride() {
    let (log, summary) = edge("out_of_order.jsonl");
    // The tick at 14:30:02 after one at 14:30:03, and news stamped before
    // every tick: "now" stays at the latest time, the news still counts.
    assert_eq!(
        decisions(&log),
        vec![(5, Side::Buy, Reason::NewsMomentumLong, "accept", None)]
    );
    assert_eq!(log[0].ts.to_string(), "2026-03-02T14:30:04Z");
    assert_eq!(summary.counts.events, 6);
    assert_eq!(summary.positions["AAPL"].qty, 52);
}

#[test]
fn unknown_kinds_and_quiet_spells_break_nothing() {
    let (log, summary) = edge("unknown_kind.jsonl");
    assert!(log.is_empty());
    assert_eq!((summary.counts.events, summary.counts.ignored), (3, 1));

    let (log, summary) = edge("quiet_spell.jsonl");
    assert!(log.is_empty());
    assert_eq!((summary.counts.ticks, summary.counts.news), (5, 1));
}
