//! Pre-trade risk: one pure function, [`check`], from an order and
//! everything it is judged against to `Accept` or `Deny(code)`; plus the
//! inputs it needs that nothing else owns (feed health, the trading state,
//! the log of orders sent).
//!
//! The controls, in the order they are checked (the first failure is the
//! verdict):
//!
//! | code | denies | when |
//! |---|---|---|
//! | `halted` | every order | the trading state is `Halted` (kill switch or operator) |
//! | `invalid_order` | every order | quantity 0, or a price not finite and above 0 |
//! | `no_reference_price` | every order | no trusted price for the symbol yet |
//! | `reduce_only` | adding | the trading state is `ReduceOnly` |
//! | `feed_<health>` | adding | the feed is not `Live` (`feed_disconnected`, `feed_repairing`, `feed_stale`, `feed_degraded`) |
//! | `daily_loss_limit` | adding | the day's P&L (realised + unrealised) is below `-daily_loss_limit` |
//! | `price_band` | every order | the price is more than `price_band_pct` from the last trusted price |
//! | `duplicate_order` | every order | the same symbol, side and quantity was sent within `duplicate_window_secs` |
//! | `rate_limit` | every order | `max_orders` were sent within the last `rate_window_secs` |
//! | `max_order_notional` | adding | qty x price above `max_order_notional` |
//! | `max_position` | adding | the resulting position above `max_position` shares either way |
//! | `max_gross_exposure` | adding | the resulting gross exposure above `max_gross_exposure` |
//!
//! "Adding" means the order does not reduce exposure; an order reduces
//! exposure when it moves the symbol's position toward zero without
//! crossing it ([`reduces_exposure`], worked out from the portfolio, never
//! taken from the strategy). Exposure limits never block a reducing order;
//! the price band, the duplicate guard and the rate limit guard against
//! bad data and runaway loops, so they apply to every order.

use std::collections::VecDeque;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::broker::Portfolio;
use crate::config::RiskConfig;
use crate::market::{Market, within_band};
use crate::strategy::{Order, Side};

/// What the transport says about the feed, passed with every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedHealth {
    /// Connected, caught up, no known gap.
    Live,
    /// No connection; reconnecting.
    Disconnected,
    /// A gap was found and is being filled (replay or backfill).
    Repairing,
    /// No data, not even a heartbeat, within the idle deadline.
    Stale,
    /// Working, but below par (fallback transport, lag beyond a bound).
    Degraded,
}

/// Whether the engine may trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Every control applies; nothing else restricts orders.
    Active,
    /// Only orders that reduce exposure.
    ReduceOnly,
    /// No orders at all. Only an explicit resume leaves it.
    Halted,
}

impl TradingState {
    /// Every state, for a gauge that shows all of them.
    pub const ALL: [TradingState; 3] = [
        TradingState::Active,
        TradingState::ReduceOnly,
        TradingState::Halted,
    ];

    /// The stable name, as serialized: `active`, `reduce_only`, `halted`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradingState::Active => "active",
            TradingState::ReduceOnly => "reduce_only",
            TradingState::Halted => "halted",
        }
    }
}

impl fmt::Display for TradingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable reason code for a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Halted,
    InvalidOrder,
    NoReferencePrice,
    ReduceOnly,
    FeedDisconnected,
    FeedRepairing,
    FeedStale,
    FeedDegraded,
    DailyLossLimit,
    PriceBand,
    DuplicateOrder,
    RateLimit,
    MaxOrderNotional,
    MaxPosition,
    MaxGrossExposure,
}

impl Code {
    /// Every code, for a family that shows each reason from the start.
    pub const ALL: [Code; 15] = [
        Code::Halted,
        Code::InvalidOrder,
        Code::NoReferencePrice,
        Code::ReduceOnly,
        Code::FeedDisconnected,
        Code::FeedRepairing,
        Code::FeedStale,
        Code::FeedDegraded,
        Code::DailyLossLimit,
        Code::PriceBand,
        Code::DuplicateOrder,
        Code::RateLimit,
        Code::MaxOrderNotional,
        Code::MaxPosition,
        Code::MaxGrossExposure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Halted => "halted",
            Code::InvalidOrder => "invalid_order",
            Code::NoReferencePrice => "no_reference_price",
            Code::ReduceOnly => "reduce_only",
            Code::FeedDisconnected => "feed_disconnected",
            Code::FeedRepairing => "feed_repairing",
            Code::FeedStale => "feed_stale",
            Code::FeedDegraded => "feed_degraded",
            Code::DailyLossLimit => "daily_loss_limit",
            Code::PriceBand => "price_band",
            Code::DuplicateOrder => "duplicate_order",
            Code::RateLimit => "rate_limit",
            Code::MaxOrderNotional => "max_order_notional",
            Code::MaxPosition => "max_position",
            Code::MaxGrossExposure => "max_gross_exposure",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a risk check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    Deny(Code),
}

/// Orders sent (accepted) recently, for the rate limit and duplicate guard.
/// Denied orders were never sent, so they are not here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderLog {
    /// Oldest first; kept for the longer of the two windows.
    pub sent: VecDeque<Sent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// Event time ("now") when it was sent.
    pub ts: Timestamp,
    pub symbol: String,
    pub side: Side,
    pub qty: u64,
}

