//! The engine: one wire event in, the decisions it led to out, as audit
//! records. Market view, strategy, risk and paper broker, wired in one
//! place; no IO, no clock, no randomness.
//!
//! Time is event time only: "now" is the latest timestamp seen, so a
//! timestamp that goes backwards neither rewinds the engine nor breaks a
//! window. Events are applied in id order; an id at or below the last one
//! processed is skipped (a restart from a checkpoint never repeats a
//! decision). Unknown payload kinds, and payloads that fail
//! `wire::Payload::validate`, are counted and ignored.
//!
//! The kill switch: whenever the day's P&L is below `-daily_loss_limit` the
//! state becomes `Halted`, and only [`Engine::resume`] lifts it. After a
//! resume with the loss still beyond the limit, the switch does not trip
//! again at once, but `risk::check` still denies every order that adds
//! exposure (`daily_loss_limit`) until the loss recovers or a new UTC day
//! starts; a fresh breach trips it again.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wire::{Event, Payload, Tick};

use crate::broker::{self, Portfolio, Position};
use crate::config::{Config, ConfigError};
pub use crate::counts::Counts;
use crate::epoch::EpochChange;
use crate::market::Market;
use crate::risk::{self, FeedHealth, OrderLog, TradingState, Verdict, Violation};
use crate::strategy::{Order, Reason, Side, Strategy};

/// One decision: an order the strategy proposed and what risk said. One
/// JSON line each, keys always present and in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The event that led to it.
    pub event_id: u64,
    /// That event's own timestamp (RFC 3339).
    pub ts: Timestamp,
    pub symbol: String,
    /// `buy` or `sell`.
    pub action: Side,
    pub qty: u64,
    /// The order's price (before slippage).
    pub price: f64,
    pub reason: Reason,
    /// `accept` or `deny`.
    pub verdict: String,
    /// The denial code (`price_band`, ...); `null` when accepted.
    pub code: Option<String>,
}

impl AuditRecord {
    pub fn new(event_id: u64, ts: Timestamp, order: &Order, verdict: Verdict) -> AuditRecord {
        let (verdict, code) = match verdict {
            Verdict::Accept => ("accept", None),
            Verdict::Deny(code) => ("deny", Some(code.as_str().to_owned())),
        };
        AuditRecord {
            event_id,
            ts,
            symbol: order.symbol.clone(),
            action: order.side,
            qty: order.qty,
            price: order.price,
            reason: order.reason,
            verdict: verdict.to_owned(),
            code,
        }
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an audit record always serializes")
    }
}

/// Where the engine stands: counts, state, P&L and positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub last_event_id: Option<u64>,
    #[serde(flatten)]
    pub counts: Counts,
    pub state: TradingState,
    pub realised_pnl: f64,
    pub unrealised_pnl: f64,
    pub day_pnl: f64,
    pub cash: f64,
    pub gross_exposure: f64,
    pub positions: BTreeMap<String, Position>,
}

/// What the engine learned from the events: everything a checkpoint keeps.
/// The configuration is not part of it: a restart runs with the one given
/// at start (see [`Engine::restore`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    last_event_id: Option<u64>,
    /// The wire's epoch `last_event_id` is an id in (none: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<wire::Epoch>,
    market: Market,
    strategy: Strategy,
    portfolio: Portfolio,
    orders: OrderLog,
    /// Named `state` in checkpoints, as in version 1.
    #[serde(rename = "state")]
    trading: TradingState,
    /// Set by `resume` while the day's loss is beyond the limit, so the kill
    /// switch does not trip again until the loss has recovered once.
    loss_acknowledged: bool,
    counts: Counts,
}

/// Past this, a money amount is no paper account's: a checkpoint holding
/// one was not written by an engine (or was edited).
const MAX_MONEY: f64 = 1e12;
/// Past this, a share count is nonsense for any listed security.
const MAX_SHARES: i64 = 1_000_000_000;

