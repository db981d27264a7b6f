//! The paper-trading decision engine's pure core: wire events in, audited
//! decisions out. No IO (but checkpoint files), no async, no clock, no
//! randomness: the same events give the same decisions, byte for byte.
//! Wire mode, the binary and its endpoints are in `desk`.
//!
//! - `config`: the settings and their validation.
//! - `market`: event-time "now" and the trusted price per symbol.
//! - `strategy`: news sentiment confirmed by momentum; proposes orders.
//! - `risk`: one pure check per order; accept or deny with a reason code.
//! - `broker`: the paper broker and portfolio (it cannot send real orders).
//! - `engine`: wires them together; one event in, audit records out.
//! - `epoch`: the wire's epoch in the state, and the audit record of a move
//!   to a new one.
//! - `checkpoint`: the engine's state (not its config), saved atomically and loaded.
//!
//! Errors: [`ConfigError`] (a setting, named by key) and
//! [`CheckpointError`] (a file, named by path) stay two types: no function
//! here can fail both ways, so a caller matches only what can happen.

pub mod broker;
pub mod checkpoint;
pub mod config;
pub mod counts;
pub mod engine;
pub mod epoch;
pub mod market;
pub mod risk;
pub mod strategy;

pub use broker::{Portfolio, Position};
pub use checkpoint::CheckpointError;
pub use config::{BrokerConfig, Config, ConfigError, RiskConfig, StrategyConfig};
pub use counts::Counts;
pub use engine::{AuditRecord, Engine, State, Summary};
pub use epoch::EpochChange;
pub use market::Market;
pub use risk::{Code, FeedHealth, OrderLog, TradingState, Verdict, Violation};
pub use strategy::{Order, Reason, Side, Strategy};

/// The audit log (JSON lines) of a fresh engine given `payloads` as
/// events 1, 2, ... on a live feed: the offline run that every run
/// over a wire, whatever carried it, must write again.
pub fn offline_audit<'a>(
    config: Config,
    payloads: impl IntoIterator<Item = &'a wire::Payload>,
) -> Result<String, ConfigError> {
    let mut engine = Engine::new(config)?;
    let mut out = String::new();
    for (id, payload) in (1..).zip(payloads) {
        let event = wire::Event {
            id,
            pub_us: None,
            prev: None,
            payload: payload.clone(),
        };
        for r in engine.on_event(&event, FeedHealth::Live) {
            out += &r.to_json_line();
            out.push('\n');
        }
    }
    Ok(out)
}