fn secs(s: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX))
}

impl OrderLog {
    /// Records an accepted order sent at `now` and forgets what no window
    /// can see any more.
    pub fn record(&mut self, now: Timestamp, order: &Order, limits: &RiskConfig) {
        let keep = secs(limits.rate_window_secs.max(limits.duplicate_window_secs));
        while self
            .sent
            .front()
            .is_some_and(|s| now.duration_since(s.ts) >= keep)
        {
            self.sent.pop_front();
        }
        self.sent.push_back(Sent {
            ts: now,
            symbol: order.symbol.clone(),
            side: order.side,
            qty: order.qty,
        });
    }

    /// Orders sent less than `window` before `now`.
    fn within(&self, now: Timestamp, window: SignedDuration) -> impl Iterator<Item = &Sent> {
        self.sent
            .iter()
            .filter(move |s| now.duration_since(s.ts) < window)
    }
}

impl FeedHealth {
    /// The denial code for adding exposure on this feed, `None` when live.
    pub fn code(self) -> Option<Code> {
        match self {
            FeedHealth::Live => None,
            FeedHealth::Disconnected => Some(Code::FeedDisconnected),
            FeedHealth::Repairing => Some(Code::FeedRepairing),
            FeedHealth::Stale => Some(Code::FeedStale),
            FeedHealth::Degraded => Some(Code::FeedDegraded),
        }
    }
}

/// Whether an order moves the symbol's position toward zero without
/// crossing it (closing exactly to zero counts).
pub fn reduces_exposure(order: &Order, portfolio: &Portfolio) -> bool {
    let held = portfolio.qty(&order.symbol);
    held != 0 && held.signum() != order.side.sign() && order.qty <= held.unsigned_abs()
}

/// Judges one order. Pure: reads its arguments and nothing else; "now" is
/// `market.now`, the latest event time.
pub fn check(
    order: &Order,
    portfolio: &Portfolio,
    market: &Market,
    feed: FeedHealth,
    state: TradingState,
    limits: &RiskConfig,
    history: &OrderLog,
) -> Verdict {
    match check_all(order, portfolio, market, feed, state, limits, history) {
        Ok(()) => Verdict::Accept,
        Err(code) => Verdict::Deny(code),
    }
}

fn check_all(
    order: &Order,
    portfolio: &Portfolio,
    market: &Market,
    feed: FeedHealth,
    state: TradingState,
    limits: &RiskConfig,
    history: &OrderLog,
) -> Result<(), Code> {
    let deny_if = |cond: bool, code: Code| if cond { Err(code) } else { Ok(()) };

    deny_if(state == TradingState::Halted, Code::Halted)?;
    deny_if(
        order.qty == 0 || !(order.price.is_finite() && order.price > 0.0),
        Code::InvalidOrder,
    )?;
    let (Some(now), Some(trusted)) = (market.now, market.trusted(&order.symbol)) else {
        return Err(Code::NoReferencePrice);
    };
    let adding = !reduces_exposure(order, portfolio);

    if adding {
        deny_if(state == TradingState::ReduceOnly, Code::ReduceOnly)?;
        if let Some(code) = feed.code() {
            return Err(code);
        }
        deny_if(
            portfolio.day_pnl() < -limits.daily_loss_limit,
            Code::DailyLossLimit,
        )?;
    }

    deny_if(
        !within_band(order.price, trusted, limits.price_band_pct),
        Code::PriceBand,
    )?;
    let duplicate = history
        .within(now, secs(limits.duplicate_window_secs))
        .any(|s| s.symbol == order.symbol && s.side == order.side && s.qty == order.qty);
    deny_if(duplicate, Code::DuplicateOrder)?;
    let recent = history.within(now, secs(limits.rate_window_secs)).count();
    deny_if(recent >= limits.max_orders as usize, Code::RateLimit)?;

    if adding {
        let qty = order.qty as f64;
        deny_if(
            qty * order.price > limits.max_order_notional,
            Code::MaxOrderNotional,
        )?;
        let held = portfolio.qty(&order.symbol);
        let shares = i64::try_from(order.qty).unwrap_or(i64::MAX);
        let after = held.saturating_add(order.side.sign() * shares);
        deny_if(after.unsigned_abs() > limits.max_position, Code::MaxPosition)?;
        // Value the symbol at the higher of the order's and the trusted
        // price, so the exposure after the fill (marked at the trusted
        // price) is never above what was checked.
        let others: f64 = portfolio
            .positions
            .iter()
            .filter(|(symbol, _)| **symbol != order.symbol)
            .map(|(_, p)| p.exposure())
            .sum();
        let gross = others + after.unsigned_abs() as f64 * order.price.max(trusted);
        deny_if(gross > limits.max_gross_exposure, Code::MaxGrossExposure)?;
    }
    Ok(())
}

