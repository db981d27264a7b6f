//! The trading rules: news sentiment confirmed by price momentum. The
//! strategy proposes orders; it does not check risk (`risk::check` does).
//!
//! Per symbol it keeps the latest news score and a short history of trusted
//! prices. On each tick of a symbol, at most one order:
//!
//! - Flat: open **long** when the latest news score is >= `news_threshold`,
//!   that news is at most `news_window_secs` old, and momentum (the tick's
//!   price against the trusted price `momentum_secs` earlier) is >=
//!   `min_momentum_pct`. Open **short** symmetrically on score <=
//!   -threshold and momentum <= -min, if `allow_shorts`. Quantity:
//!   `target_notional / price`, rounded down to whole shares (no order if 0).
//! - Holding: close the whole position, checking in this order, on a
//!   **stop loss** (price `stop_loss_pct` against the entry), a **take
//!   profit** (`take_profit_pct` in favour), a **reversal** (the opening
//!   signal of the other side) or the **max hold** time.
//!
//! All times are event times; "now" is the latest seen. The strategy acts on
//! every tick's price, trusted or not: the price band in risk is the one
//! guard against bad ticks, so a bad tick shows up as a denied order. Only
//! trusted prices enter the momentum history, so a bad tick cannot become
//! the reference of a later, genuine-looking signal.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::broker::Position;
use crate::config::StrategyConfig;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for a buy, -1 for a sell.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Why the strategy wants an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NewsMomentumLong,
    NewsMomentumShort,
    StopLoss,
    TakeProfit,
    Reversal,
    MaxHold,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NewsMomentumLong => "news_momentum_long",
            Reason::NewsMomentumShort => "news_momentum_short",
            Reason::StopLoss => "stop_loss",
            Reason::TakeProfit => "take_profit",
            Reason::Reversal => "reversal",
            Reason::MaxHold => "max_hold",
        }
    }
}

/// A proposed order, limit-priced at the tick's last price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub symbol: String,
    pub side: Side,
    /// Shares, at least 1.
    pub qty: u64,
    pub price: f64,
    pub reason: Reason,
    /// The strategy's intent (closing orders). `risk::check` works it out
    /// again from the portfolio and never relies on this flag.
    pub reduces_exposure: bool,
}

/// The strategy's memory, per symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    pub symbols: BTreeMap<String, SymbolState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolState {
    /// The latest news item by timestamp: (time, score).
    pub news: Option<(Timestamp, f64)>,
    /// Trusted prices by event time ("now" when they arrived), oldest first;
    /// kept back to the newest one at least `momentum_secs` old.
    pub prices: VecDeque<(Timestamp, f64)>,
}

fn secs(s: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX))
}

impl Strategy {
    /// Takes a news item: it replaces the symbol's news unless older.
    pub fn on_news(&mut self, symbol: &str, score: f64, ts: Timestamp) {
        let state = self.symbols.entry(symbol.to_owned()).or_default();
        if state.news.is_none_or(|(t, _)| ts >= t) {
            state.news = Some((ts, score));
        }
    }

