//! The engine's market view: "now" in event time, and per symbol the last
//! price seen and the last *trusted* price, the reference of the price band.
//!
//! A tick is trusted when it lies within the band of the previous trusted
//! price (the first tick of a symbol is trusted). A tick outside the band is
//! suspect and does not move the reference, so a fat-finger print (x10, /10)
//! cannot become the price that orders and marks are checked against. A real
//! move that stays outside the band is accepted once `band_confirm_ticks`
//! consecutive suspect ticks agree with each other (each within the band of
//! the first of them); without that, one genuine gap would freeze a symbol
//! for the rest of the day.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What the engine knows of the market. Read by `risk::check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Market {
    /// The latest event time seen. Timestamps may go backwards; "now" never does.
    pub now: Option<Timestamp>,
    pub quotes: BTreeMap<String, Quote>,
}

/// One symbol's prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The last tick's price, trusted or not.
    pub last: f64,
    /// The last trusted price: the price band's reference and the mark.
    pub trusted: f64,
    /// The run of consecutive suspect ticks, if the last tick was one.
    pub suspect: Option<Suspect>,
}

/// Consecutive ticks outside the band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    /// The first suspect tick's price; later ones must lie within its band.
    pub first: f64,
    pub count: u32,
}

/// Whether `price` lies within `band_pct` percent of `reference`.
pub fn within_band(price: f64, reference: f64, band_pct: f64) -> bool {
    (price - reference).abs() <= reference * band_pct / 100.0
}

impl Market {
    /// Moves "now" forward to `ts` if it is later; returns "now".
    pub fn advance(&mut self, ts: Timestamp) -> Timestamp {
        let now = self.now.map_or(ts, |now| now.max(ts));
        self.now = Some(now);
        now
    }

    /// Takes a tick's price; returns whether it is trusted.
    pub fn on_tick(&mut self, symbol: &str, price: f64, band_pct: f64, confirm_ticks: u32) -> bool {
        let Some(quote) = self.quotes.get_mut(symbol) else {
            self.quotes.insert(
                symbol.to_owned(),
                Quote {
                    last: price,
                    trusted: price,
                    suspect: None,
                },
            );
            return true;
        };
        quote.last = price;
        if within_band(price, quote.trusted, band_pct) {
            quote.trusted = price;
            quote.suspect = None;
            return true;
        }
        let suspect = match quote.suspect.take() {
            Some(s) if within_band(price, s.first, band_pct) => Suspect {
                first: s.first,
                count: s.count + 1,
            },
            _ => Suspect {
                first: price,
                count: 1,
            },
        };
        if confirm_ticks > 0 && suspect.count >= confirm_ticks {
            quote.trusted = price;
            true
        } else {
            quote.suspect = Some(suspect);
            false
        }
    }

    /// The last trusted price of a symbol.
    pub fn trusted(&self, symbol: &str) -> Option<f64> {
        self.quotes.get(symbol).map(|q| q.trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds prices for one symbol; returns which were trusted and the final reference.
    fn run(prices: &[f64], confirm: u32) -> (Vec<bool>, f64) {
        let mut m = Market::default();
        let trusted = prices.iter().map(|&p| m.on_tick("X", p, 5.0, confirm)).collect();
        (trusted, m.trusted("X").unwrap())
    }

    #[test]
    fn first_tick_is_trusted_and_moves_within_band_follow() {
        assert_eq!(run(&[100.0, 104.0, 108.0], 3), (vec![true, true, true], 108.0));
    }

    #[test]
    fn isolated_bad_ticks_never_become_the_reference() {
        let (t, r) = run(&[412.5, 4126.1, 412.8, 41.28, 412.95], 3);
        assert_eq!(t, vec![true, false, true, false, true]);
        assert_eq!(r, 412.95);
    }

    #[test]
    fn a_lasting_move_is_confirmed_after_n_ticks() {
        let (t, r) = run(&[876.21, 929.52, 930.07, 929.33, 928.78], 3);
        assert_eq!(t, vec![true, false, false, true, true]);
        assert_eq!(r, 928.78);
        // Suspect ticks that disagree with each other restart the count.
        let (t, _) = run(&[100.0, 200.0, 50.0, 200.0, 200.0], 3);
        assert_eq!(t, vec![true, false, false, false, false]);
        // 0 never re-anchors.
        let (t, r) = run(&[100.0, 200.0, 200.0, 200.0, 200.0], 0);
        assert_eq!(t, vec![true, false, false, false, false]);
        assert_eq!(r, 100.0);
    }

    #[test]
    fn now_never_goes_backwards() {
        let mut m = Market::default();
        let t1: Timestamp = "2026-03-02T14:30:03Z".parse().unwrap();
        let t0: Timestamp = "2026-03-02T14:30:01Z".parse().unwrap();
        assert_eq!(m.advance(t1), t1);
        assert_eq!(m.advance(t0), t1);
    }
}
