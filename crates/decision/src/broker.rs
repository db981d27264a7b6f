//! The paper broker: fills accepted orders against a simulated account and
//! keeps the portfolio (positions, cash, realised and unrealised P&L).
//!
//! It has no way to send a real order: it talks to no venue, opens no
//! connection and holds no credentials. A fill is arithmetic on this struct.
//!
//! Fills are immediate and complete, at the order's price moved against the
//! trader by `slippage_bps` (buys pay up, sells receive less). Positions are
//! signed (short is negative) and marked to the last trusted price.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::strategy::{Order, Side};

/// The simulated account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    pub cash: f64,
    /// Open positions; a position closed to zero is removed.
    pub positions: BTreeMap<String, Position>,
    /// P&L of closed quantity, after slippage.
    pub realised_pnl: f64,
    /// Total P&L at the start of the current UTC day: the daily loss limit
    /// counts from here.
    pub day_start_pnl: f64,
    /// The current UTC day, as days since the Unix epoch.
    pub day: Option<i64>,
}

/// One symbol's open position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Shares; negative when short. Never 0 (a flat position is removed).
    pub qty: i64,
    /// Average entry price, slippage included.
    pub avg_price: f64,
    /// The last trusted price: the mark for unrealised P&L and exposure.
    pub mark: f64,
    /// Event time of the fill that opened it (from flat, or flipping side).
    pub opened_at: Timestamp,
}

/// What a fill did.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// The price paid or received, slippage included.
    pub price: f64,
    /// P&L realised by this fill.
    pub realised: f64,
}

impl Position {
    pub fn unrealised_pnl(&self) -> f64 {
        self.qty as f64 * (self.mark - self.avg_price)
    }

    pub fn exposure(&self) -> f64 {
        self.qty.unsigned_abs() as f64 * self.mark
    }
}

impl Portfolio {
    pub fn new(starting_cash: f64) -> Portfolio {
        Portfolio {
            cash: starting_cash,
            positions: BTreeMap::new(),
            realised_pnl: 0.0,
            day_start_pnl: 0.0,
            day: None,
        }
    }

    /// Signed shares held in `symbol` (0 when flat).
    pub fn qty(&self, symbol: &str) -> i64 {
        self.positions.get(symbol).map_or(0, |p| p.qty)
    }

    pub fn unrealised_pnl(&self) -> f64 {
        // A fold from +0.0: an empty sum of f64 is -0.0, which prints as such.
        self.positions
            .values()
            .fold(0.0, |sum, p| sum + p.unrealised_pnl())
    }

    /// Realised plus unrealised P&L since the start.
    pub fn total_pnl(&self) -> f64 {
        self.realised_pnl + self.unrealised_pnl()
    }

    /// P&L since the start of the current UTC day.
    pub fn day_pnl(&self) -> f64 {
        self.total_pnl() - self.day_start_pnl
    }

    /// Sum of |position| x mark.
    pub fn gross_exposure(&self) -> f64 {
        self.positions.values().fold(0.0, |sum, p| sum + p.exposure())
    }

    /// Marks a symbol's position to a trusted price.
    pub fn mark(&mut self, symbol: &str, price: f64) {
        if let Some(p) = self.positions.get_mut(symbol) {
            p.mark = price;
        }
    }

    /// Starts a new UTC day when `now` is on a later one than the last seen.
    pub fn roll_day(&mut self, now: Timestamp) {
        let day = now.as_second().div_euclid(86_400);
        if self.day.is_none_or(|d| day > d) {
            self.day = Some(day);
            self.day_start_pnl = self.total_pnl();
        }
    }
}

/// The price an order fills at: `slippage_bps` against the trader.
pub fn fill_price(side: Side, price: f64, slippage_bps: f64) -> f64 {
    let slip = slippage_bps / 10_000.0;
    match side {
        Side::Buy => price * (1.0 + slip),
        Side::Sell => price * (1.0 - slip),
    }
}

