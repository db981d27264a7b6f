//! What the decoder hands out (events, comments, retry hints), the limits it
//! enforces, and the error for going over one.

use std::borrow::Cow;
use std::fmt;

/// Size limits. Both end in a [`DecodeError`], never in unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, in bytes as buffered (decoded UTF-8: an invalid byte
    /// counts as the three bytes of the U+FFFD that replaces it), without its
    /// line end.
    pub max_line: usize,
    /// Largest data buffer of one event, in bytes (LFs between lines count).
    pub max_event: usize,
}

impl Default for Limits {
    /// 16 MiB each: real feeds send multi-megabyte events.
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            max_event: 16 << 20,
        }
    }
}

/// A limit was exceeded. The decoder drops the offending block (its id is not
/// committed, so a resume fetches it again) and carries on with the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    LineTooLong { limit: usize },
    EventTooLarge { limit: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { limit } => {
                write!(f, "SSE line longer than the {limit}-byte limit")
            }
            DecodeError::EventTooLarge { limit } => {
                write!(f, "SSE event data larger than the {limit}-byte limit")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A dispatched event, borrowed from the decoder until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type; `message` when none was given.
    pub event: &'a str,
    /// The data buffer without its final LF.
    pub data: &'a str,
    /// The last event ID; empty when there is none.
    pub id: &'a str,
}

/// What the decoder hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An event was dispatched (a blank line ended a block holding data).
    Event(EventRef<'a>),
    /// A comment line (`:` first). The text after the colon, one leading space
    /// removed. Browsers ignore comments; servers use them as keep-alives.
    Comment(Cow<'a, str>),
    /// A valid `retry:` field: the reconnection time in milliseconds, as sent.
    /// Applying a floor is the reconnection policy's job, not the codec's.
    Retry(u64),
}
