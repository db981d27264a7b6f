//! The wire's epoch in the engine's state: the log the last event id is an
//! id in. Ids name events only within one epoch, so the engine's "skip what
//! was already applied" rule holds only there; moving to a new epoch (the
//! wire's log recreated) is an explicit step that the operator allows
//! ([`crate::Engine::change_epoch`]), recorded in the audit log as an
//! [`EpochChange`] line between the decisions of the two epochs.

use serde::{Deserialize, Serialize};
use wire::Epoch;

/// The audit log's record of a move to a new epoch: one JSON line,
/// `{"epoch_change":{"from":..,"to":..,"last_event_id":..,"resume_after":..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochChange {
    /// The epoch left (the one the engine or the client held).
    pub from: Epoch,
    /// The wire's new epoch.
    pub to: Epoch,
    /// The last event id applied in `from` (none: no event yet).
    pub last_event_id: Option<u64>,
    /// Where the engine goes on in `to`: after this id (the new log's
    /// oldest event is the next).
    pub resume_after: u64,
}

impl EpochChange {
    /// The record as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            epoch_change: &'a EpochChange,
        }
        serde_json::to_string(&Line { epoch_change: self }).expect("an epoch change always serializes")
    }

    /// An audit line read back, if it is an epoch change.
    pub fn from_json_line(line: &str) -> Option<EpochChange> {
        #[derive(Deserialize)]
        struct Line {
            epoch_change: EpochChange,
        }
        serde_json::from_str::<Line>(line).ok().map(|l| l.epoch_change)
    }
}