/// A limit the book is already past, which no order caused: the state of
/// a checkpoint restored under a lower limit. The key names the setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// `risk.max_position`, `risk.max_gross_exposure` or `risk.daily_loss_limit`.
    pub key: &'static str,
    /// The symbol, for a per-symbol limit.
    pub symbol: Option<String>,
    /// Shares held, gross exposure, or the day's loss (positive).
    pub value: f64,
    pub limit: f64,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, value, limit) = (self.key, self.value, self.limit);
        match &self.symbol {
            Some(symbol) => write!(
                f,
                "{key}: {symbol} holds {value} shares, above the limit of {limit}"
            )?,
            None => write!(f, "{key}: {value:.2}, beyond the limit of {limit}")?,
        }
        f.write_str(if key == "risk.daily_loss_limit" {
            " (the kill switch trips at the next event)"
        } else {
            " (orders that add exposure are denied until it is back within)"
        })
    }
}

/// The limits `portfolio` is already past, in this order: `max_position`
/// per symbol (symbol order), `max_gross_exposure`, `daily_loss_limit`.
pub fn violations(portfolio: &Portfolio, limits: &RiskConfig) -> Vec<Violation> {
    let mut out: Vec<Violation> = portfolio
        .positions
        .iter()
        .filter(|(_, p)| p.qty.unsigned_abs() > limits.max_position)
        .map(|(symbol, p)| Violation {
            key: "risk.max_position",
            symbol: Some(symbol.clone()),
            value: p.qty.unsigned_abs() as f64,
            limit: limits.max_position as f64,
        })
        .collect();
    let gross = portfolio.gross_exposure();
    if gross > limits.max_gross_exposure {
        out.push(Violation {
            key: "risk.max_gross_exposure",
            symbol: None,
            value: gross,
            limit: limits.max_gross_exposure,
        });
    }
    let loss = -portfolio.day_pnl();
    if loss > limits.daily_loss_limit {
        out.push(Violation {
            key: "risk.daily_loss_limit",
            symbol: None,
            value: loss,
            limit: limits.daily_loss_limit,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Position;
    use crate::strategy::Reason;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_second(1_772_460_000 + s as i64).unwrap()
    }

    /// Everything `check` reads, set to "all is well": flat, X trusted at
    /// 100, now = t(1000), live feed, active, default limits, nothing sent.
    struct Case {
        order: Order,
        portfolio: Portfolio,
        market: Market,
        feed: FeedHealth,
        state: TradingState,
        limits: RiskConfig,
        history: OrderLog,
    }

    fn case(side: Side, qty: u64, price: f64) -> Case {
        let mut market = Market::default();
        market.advance(t(1000));
        market.on_tick("X", 100.0, 5.0, 3);
        market.on_tick("Y", 50.0, 5.0, 3);
        Case {
            order: Order {
                symbol: "X".into(),
                side,
                qty,
                price,
                reason: Reason::NewsMomentumLong,
                reduces_exposure: false,
            },
            portfolio: Portfolio::new(100_000.0),
            market,
            feed: FeedHealth::Live,
            state: TradingState::Active,
            limits: RiskConfig::default(),
            history: OrderLog::default(),
        }
    }

    impl Case {
        fn holding(mut self, symbol: &str, qty: i64, avg: f64, mark: f64) -> Case {
            self.portfolio.positions.insert(
                symbol.into(),
                Position {
                    qty,
                    avg_price: avg,
                    mark,
                    opened_at: t(0),
                },
            );
            self
        }

        fn sent(mut self, at: u64, side: Side, qty: u64) -> Case {
            self.history.sent.push_back(Sent {
                ts: t(at),
                symbol: "X".into(),
                side,
                qty,
            });
            self
        }

        fn check(&self) -> Verdict {
            check(
                &self.order,
                &self.portfolio,
                &self.market,
                self.feed,
                self.state,
                &self.limits,
                &self.history,
            )
        }
    }

    fn accepts(c: Case) {
        assert_eq!(c.check(), Verdict::Accept);
    }

    fn denies(c: Case, code: Code) {
        assert_eq!(c.check(), Verdict::Deny(code));
    }

    const BUY: Side = Side::Buy;
    const SELL: Side = Side::Sell;

    #[test]
    fn every_code_is_listed_once_with_its_serialized_name() {
        let names: std::collections::BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for c in Code::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn a_plain_order_is_accepted() {
        accepts(case(BUY, 10, 100.0));
        accepts(case(SELL, 10, 100.0));
    }

    #[test]
    fn reduces_exposure_is_worked_out_from_the_portfolio() {
        let p = |c: &Case| reduces_exposure(&c.order, &c.portfolio);
        assert!(!p(&case(SELL, 10, 100.0)));
        assert!(p(&case(SELL, 10, 100.0).holding("X", 10, 100.0, 100.0)));
        assert!(p(&case(SELL, 4, 100.0).holding("X", 10, 100.0, 100.0)));
        assert!(!p(&case(SELL, 11, 100.0).holding("X", 10, 100.0, 100.0)));
        assert!(!p(&case(BUY, 1, 100.0).holding("X", 10, 100.0, 100.0)));
        assert!(p(&case(BUY, 3, 100.0).holding("X", -3, 100.0, 100.0)));
        // Another symbol's position does not count.
        assert!(!p(&case(SELL, 1, 100.0).holding("Y", 10, 50.0, 50.0)));
        // The strategy's flag is not trusted either way.
        let mut c = case(SELL, 10, 100.0);
        c.order.reduces_exposure = true;
        c.state = TradingState::ReduceOnly;
        denies(c, Code::ReduceOnly);
    }

    #[test]
    fn halted_denies_everything() {
        let mut c = case(BUY, 10, 100.0);
        c.state = TradingState::Halted;
        denies(c, Code::Halted);
        let mut c = case(SELL, 10, 100.0).holding("X", 10, 100.0, 100.0);
        c.state = TradingState::Halted;
        denies(c, Code::Halted);
    }

    #[test]
    fn invalid_orders() {
        denies(case(BUY, 0, 100.0), Code::InvalidOrder);
        denies(case(BUY, 1, f64::NAN), Code::InvalidOrder);
        denies(case(BUY, 1, f64::INFINITY), Code::InvalidOrder);
        denies(case(BUY, 1, -100.0), Code::InvalidOrder);
        denies(case(BUY, 1, 0.0), Code::InvalidOrder);
    }

    #[test]
    fn no_reference_price() {
        let mut c = case(BUY, 1, 100.0);
        c.order.symbol = "Z".into();
        denies(c, Code::NoReferencePrice);
        let mut c = case(BUY, 1, 100.0);
        c.market.now = None;
        denies(c, Code::NoReferencePrice);
    }

    #[test]
    fn reduce_only_allows_only_reducing() {
        let mut c = case(BUY, 10, 100.0);
        c.state = TradingState::ReduceOnly;
        denies(c, Code::ReduceOnly);
        let mut c = case(SELL, 10, 100.0).holding("X", 10, 100.0, 100.0);
        c.state = TradingState::ReduceOnly;
        accepts(c);
        // Selling more than held opens a short: adding.
        let mut c = case(SELL, 11, 100.0).holding("X", 10, 100.0, 100.0);
        c.state = TradingState::ReduceOnly;
        denies(c, Code::ReduceOnly);
    }

    #[test]
    fn a_feed_not_live_denies_adding_but_not_reducing() {
        for (feed, code) in [
            (FeedHealth::Disconnected, Code::FeedDisconnected),
            (FeedHealth::Repairing, Code::FeedRepairing),
            (FeedHealth::Stale, Code::FeedStale),
            (FeedHealth::Degraded, Code::FeedDegraded),
        ] {
            let mut c = case(BUY, 10, 100.0);
            c.feed = feed;
            denies(c, code);
            let mut c = case(SELL, 10, 100.0).holding("X", 10, 100.0, 100.0);
            c.feed = feed;
            accepts(c);
        }
        assert_eq!(Code::FeedStale.to_string(), "feed_stale");
    }

    #[test]
    fn daily_loss_limit() {
        // 400 shares bought at 100, marked at 95: -2,000, not below the limit.
        accepts(case(BUY, 1, 100.0).holding("Y", 400, 100.0, 95.0));
        let c = case(BUY, 1, 100.0).holding("Y", 400, 100.0, 94.99);
        denies(c, Code::DailyLossLimit);
        // Realised losses count too, and only since the start of the day.
        let mut c = case(BUY, 1, 100.0);
        c.portfolio.realised_pnl = -2_500.0;
        denies(c, Code::DailyLossLimit);
        let mut c = case(BUY, 1, 100.0);
        c.portfolio.realised_pnl = -2_500.0;
        c.portfolio.day_start_pnl = -1_000.0;
        accepts(c);
        // Cutting the losing position is allowed.
        accepts(
            case(SELL, 400, 100.0)
                .holding("X", 400, 110.0, 100.0)
                .holding("Y", 400, 100.0, 90.0),
        );
    }

    #[test]
    fn price_band_against_the_last_trusted_price() {
        accepts(case(BUY, 1, 105.0));
        accepts(case(BUY, 1, 95.0));
        denies(case(BUY, 1, 105.01), Code::PriceBand);
        denies(case(BUY, 1, 94.99), Code::PriceBand);
        denies(case(BUY, 1, 1000.0), Code::PriceBand);
        // Applies to reducing orders too: a stop loss on a bad print waits.
        denies(
            case(SELL, 10, 10.0).holding("X", 10, 100.0, 100.0),
            Code::PriceBand,
        );
        // The reference is the trusted price, not the last one.
        let mut c = case(BUY, 1, 1000.0);
        assert!(!c.market.on_tick("X", 1000.0, 5.0, 3));
        denies(c, Code::PriceBand);
    }

    #[test]
    fn duplicate_order_guard() {
        denies(case(BUY, 10, 100.0).sent(996, BUY, 10), Code::DuplicateOrder);
        denies(case(BUY, 10, 100.0).sent(1000, BUY, 10), Code::DuplicateOrder);
        accepts(case(BUY, 10, 100.0).sent(995, BUY, 10));
        accepts(case(BUY, 10, 100.0).sent(999, BUY, 11));
        accepts(case(BUY, 10, 100.0).sent(999, SELL, 10));
        let mut c = case(BUY, 10, 100.0).sent(999, BUY, 10);
        c.history.sent[0].symbol = "Y".into();
        accepts(c);
        let mut c = case(BUY, 10, 100.0).sent(999, BUY, 10);
        c.limits.duplicate_window_secs = 0;
        accepts(c);
    }

    #[test]
    fn order_rate_limit_over_a_rolling_window() {
        let mut full = case(BUY, 10, 100.0);
        for i in 0..10 {
            full = full.sent(950 + i, SELL, i + 1);
        }
        denies(full, Code::RateLimit);
        let mut nine = case(BUY, 10, 100.0);
        for i in 0..9 {
            nine = nine.sent(950 + i, SELL, i + 1);
        }
        accepts(nine);
        // The oldest is 60 s old: out of the window.
        let mut rolled = case(BUY, 10, 100.0).sent(940, SELL, 99);
        for i in 0..9 {
            rolled = rolled.sent(950 + i, SELL, i + 1);
        }
        accepts(rolled);
        // Applies to reducing orders too (a runaway loop).
        let mut c = case(SELL, 1, 100.0).holding("X", 10, 100.0, 100.0);
        for i in 0..10 {
            c = c.sent(950 + i, BUY, i + 100);
        }
        denies(c, Code::RateLimit);
    }

    #[test]
    fn max_order_notional() {
        accepts(case(BUY, 250, 100.0));
        denies(case(BUY, 251, 100.0), Code::MaxOrderNotional);
        // Closing a position bigger than one order's notional is allowed.
        let mut c = case(SELL, 400, 100.0).holding("X", 400, 100.0, 100.0);
        c.limits.max_order_notional = 1_000.0;
        accepts(c);
    }

    #[test]
    fn max_position_per_symbol() {
        let mut c = case(BUY, 50, 100.0).holding("X", 450, 100.0, 100.0);
        c.limits.max_gross_exposure = 1e9;
        accepts(c);
        let mut c = case(BUY, 51, 100.0).holding("X", 450, 100.0, 100.0);
        c.limits.max_gross_exposure = 1e9;
        denies(c, Code::MaxPosition);
        // Flipping through zero is judged on the position it leaves.
        let mut c = case(SELL, 601, 10.0).holding("X", 100, 10.0, 10.0);
        c.market.quotes.get_mut("X").unwrap().trusted = 10.0;
        denies(c, Code::MaxPosition);
        // Over the limit already (limit lowered): reducing is still allowed.
        let mut c = case(SELL, 10, 100.0).holding("X", 450, 100.0, 100.0);
        c.limits.max_position = 100;
        accepts(c);
    }

    #[test]
    fn max_gross_exposure() {
        // 40,000 in Y plus 100 x 100 = 50,000: at the limit.
        accepts(case(BUY, 100, 100.0).holding("Y", 800, 50.0, 50.0));
        denies(
            case(BUY, 101, 100.0).holding("Y", 800, 50.0, 50.0),
            Code::MaxGrossExposure,
        );
        // Shorts count by absolute value.
        denies(
            case(SELL, 101, 100.0).holding("Y", -800, 50.0, 50.0),
            Code::MaxGrossExposure,
        );
        // Valued at the higher of order and trusted price.
        accepts(case(BUY, 101, 99.0).holding("Y", 700, 50.0, 50.0));
        denies(
            case(BUY, 101, 99.0).holding("Y", 800, 50.0, 50.0),
            Code::MaxGrossExposure,
        );
        // Over the limit already: reducing is still allowed.
        accepts(
            case(SELL, 10, 100.0)
                .holding("X", 300, 100.0, 100.0)
                .holding("Y", 800, 50.0, 50.0),
        );
    }

    #[test]
    fn order_log_forgets_what_no_window_sees() {
        let limits = RiskConfig::default();
        let c = case(BUY, 1, 100.0);
        let mut log = OrderLog::default();
        for i in 0..100 {
            log.record(t(i * 10), &c.order, &limits);
        }
        assert_eq!(log.sent.len(), 6);
    }

    #[test]
    fn trading_state_names_are_the_serialized_ones() {
        for state in TradingState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(TradingState::ReduceOnly.to_string(), "reduce_only");
    }

    /// A book checked against limits: the violations, as their messages.
    fn check_violations(edit: impl FnOnce(&mut RiskConfig), c: Case, expect: &[&str]) {
        let mut limits = RiskConfig::default();
        edit(&mut limits);
        let got: Vec<String> = violations(&c.portfolio, &limits)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn violations_name_the_key_the_symbol_the_value_and_the_limit() {
        let book = || {
            case(BUY, 1, 100.0)
                .holding("X", 300, 100.0, 100.0)
                .holding("Y", -200, 50.0, 60.0)
        };
        check_violations(|_| {}, book(), &[]);
        check_violations(
            |l| l.max_position = 200,
            book(),
            &["risk.max_position: X holds 300 shares, above the limit of 200 \
               (orders that add exposure are denied until it is back within)"],
        );
        check_violations(
            |l| l.max_position = 100,
            book(),
            &[
                "risk.max_position: X holds 300 shares, above the limit of 100 \
                 (orders that add exposure are denied until it is back within)",
                "risk.max_position: Y holds 200 shares, above the limit of 100 \
                 (orders that add exposure are denied until it is back within)",
            ],
        );
        // 30,000 + 12,000.
        check_violations(
            |l| l.max_gross_exposure = 40_000.0,
            book(),
            &["risk.max_gross_exposure: 42000.00, beyond the limit of 40000 \
               (orders that add exposure are denied until it is back within)"],
        );
        check_violations(|l| l.max_gross_exposure = 42_000.0, book(), &[]);
        // Y short 200 from 50, marked at 60: -2,000 for the day.
        check_violations(
            |l| l.daily_loss_limit = 1_500.0,
            book(),
            &["risk.daily_loss_limit: 2000.00, beyond the limit of 1500 \
               (the kill switch trips at the next event)"],
        );
        check_violations(|l| l.daily_loss_limit = 2_000.0, book(), &[]);
    }
}
