//! The engine's running counts: what it applied, passed over and decided,
//! kept in the checkpoint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Running counts, kept in the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Events applied (repeated ids are not).
    pub events: u64,
    pub ticks: u64,
    pub news: u64,
    /// Unknown kinds and invalid payloads.
    pub ignored: u64,
    /// Events skipped because their id was not above the last one applied.
    pub repeated: u64,
    pub decisions: u64,
    pub accepts: u64,
    pub denials: u64,
    pub denials_by_code: BTreeMap<String, u64>,
    pub accepts_by_reason: BTreeMap<String, u64>,
    pub kill_switch_trips: u64,
    /// Moves to a new epoch of the wire (absent from older checkpoints).
    #[serde(default)]
    pub epoch_changes: u64,
    /// Events of symbols `strategy.symbols` leaves out, passed over (not
    /// in `events`).
    #[serde(default)]
    pub not_traded: u64,
}
