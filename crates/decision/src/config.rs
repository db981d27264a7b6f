//! The engine's settings: strategy, risk limits and paper broker. Every key
//! has a documented default; an unknown key is a deserialization error, and
//! [`Config::validate`] names the key at fault (`risk.max_position: must be > 0`).

use serde::{Deserialize, Serialize};

/// A setting that makes no sense: the key (`section.name`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

/// All the engine's settings, one section each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub strategy: StrategyConfig,
    pub risk: RiskConfig,
    pub broker: BrokerConfig,
}

/// The news-and-momentum rule set (see `strategy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    /// Momentum compares the last price with the trusted price this many
    /// seconds earlier, in event time. Default 60.
    pub momentum_secs: u64,
    /// Smallest momentum, in percent, that confirms a news signal. Default 0.1.
    pub min_momentum_pct: f64,
    /// A news score at or beyond +threshold (long) or -threshold (short) is a
    /// signal. Default 0.6.
    pub news_threshold: f64,
    /// A news signal is acted on for this many seconds after its timestamp.
    /// Default 300.
    pub news_window_secs: u64,
    /// Open short positions on negative news. Default true.
    pub allow_shorts: bool,
    /// Close when the price moves this many percent against the entry price.
    /// Default 2.
    pub stop_loss_pct: f64,
    /// Close when the price moves this many percent in favour of the entry
    /// price. Default 4.
    pub take_profit_pct: f64,
    /// Close a position held this many seconds. Default 1800 (30 minutes).
    pub max_hold_secs: u64,
    /// Notional of an opening order; the quantity is this divided by the
    /// price, rounded down to whole shares. Default 10,000.
    pub target_notional: f64,
    /// The symbols traded; empty (the default) trades every one. The
    /// engine passes over events of other symbols as if they were not
    /// there (they do not even move its clock), so its decisions are the
    /// same whether the wire filtered them out or not; the `decision`
    /// binary subscribes the wire to these (at most 1,024).
    pub symbols: std::collections::BTreeSet<String>,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            momentum_secs: 60,
            min_momentum_pct: 0.1,
            news_threshold: 0.6,
            news_window_secs: 300,
            allow_shorts: true,
            stop_loss_pct: 2.0,
            take_profit_pct: 4.0,
            max_hold_secs: 1800,
            target_notional: 10_000.0,
            symbols: Default::default(),
        }
    }
}

/// Pre-trade risk limits (see `risk::check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Largest absolute position per symbol, in shares. Default 500.
    pub max_position: u64,
    /// Largest notional (qty x price) of one order. Default 25,000.
    pub max_order_notional: f64,
    /// Largest gross exposure (sum of |position| x price) after an order.
    /// Default 50,000.
    pub max_gross_exposure: f64,
    /// At most this many orders are sent ...
    /// Default 10.
    pub max_orders: u32,
    /// ... in any window of this many seconds of event time. Default 60.
    pub rate_window_secs: u64,
    /// When the day's P&L (realised + unrealised) falls below minus this,
    /// the kill switch halts trading. Default 2,000.
    pub daily_loss_limit: f64,
    /// An order priced more than this many percent away from the last
    /// trusted price is denied, and a tick that far away is not trusted.
    /// Default 5.
    pub price_band_pct: f64,
    /// This many consecutive ticks outside the band, all within the band of
    /// the first of them, are a real move: the last becomes the trusted
    /// price. 0 never re-anchors. Default 3.
    pub band_confirm_ticks: u32,
    /// The same symbol, side and quantity sent again within this many seconds
    /// is a duplicate. 0 turns the guard off. Default 5.
    pub duplicate_window_secs: u64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_position: 500,
            max_order_notional: 25_000.0,
            max_gross_exposure: 50_000.0,
            max_orders: 10,
            rate_window_secs: 60,
            daily_loss_limit: 2_000.0,
            price_band_pct: 5.0,
            band_confirm_ticks: 3,
            duplicate_window_secs: 5,
        }
    }
}

/// The paper broker (see `broker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Slippage in basis points: buys fill this much above the order price,
    /// sells this much below. Default 5.
    pub slippage_bps: f64,
    /// Cash at the start. Default 100,000.
    pub starting_cash: f64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            slippage_bps: 5.0,
            starting_cash: 100_000.0,
        }
    }
}

fn fail(key: &str, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError {
        key: key.to_owned(),
        reason: reason.to_owned(),
    })
}

fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        fail(key, "must be > 0")
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        fail(key, "must be >= 0")
    }
}