/// Fills an order in full at `now`. The new or changed position is marked
/// at the fill price; the engine marks it to the trusted price right after.
pub fn fill(portfolio: &mut Portfolio, order: &Order, slippage_bps: f64, now: Timestamp) -> Fill {
    let price = fill_price(order.side, order.price, slippage_bps);
    let delta = order.side.sign() * order.qty as i64;
    portfolio.cash -= delta as f64 * price;

    let old = portfolio.positions.remove(&order.symbol);
    let (old_qty, avg, opened_at) = old
        .as_ref()
        .map_or((0, price, now), |p| (p.qty, p.avg_price, p.opened_at));
    let new_qty = old_qty + delta;

    let mut realised = 0.0;
    let (avg, opened_at) = if old_qty == 0 || old_qty.signum() == delta.signum() {
        // Opening or adding: average the entry price.
        let held = old_qty.unsigned_abs() as f64;
        let added = order.qty as f64;
        let avg = (held * avg + added * price) / (held + added);
        (avg, if old_qty == 0 { now } else { opened_at })
    } else {
        // Reducing, closing or flipping: realise the closed part.
        let closed = old_qty.unsigned_abs().min(order.qty) as f64;
        realised = closed * (price - avg) * old_qty.signum() as f64;
        if new_qty.signum() == old_qty.signum() {
            (avg, opened_at)
        } else {
            (price, now)
        }
    };
    portfolio.realised_pnl += realised;
    if new_qty != 0 {
        let mark = old.map_or(price, |p| p.mark);
        portfolio.positions.insert(
            order.symbol.clone(),
            Position {
                qty: new_qty,
                avg_price: avg,
                mark,
                opened_at,
            },
        );
    }
    Fill { price, realised }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Reason;

    fn order(side: Side, qty: u64, price: f64) -> Order {
        Order {
            symbol: "X".into(),
            side,
            qty,
            price,
            reason: Reason::NewsMomentumLong,
            reduces_exposure: false,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn slippage_goes_against_the_trader() {
        assert_eq!(fill_price(Side::Buy, 100.0, 10.0), 100.0 * 1.001);
        assert_eq!(fill_price(Side::Sell, 100.0, 10.0), 100.0 * 0.999);
    }

    #[test]
    fn round_trip_long_realises_the_difference_less_slippage() {
        let now = t("2026-03-02T15:00:00Z");
        let mut p = Portfolio::new(10_000.0);
        fill(&mut p, &order(Side::Buy, 10, 100.0), 0.0, now);
        assert_eq!(p.qty("X"), 10);
        assert_eq!(p.cash, 9_000.0);
        p.mark("X", 103.0);
        assert_eq!(p.unrealised_pnl(), 30.0);
        assert_eq!(p.gross_exposure(), 1_030.0);
        let f = fill(&mut p, &order(Side::Sell, 4, 105.0), 0.0, now);
        assert_eq!(f.realised, 20.0);
        assert_eq!(p.qty("X"), 6);
        fill(&mut p, &order(Side::Sell, 6, 110.0), 0.0, now);
        assert!(p.positions.is_empty());
        assert_eq!(p.realised_pnl, 80.0);
        assert_eq!(p.cash, 10_080.0);

        let mut q = Portfolio::new(0.0);
        fill(&mut q, &order(Side::Buy, 10, 100.0), 50.0, now);
        fill(&mut q, &order(Side::Sell, 10, 100.0), 50.0, now);
        assert!((q.realised_pnl - -10.0).abs() < 1e-9, "{}", q.realised_pnl);
    }

    #[test]
    fn shorts_and_flips() {
        let t0 = t("2026-03-02T15:00:00Z");
        let t1 = t("2026-03-02T15:10:00Z");
        let mut p = Portfolio::new(0.0);
        fill(&mut p, &order(Side::Sell, 10, 200.0), 0.0, t0);
        assert_eq!(p.qty("X"), -10);
        assert_eq!(p.cash, 2_000.0);
        p.mark("X", 190.0);
        assert_eq!(p.unrealised_pnl(), 100.0);
        // Buy 15: closes 10 (+100 realised) and opens 5 long at 190, opened now.
        fill(&mut p, &order(Side::Buy, 15, 190.0), 0.0, t1);
        assert_eq!(p.realised_pnl, 100.0);
        let pos = &p.positions["X"];
        assert_eq!((pos.qty, pos.avg_price, pos.opened_at), (5, 190.0, t1));
        // Cash plus holdings at the mark is the starting cash plus total P&L.
        p.mark("X", 195.0);
        let equity = p.cash + 5.0 * 195.0;
        assert_eq!(equity, p.total_pnl());
    }

    #[test]
    fn the_day_rolls_at_utc_midnight() {
        let mut p = Portfolio::new(0.0);
        p.roll_day(t("2026-03-02T15:00:00Z"));
        fill(
            &mut p,
            &order(Side::Buy, 10, 100.0),
            0.0,
            t("2026-03-02T15:00:00Z"),
        );
        fill(
            &mut p,
            &order(Side::Sell, 10, 90.0),
            0.0,
            t("2026-03-02T15:01:00Z"),
        );
        assert_eq!(p.day_pnl(), -100.0);
        p.roll_day(t("2026-03-02T23:59:59Z"));
        assert_eq!(p.day_pnl(), -100.0);
        p.roll_day(t("2026-03-03T00:00:00Z"));
        assert_eq!(p.day_pnl(), 0.0);
        assert_eq!(p.total_pnl(), -100.0);
    }
}