impl State {
    /// What no engine could have written, as (field, why): numbers that are
    /// not finite, prices not above 0, money or share counts beyond any
    /// account, counts that do not add up. Limits of the configuration are
    /// not checked here: a restart may lower them (see `violations`).
    /// Negative cash is allowed: the risk rules bound exposure, not cash.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        let money = |field: String, v: f64| {
            if !v.is_finite() || v.abs() > MAX_MONEY {
                return Err((
                    field,
                    format!("is {v}, not a finite amount within ±{MAX_MONEY:e}"),
                ));
            }
            Ok(())
        };
        let price = |field: String, v: f64| {
            if !(v.is_finite() && v > 0.0 && v <= MAX_MONEY) {
                return Err((field, format!("is {v}, not a price above 0")));
            }
            Ok(())
        };
        let p = &self.portfolio;
        money("portfolio.cash".into(), p.cash)?;
        money("portfolio.realised_pnl".into(), p.realised_pnl)?;
        money("portfolio.day_start_pnl".into(), p.day_start_pnl)?;
        for (symbol, pos) in &p.positions {
            if pos.qty == 0 || pos.qty.abs() > MAX_SHARES {
                return Err((
                    format!("portfolio.positions.{symbol}.qty"),
                    format!(
                        "is {}, not a share count from 1 to {MAX_SHARES} either way",
                        pos.qty
                    ),
                ));
            }
            price(format!("portfolio.positions.{symbol}.avg_price"), pos.avg_price)?;
            price(format!("portfolio.positions.{symbol}.mark"), pos.mark)?;
        }
        for (symbol, q) in &self.market.quotes {
            price(format!("market.quotes.{symbol}.last"), q.last)?;
            price(format!("market.quotes.{symbol}.trusted"), q.trusted)?;
        }
        let c = &self.counts;
        if c.accepts + c.denials != c.decisions {
            return Err((
                "counts.decisions".into(),
                format!(
                    "is {}, not accepts {} + denials {}",
                    c.decisions, c.accepts, c.denials
                ),
            ));
        }
        if c.events > 0 && self.last_event_id.is_none() {
            return Err((
                "last_event_id".into(),
                format!("is missing after {} events", c.events),
            ));
        }
        Ok(())
    }
}

/// The decision engine: a configuration and the [`State`] it acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    config: Config,
    state: State,
}

