//! A sans-IO Server-Sent Events codec that follows the WHATWG HTML standard
//! ("Server-sent events", section 9.2).
//!
//! The [`Decoder`] takes bytes as they arrive (`push`) and hands out frames
//! (`next_frame`): dispatched events, comments and `retry:` hints. The
//! [`encode`] module writes events, comments and retry hints as bytes.
//!
//! This crate deliberately does no IO, reads no clock and spawns nothing: the
//! caller owns the socket and the time. That keeps it usable from a hyper
//! client, an axum handler, a simulation and a benchmark alike, and makes every
//! rule testable by plain unit and property tests.

mod decode;
pub mod encode;
mod frame;
mod text;

pub use decode::Decoder;
pub use encode::EncodeError;
pub use frame::{DecodeError, EventRef, Frame, Limits};

/// An owned, dispatched event: what a browser's `EventSource` would hand to a
/// listener as `MessageEvent` (`type`, `data`, `lastEventId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// The event type; `message` when the stream named none.
    pub event: String,
    /// The data, lines joined by LF, without a trailing LF.
    pub data: String,
    /// The last event ID after this event; empty when there is none.
    pub id: String,
}

/// An owned [`Frame`], for tests and callers that keep frames around.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OwnedFrame {
    Event(Event),
    Comment(String),
    Retry(u64),
}

impl Frame<'_> {
    pub fn to_owned_frame(&self) -> OwnedFrame {
        match self {
            Frame::Event(e) => OwnedFrame::Event(e.to_owned_event()),
            Frame::Comment(c) => OwnedFrame::Comment(c.to_string()),
            Frame::Retry(ms) => OwnedFrame::Retry(*ms),
        }
    }
}

impl EventRef<'_> {
    pub fn to_owned_event(&self) -> Event {
        Event {
            event: self.event.to_owned(),
            data: self.data.to_owned(),
            id: self.id.to_owned(),
        }
    }
}
