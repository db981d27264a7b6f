//! The oracles that observe: rules checked against the network's record of
//! what happened ([`crate::net::Record`]), not against the client's own
//! account of itself.

use crate::{Report, Scenario};

/// The interesting paths the record shows a run took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub backoff_cap: bool,
    pub retry_above_base: bool,
    pub idle_deadline: bool,
    pub quiet_kept: bool,
}

/// What the record shows (see [`Seen`]).
pub fn seen(_scenario: &Scenario, _report: &Report) -> Seen {
    Seen::default()
}