impl Engine {
    /// A fresh engine, flat, `Active`, with the starting cash.
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            state: State {
                last_event_id: None,
                epoch: None,
                market: Market::default(),
                strategy: Strategy::default(),
                portfolio: Portfolio::new(config.broker.starting_cash),
                orders: OrderLog::default(),
                trading: TradingState::Active,
                loss_acknowledged: false,
                counts: Counts::default(),
            },
            config,
        })
    }

    /// An engine that goes on from a checkpoint's `state` under `config`,
    /// the configuration given now (`broker.starting_cash` does not apply:
    /// the cash is the state's). The state may break the new limits;
    /// [`Engine::violations`] says how, and the controls deal with it as they
    /// would any breach: increases are denied, reductions never, and a day
    /// loss beyond the limit trips the kill switch at the next event.
    pub fn restore(config: Config, state: State) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine { config, state })
    }

    /// What a checkpoint keeps.
    pub fn snapshot(&self) -> &State {
        &self.state
    }

    /// The limits the current book is already past (after a restore with
    /// lower limits), in key then symbol order.
    pub fn violations(&self) -> Vec<Violation> {
        risk::violations(&self.state.portfolio, &self.config.risk)
    }

    /// Applies one event with the feed's health at that moment; returns a
    /// record of every decision it led to (at most one per tick today).
    pub fn on_event(&mut self, event: &Event, feed: FeedHealth) -> Vec<AuditRecord> {
        if self.state.last_event_id.is_some_and(|last| event.id <= last) {
            self.state.counts.repeated += 1;
            return Vec::new();
        }
        self.state.last_event_id = Some(event.id);
        let traded = &self.config.strategy.symbols;
        if !traded.is_empty() && !event.payload.symbol().is_some_and(|s| traded.contains(s)) {
            self.state.counts.not_traded += 1;
            return Vec::new();
        }
        self.state.counts.events += 1;
        if event.payload.validate().is_err() {
            self.state.counts.ignored += 1;
            return Vec::new();
        }
        match &event.payload {
            Payload::Tick(tick) => {
                self.state.counts.ticks += 1;
                self.on_tick(event.id, tick, feed)
            }
            Payload::News(news) => {
                self.state.counts.news += 1;
                self.advance(news.ts_utc);
                self.state.strategy.on_news(&news.symbol, news.score, news.ts_utc);
                self.check_kill_switch();
                Vec::new()
            }
            Payload::Other { .. } => {
                self.state.counts.ignored += 1;
                Vec::new()
            }
        }
    }

    fn advance(&mut self, ts: Timestamp) -> Timestamp {
        let now = self.state.market.advance(ts);
        self.state.portfolio.roll_day(now);
        now
    }

    fn on_tick(&mut self, event_id: u64, tick: &Tick, feed: FeedHealth) -> Vec<AuditRecord> {
        let now = self.advance(tick.ts_utc);
        let limits = &self.config.risk;
        let symbol = tick.symbol.as_str();
        let trusted = self.state.market.on_tick(
            symbol,
            tick.last,
            limits.price_band_pct,
            limits.band_confirm_ticks,
        );
        if trusted {
            self.state.portfolio.mark(symbol, tick.last);
        }
        self.check_kill_switch();

        let position = self.state.portfolio.positions.get(symbol);
        let Some(order) =
            self.state
                .strategy
                .on_tick(&self.config.strategy, symbol, tick.last, trusted, now, position)
        else {
            return Vec::new();
        };
        let verdict = risk::check(
            &order,
            &self.state.portfolio,
            &self.state.market,
            feed,
            self.state.trading,
            &self.config.risk,
            &self.state.orders,
        );
        self.state.counts.decisions += 1;
        match verdict {
            Verdict::Accept => {
                self.state.counts.accepts += 1;
                *self
                    .state
                    .counts
                    .accepts_by_reason
                    .entry(order.reason.as_str().to_owned())
                    .or_default() += 1;
                broker::fill(
                    &mut self.state.portfolio,
                    &order,
                    self.config.broker.slippage_bps,
                    now,
                );
                if let Some(price) = self.state.market.trusted(symbol) {
                    self.state.portfolio.mark(symbol, price);
                }
                self.state.orders.record(now, &order, &self.config.risk);
                self.check_kill_switch();
            }
            Verdict::Deny(code) => {
                self.state.counts.denials += 1;
                *self
                    .state
                    .counts
                    .denials_by_code
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        vec![AuditRecord::new(event_id, tick.ts_utc, &order, verdict)]
    }

    fn check_kill_switch(&mut self) {
        let breached = self.state.portfolio.day_pnl() < -self.config.risk.daily_loss_limit;
        if !breached {
            self.state.loss_acknowledged = false;
        } else if !self.state.loss_acknowledged && self.state.trading != TradingState::Halted {
            self.state.trading = TradingState::Halted;
            self.state.counts.kill_switch_trips += 1;
        }
    }

    /// The operator's resume: back to `Active`. Nothing else leaves `Halted`.
    pub fn resume(&mut self) {
        self.state.loss_acknowledged = self.state.portfolio.day_pnl() < -self.config.risk.daily_loss_limit;
        self.state.trading = TradingState::Active;
    }

    /// The operator's halt: no orders at all until [`Engine::resume`].
    pub fn halt(&mut self) {
        self.state.trading = TradingState::Halted;
    }

    /// The operator's reduce-only switch: only orders that reduce exposure.
    /// A halt takes precedence; leave either with [`Engine::resume`].
    pub fn reduce_only(&mut self) {
        if self.state.trading != TradingState::Halted {
            self.state.trading = TradingState::ReduceOnly;
        }
    }

    pub fn state(&self) -> TradingState {
        self.state.trading
    }

    /// The last event applied: resume the wire after it.
    pub fn last_event_id(&self) -> Option<u64> {
        self.state.last_event_id
    }

    /// The wire's epoch the last event id is an id in, once known.
    pub fn epoch(&self) -> Option<wire::Epoch> {
        self.state.epoch
    }

    /// Records the epoch of the events applied if none is known; another
    /// epoch than a known one is [`Engine::change_epoch`]'s.
    pub fn adopt_epoch(&mut self, epoch: wire::Epoch) {
        self.state.epoch.get_or_insert(epoch);
    }

    /// Goes on in the new epoch `to` after `resume_after` (the skip rule
    /// restarts there), keeping the book and counts: the audit record.
    pub fn change_epoch(&mut self, from: wire::Epoch, to: wire::Epoch, resume_after: u64) -> EpochChange {
        let change = EpochChange {
            from,
            to,
            last_event_id: self.state.last_event_id,
            resume_after,
        };
        self.state.epoch = Some(to);
        self.state.last_event_id = Some(resume_after);
        self.state.counts.epoch_changes += 1;
        change
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn portfolio(&self) -> &Portfolio {
        &self.state.portfolio
    }

    pub fn market(&self) -> &Market {
        &self.state.market
    }

    pub fn summary(&self) -> Summary {
        Summary {
            last_event_id: self.state.last_event_id,
            counts: self.state.counts.clone(),
            state: self.state.trading,
            realised_pnl: self.state.portfolio.realised_pnl,
            unrealised_pnl: self.state.portfolio.unrealised_pnl(),
            day_pnl: self.state.portfolio.day_pnl(),
            cash: self.state.portfolio.cash,
            gross_exposure: self.state.portfolio.gross_exposure(),
            positions: self.state.portfolio.positions.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::News;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_second(1_772_460_000 + s as i64).unwrap()
    }

    fn tick(id: u64, symbol: &str, last: f64, at: u64) -> Event {
        Event {
            id,
            pub_us: None,
            prev: None,
            payload: Payload::Tick(Tick {
                symbol: symbol.into(),
                last,
                bid: None,
                ask: None,
                size: None,
                ts_utc: t(at),
            }),
        }
    }

    fn news(id: u64, symbol: &str, score: f64, at: u64) -> Event {
        Event {
            id,
            pub_us: None,
            prev: None,
            payload: Payload::News(News {
                symbol: symbol.into(),
                score,
                provider: "test".into(),
                headline: None,
                ts_utc: t(at),
            }),
        }
    }

    /// Drives an engine: each event gets the next id.
    struct Run {
        engine: Engine,
        next_id: u64,
    }

    impl Run {
        fn new(config: Config) -> Run {
            Run {
                engine: Engine::new(config).unwrap(),
                next_id: 1,
            }
        }

        fn id(&mut self) -> u64 {
            self.next_id += 1;
            self.next_id - 1
        }

        fn tick(&mut self, symbol: &str, last: f64, at: u64, feed: FeedHealth) -> Vec<AuditRecord> {
            let e = tick(self.id(), symbol, last, at);
            self.engine.on_event(&e, feed)
        }

        fn news(&mut self, symbol: &str, score: f64, at: u64) {
            let e = news(self.id(), symbol, score, at);
            assert!(self.engine.on_event(&e, FeedHealth::Live).is_empty());
        }

        /// X trusted at 100 at t=0, positive news at t=60, then a tick at
        /// 101 at t=61: a long of 99 shares is proposed.
        fn open_long(&mut self, feed: FeedHealth) -> Vec<AuditRecord> {
            assert!(self.tick("X", 100.0, 0, FeedHealth::Live).is_empty());
            self.news("X", 0.9, 60);
            self.tick("X", 101.0, 61, feed)
        }
    }

    fn verdicts(records: &[AuditRecord]) -> Vec<(&str, Option<&str>)> {
        records
            .iter()
            .map(|r| (r.verdict.as_str(), r.code.as_deref()))
            .collect()
    }

    #[test]
    fn a_signal_is_traded_and_recorded_as_one_json_line() {
        let mut run = Run::new(Config::default());
        let records = run.open_long(FeedHealth::Live);
        assert_eq!(
            records.iter().map(AuditRecord::to_json_line).collect::<Vec<_>>(),
            vec![
                r#"{"event_id":3,"ts":"2026-03-02T14:01:01Z","symbol":"X","action":"buy","qty":99,"price":101.0,"reason":"news_momentum_long","verdict":"accept","code":null}"#
            ]
        );
        assert_eq!(run.engine.portfolio().qty("X"), 99);
        let s = run.engine.summary();
        assert_eq!((s.counts.events, s.counts.decisions, s.counts.accepts), (3, 1, 1));
        assert_eq!(s.state, TradingState::Active);
    }

    #[test]
    fn a_stale_feed_blocks_opening_but_not_closing() {
        let mut run = Run::new(Config::default());
        let r = run.open_long(FeedHealth::Stale);
        assert_eq!(verdicts(&r), vec![("deny", Some("feed_stale"))]);
        run.tick("X", 101.0, 62, FeedHealth::Live);
        assert_eq!(run.engine.portfolio().qty("X"), 99);
        // Stop loss on a disconnected feed: reducing, allowed.
        let r = run.tick("X", 98.5, 63, FeedHealth::Disconnected);
        assert_eq!(r[0].reason, Reason::StopLoss);
        assert_eq!(verdicts(&r), vec![("accept", None)]);
        assert_eq!(run.engine.portfolio().qty("X"), 0);
    }

    #[test]
    fn halt_needs_an_explicit_resume() {
        let mut run = Run::new(Config::default());
        run.engine.halt();
        let r = run.open_long(FeedHealth::Live);
        assert_eq!(verdicts(&r), vec![("deny", Some("halted"))]);
        // Time passes, the feed is fine, nothing resumes it by itself.
        for i in 0..100 {
            run.tick("Y", 50.0, 100 + i * 60, FeedHealth::Live);
        }
        assert_eq!(run.engine.state(), TradingState::Halted);
        run.engine.resume();
        assert_eq!(run.engine.state(), TradingState::Active);
        // A halt is not downgraded to reduce-only.
        run.engine.halt();
        run.engine.reduce_only();
        assert_eq!(run.engine.state(), TradingState::Halted);
    }

    #[test]
    fn reduce_only_lets_a_position_be_closed_only() {
        let mut run = Run::new(Config::default());
        run.open_long(FeedHealth::Live);
        run.engine.reduce_only();
        let r = run.tick("X", 105.1, 70, FeedHealth::Live);
        assert_eq!(
            (r[0].reason, r[0].verdict.as_str()),
            (Reason::TakeProfit, "accept")
        );
        // Flat again, and the long signal is still on: denied.
        let r = run.tick("X", 105.2, 71, FeedHealth::Live);
        assert_eq!(r[0].reason, Reason::NewsMomentumLong);
        assert_eq!(verdicts(&r), vec![("deny", Some("reduce_only"))]);
    }

    #[test]
    fn the_kill_switch_trips_on_the_daily_loss_and_stays_until_resumed() {
        let mut config = Config::default();
        config.risk.daily_loss_limit = 100.0;
        config.strategy.stop_loss_pct = 50.0;
        let mut run = Run::new(config);
        run.open_long(FeedHealth::Live);
        // 99 shares, down 1.5 each: below -100.
        assert!(run.tick("X", 99.5, 62, FeedHealth::Live).is_empty());
        assert_eq!(run.engine.state(), TradingState::Halted);
        assert_eq!(run.engine.summary().counts.kill_switch_trips, 1);
        // A new long signal on another symbol: denied while halted.
        run.tick("Z", 10.0, 63, FeedHealth::Live);
        run.news("Z", 0.9, 130);
        let r = run.tick("Z", 10.5, 131, FeedHealth::Live);
        assert_eq!(verdicts(&r), vec![("deny", Some("halted"))]);
        // The loss recovers: still halted.
        run.tick("X", 101.0, 140, FeedHealth::Live);
        assert_eq!(run.engine.state(), TradingState::Halted);
        // Back below, resumed while below: adding is denied, closing is not,
        // and the switch does not trip again at once.
        run.tick("X", 99.5, 141, FeedHealth::Live);
        run.engine.resume();
        let r = run.tick("Z", 10.5, 142, FeedHealth::Live);
        assert_eq!(verdicts(&r), vec![("deny", Some("daily_loss_limit"))]);
        assert_eq!(run.engine.state(), TradingState::Active);
        // Then a fresh breach after recovering trips it again.
        run.tick("X", 101.0, 143, FeedHealth::Live);
        run.tick("X", 99.5, 144, FeedHealth::Live);
        assert_eq!(run.engine.state(), TradingState::Halted);
        assert_eq!(run.engine.summary().counts.kill_switch_trips, 2);
    }

    #[test]
    fn repeated_ids_and_unknown_kinds_are_ignored() {
        let mut engine = Engine::new(Config::default()).unwrap();
        engine.on_event(&tick(5, "X", 100.0, 0), FeedHealth::Live);
        engine.on_event(&tick(5, "X", 200.0, 1), FeedHealth::Live);
        engine.on_event(&tick(4, "X", 200.0, 1), FeedHealth::Live);
        let other = Event {
            id: 6,
            pub_us: None,
            prev: None,
            payload: Payload::Other {
                kind: "halt".into(),
                fields: BTreeMap::new(),
            },
        };
        engine.on_event(&other, FeedHealth::Live);
        let bad = tick(7, "X", f64::NAN, 2);
        engine.on_event(&bad, FeedHealth::Live);
        let s = engine.summary();
        assert_eq!((s.counts.events, s.counts.repeated, s.counts.ignored), (3, 2, 2));
        assert_eq!(engine.market().quotes["X"].last, 100.0);
        assert_eq!(s.last_event_id, Some(7));
    }

    #[test]
    fn out_of_order_timestamps_do_not_rewind_now() {
        let mut run = Run::new(Config::default());
        run.tick("X", 100.0, 100, FeedHealth::Live);
        run.tick("X", 100.0, 50, FeedHealth::Live);
        assert_eq!(run.engine.market().now, Some(t(100)));
    }

    #[test]
    fn an_invalid_config_is_refused_naming_the_key() {
        let mut config = Config::default();
        config.risk.max_position = 0;
        assert_eq!(
            Engine::new(config).unwrap_err().to_string(),
            "risk.max_position: must be > 0"
        );
    }
}
