//! The polling form: `GET /events?cursor=N&limit=M[&wait_ms=W]` answers a
//! [`Page`]; an error answers a [`Problem`](crate::Problem) body.

use serde::{Deserialize, Serialize};

use crate::Event;

/// One polling answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The events after the cursor, oldest first, gap-free.
    pub events: Vec<Event>,
    /// The cursor for the next request: the last id here, or the request's
    /// cursor when there is none.
    pub next_cursor: u64,
    /// The newest id in the log.
    pub head: u64,
}