    /// Takes a tick (its price, whether the market trusted it, and "now")
    /// and the symbol's open position; proposes at most one order.
    pub fn on_tick(
        &mut self,
        cfg: &StrategyConfig,
        symbol: &str,
        price: f64,
        trusted: bool,
        now: Timestamp,
        position: Option<&Position>,
    ) -> Option<Order> {
        let state = self.symbols.entry(symbol.to_owned()).or_default();
        let horizon = now.checked_sub(secs(cfg.momentum_secs)).unwrap_or(Timestamp::MIN);
        if trusted {
            state.prices.push_back((now, price));
        }
        while state.prices.len() >= 2 && state.prices[1].0 <= horizon {
            state.prices.pop_front();
        }
        let momentum = match state.prices.front() {
            Some(&(t, reference)) if t <= horizon => Some(price / reference - 1.0),
            _ => None,
        };
        let fresh_news = state
            .news
            .filter(|&(t, _)| now.duration_since(t) <= secs(cfg.news_window_secs));
        let signal = match (fresh_news, momentum) {
            (Some((_, score)), Some(m)) => {
                let min = cfg.min_momentum_pct / 100.0;
                if score >= cfg.news_threshold && m >= min {
                    Some(Side::Buy)
                } else if cfg.allow_shorts && score <= -cfg.news_threshold && m <= -min {
                    Some(Side::Sell)
                } else {
                    None
                }
            }
            _ => None,
        };

        let order = |side, qty, reason| Order {
            symbol: symbol.to_owned(),
            side,
            qty,
            price,
            reason,
            reduces_exposure: reason != Reason::NewsMomentumLong && reason != Reason::NewsMomentumShort,
        };
        match position {
            None => {
                let side = signal?;
                let qty = (cfg.target_notional / price).floor();
                if qty < 1.0 {
                    return None;
                }
                let reason = match side {
                    Side::Buy => Reason::NewsMomentumLong,
                    Side::Sell => Reason::NewsMomentumShort,
                };
                Some(order(side, qty as u64, reason))
            }
            Some(pos) => {
                let (close, held) = if pos.qty > 0 {
                    (Side::Sell, Side::Buy)
                } else {
                    (Side::Buy, Side::Sell)
                };
                // Return on the entry, positive when in favour.
                let ret = (price / pos.avg_price - 1.0) * held.sign() as f64;
                let reason = if ret <= -cfg.stop_loss_pct / 100.0 {
                    Reason::StopLoss
                } else if ret >= cfg.take_profit_pct / 100.0 {
                    Reason::TakeProfit
                } else if signal == Some(close) {
                    Reason::Reversal
                } else if now.duration_since(pos.opened_at) >= secs(cfg.max_hold_secs) {
                    Reason::MaxHold
                } else {
                    return None;
                };
                Some(order(close, pos.qty.unsigned_abs(), reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_second(1_772_460_000 + s as i64).unwrap()
    }

    fn position(qty: i64, avg: f64, opened: u64) -> Position {
        Position {
            qty,
            avg_price: avg,
            mark: avg,
            opened_at: t(opened),
        }
    }

    /// A strategy with a trusted price of 100 at t=0.
    fn primed(symbol: &str) -> Strategy {
        let mut s = Strategy::default();
        assert_eq!(
            s.on_tick(&StrategyConfig::default(), symbol, 100.0, true, t(0), None),
            None
        );
        s
    }

    fn tick(s: &mut Strategy, price: f64, at: u64, pos: Option<&Position>) -> Option<(Side, u64, Reason)> {
        s.on_tick(&StrategyConfig::default(), "X", price, true, t(at), pos)
            .map(|o| (o.side, o.qty, o.reason))
    }

    #[test]
    fn positive_news_and_momentum_open_a_long() {
        let mut s = primed("X");
        // Momentum without news: nothing.
        assert_eq!(tick(&mut s, 101.0, 60, None), None);
        s.on_news("X", 0.8, t(61));
        assert_eq!(
            tick(&mut s, 101.0, 62, None),
            Some((Side::Buy, 99, Reason::NewsMomentumLong))
        );
        // News too weak, or too old: nothing.
        let mut s = primed("X");
        s.on_news("X", 0.5, t(61));
        assert_eq!(tick(&mut s, 101.0, 62, None), None);
        let mut s = primed("X");
        s.on_news("X", 0.9, t(1));
        assert_eq!(tick(&mut s, 101.0, 302, None), None);
    }

    #[test]
    fn momentum_needs_a_reference_old_enough() {
        let mut s = primed("X");
        s.on_news("X", 0.9, t(10));
        // 30 s after the only trusted price: no reference yet.
        assert_eq!(tick(&mut s, 110.0, 30, None), None);
        // Small momentum against the 60 s reference: nothing.
        assert_eq!(tick(&mut s, 100.05, 61, None), None);
        assert_eq!(
            tick(&mut s, 100.2, 62, None).map(|o| o.2),
            Some(Reason::NewsMomentumLong)
        );
    }

    #[test]
    fn negative_news_opens_a_short_unless_shorts_are_off() {
        let mut s = primed("X");
        s.on_news("X", -0.7, t(50));
        assert_eq!(
            tick(&mut s, 99.0, 61, None),
            Some((Side::Sell, 101, Reason::NewsMomentumShort))
        );
        let cfg = StrategyConfig {
            allow_shorts: false,
            ..StrategyConfig::default()
        };
        assert_eq!(s.on_tick(&cfg, "X", 99.0, true, t(62), None), None);
    }

    #[test]
    fn untrusted_prices_do_not_enter_the_history() {
        let cfg = StrategyConfig::default();
        let mut s = primed("X");
        assert_eq!(s.on_tick(&cfg, "X", 10.0, false, t(1), None), None);
        s.on_news("X", 0.9, t(60));
        // The reference is still 100, not the bad 10.
        let o = s.on_tick(&cfg, "X", 100.5, true, t(62), None).unwrap();
        assert_eq!(o.reason, Reason::NewsMomentumLong);
        // But an untrusted tick is still acted on: risk's price band denies it.
        let mut s = primed("X");
        s.on_news("X", 0.9, t(60));
        let o = s.on_tick(&cfg, "X", 1000.0, false, t(62), None).unwrap();
        assert_eq!((o.price, o.qty), (1000.0, 10));
    }

    #[test]
    fn closing_rules() {
        let long = position(10, 100.0, 0);
        let mut s = primed("X");
        assert_eq!(tick(&mut s, 99.0, 10, Some(&long)), None);
        assert_eq!(
            tick(&mut s, 98.0, 11, Some(&long)),
            Some((Side::Sell, 10, Reason::StopLoss))
        );
        assert_eq!(
            tick(&mut s, 104.0, 12, Some(&long)),
            Some((Side::Sell, 10, Reason::TakeProfit))
        );
        assert_eq!(
            tick(&mut s, 100.0, 1800, Some(&long)),
            Some((Side::Sell, 10, Reason::MaxHold))
        );

        let short = position(-7, 100.0, 0);
        let mut s = primed("X");
        assert_eq!(
            tick(&mut s, 102.0, 11, Some(&short)),
            Some((Side::Buy, 7, Reason::StopLoss))
        );
        assert_eq!(
            tick(&mut s, 96.0, 12, Some(&short)),
            Some((Side::Buy, 7, Reason::TakeProfit))
        );
        assert_eq!(tick(&mut s, 101.0, 13, Some(&short)), None);

        // Reversal: a short signal while long.
        let mut s = primed("X");
        s.on_news("X", -0.9, t(60));
        assert_eq!(
            tick(&mut s, 99.5, 61, Some(&long)),
            Some((Side::Sell, 10, Reason::Reversal))
        );
    }

    #[test]
    fn older_news_does_not_replace_newer() {
        let mut s = Strategy::default();
        s.on_news("X", 0.9, t(10));
        s.on_news("X", -0.9, t(5));
        assert_eq!(s.symbols["X"].news, Some((t(10), 0.9)));
    }

    #[test]
    fn the_price_history_stays_short() {
        let mut s = Strategy::default();
        let cfg = StrategyConfig::default();
        for i in 0..1000 {
            s.on_tick(&cfg, "X", 100.0, true, t(i), None);
        }
        assert!(
            s.symbols["X"].prices.len() <= 62,
            "{}",
            s.symbols["X"].prices.len()
        );
    }
}