fn nonzero(key: &str, v: u64) -> Result<(), ConfigError> {
    if v > 0 { Ok(()) } else { fail(key, "must be > 0") }
}

impl Config {
    /// Checks every section; the first error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.strategy.validate()?;
        self.risk.validate()?;
        self.broker.validate()
    }
}

impl StrategyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("strategy.momentum_secs", self.momentum_secs)?;
        non_negative("strategy.min_momentum_pct", self.min_momentum_pct)?;
        if !(self.news_threshold > 0.0 && self.news_threshold <= 1.0) {
            fail("strategy.news_threshold", "must be within (0, 1]")?;
        }
        nonzero("strategy.news_window_secs", self.news_window_secs)?;
        positive("strategy.stop_loss_pct", self.stop_loss_pct)?;
        if self.stop_loss_pct >= 100.0 {
            fail("strategy.stop_loss_pct", "must be < 100")?;
        }
        positive("strategy.take_profit_pct", self.take_profit_pct)?;
        nonzero("strategy.max_hold_secs", self.max_hold_secs)?;
        if let Err(e) = wire::Filter::new(&self.symbols, None::<&str>) {
            fail("strategy.symbols", &e.reason)?;
        }
        positive("strategy.target_notional", self.target_notional)
    }

    /// The wire subscription the strategy needs: its symbols (all when
    /// none are named).
    pub fn filter(&self) -> wire::Filter {
        // Checked by `validate`; an unchecked bad list asks for everything
        // rather than for nothing.
        wire::Filter::new(&self.symbols, None::<&str>).unwrap_or_default()
    }
}

impl RiskConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("risk.max_position", self.max_position)?;
        positive("risk.max_order_notional", self.max_order_notional)?;
        positive("risk.max_gross_exposure", self.max_gross_exposure)?;
        nonzero("risk.max_orders", u64::from(self.max_orders))?;
        nonzero("risk.rate_window_secs", self.rate_window_secs)?;
        positive("risk.daily_loss_limit", self.daily_loss_limit)?;
        positive("risk.price_band_pct", self.price_band_pct)?;
        if self.price_band_pct >= 100.0 {
            fail("risk.price_band_pct", "must be < 100")?;
        }
        Ok(())
    }
}

impl BrokerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative("broker.slippage_bps", self.slippage_bps)?;
        if self.slippage_bps >= 10_000.0 {
            fail("broker.slippage_bps", "must be < 10000")?;
        }
        non_negative("broker.starting_cash", self.starting_cash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut Config), expect: Option<&str>) {
        let mut config = Config::default();
        edit(&mut config);
        assert_eq!(config.validate().err().map(|e| e.to_string()).as_deref(), expect);
    }

    #[test]
    fn defaults_are_valid() {
        check(|_| {}, None);
    }

    #[test]
    fn errors_name_the_key() {
        check(
            |c| c.risk.max_position = 0,
            Some("risk.max_position: must be > 0"),
        );
        check(
            |c| c.risk.daily_loss_limit = -1.0,
            Some("risk.daily_loss_limit: must be > 0"),
        );
        check(
            |c| c.risk.price_band_pct = 150.0,
            Some("risk.price_band_pct: must be < 100"),
        );
        check(
            |c| c.risk.max_gross_exposure = f64::NAN,
            Some("risk.max_gross_exposure: must be > 0"),
        );
        check(|c| c.risk.max_orders = 0, Some("risk.max_orders: must be > 0"));
        check(
            |c| c.strategy.news_threshold = 1.5,
            Some("strategy.news_threshold: must be within (0, 1]"),
        );
        check(
            |c| c.strategy.momentum_secs = 0,
            Some("strategy.momentum_secs: must be > 0"),
        );
        check(
            |c| c.strategy.target_notional = 0.0,
            Some("strategy.target_notional: must be > 0"),
        );
        check(
            |c| c.broker.slippage_bps = -3.0,
            Some("broker.slippage_bps: must be >= 0"),
        );
    }

    #[test]
    fn partial_json_keeps_defaults_and_unknown_keys_fail() {
        let c: Config = serde_json::from_str(r#"{"risk": {"max_position": 7}}"#).unwrap();
        assert_eq!(c.risk.max_position, 7);
        assert_eq!(c.risk.max_orders, RiskConfig::default().max_orders);
        assert_eq!(c.strategy, StrategyConfig::default());

        let err = serde_json::from_str::<Config>(r#"{"risk": {"max_postion": 7}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `max_postion`"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"riks": {}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `riks`"), "{err}");
    }
}
