//! Stream identity on the client side: the epoch the client holds (set
//! once, from the start cursor or the first answer that names one, and
//! never changed), what an answer says about it (the `tickwire-epoch`
//! header), and the two refusals of a cursor that names nothing in the
//! wire's log (409 `epoch_changed` and `cursor_ahead`).
//!
//! An answer that names another epoch than the one held stops the client
//! with `EpochChanged` before anything from it is delivered: its ids name
//! other events than the ones the caller has.

use std::sync::{Arc, OnceLock};

use hyper::header::HeaderMap;
use wire::{Cursor, Epoch};

use crate::error::ClientError;
use crate::policy::Failure;

/// The epoch of everything the client delivered, shared by the driver (the
/// only writer) and the `Client` handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct Held(Arc<OnceLock<Epoch>>);

impl Held {
    pub(crate) fn new(start: Option<Epoch>) -> Held {
        let held = Held::default();
        if let Some(epoch) = start {
            let _ = held.0.set(epoch);
        }
        held
    }

    pub(crate) fn get(&self) -> Option<Epoch> {
        self.0.get().copied()
    }

    /// The cursor after `id` in the epoch held (bare while none is).
    pub(crate) fn cursor(&self, id: u64) -> Cursor {
        Cursor {
            epoch: self.get(),
            id,
        }
    }

    /// What an answer named: nothing (a server that predates epochs), the
    /// epoch held, or a first one (learnt: `Ok(Some(it))`). Another epoch
    /// is the log recreated under the client, reset or not: fatal.
    pub(crate) fn learn(&self, seen: Option<Epoch>) -> Result<Option<Epoch>, Failure> {
        let Some(seen) = seen else { return Ok(None) };
        match self.get() {
            Some(held) if held == seen => Ok(None),
            Some(held) => Err(Failure::Fatal(ClientError::EpochChanged {
                from: held,
                epoch: seen,
                oldest: None,
                head: None,
            })),
            // The driver is the only writer: `set` cannot lose a race.
            None => Ok(self.0.set(seen).is_ok().then_some(seen)),
        }
    }
}

/// The epoch a response's `tickwire-epoch` header names, if it names one
/// (a value that is no epoch is read as none: it cannot be compared).
pub(crate) fn header(headers: &HeaderMap) -> Option<Epoch> {
    headers
        .get(wire::EPOCH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A 409 whose problem says the cursor names nothing in the wire's log:
/// `epoch_changed` (another epoch) or `cursor_ahead` (past the head). Any
/// other answer is for `http::classify`.
pub(crate) fn conflict(status: u16, body: &str, cursor: Cursor) -> Option<Failure> {
    if status != 409 {
        return None;
    }
    let p = wire::Problem::from_body(body)?;
    let error = match p.code.as_str() {
        "epoch_changed" => ClientError::EpochChanged {
            from: cursor.epoch?,
            epoch: p.epoch?,
            oldest: p.oldest,
            head: p.head,
        },
        "cursor_ahead" => ClientError::CursorAhead { cursor, head: p.head },
        _ => return None,
    };
    Some(Failure::Fatal(error))
}

/// Whether a failure refuses the cursor itself (another epoch, past the
/// head): fatal even where other failures are not (a streaming probe).
pub(crate) fn refuses_cursor(failure: &Failure) -> bool {
    matches!(
        failure,
        Failure::Fatal(ClientError::EpochChanged { .. } | ClientError::CursorAhead { .. })
    )
}
