//! tickwire's wire protocol, defined once: the event model, the control
//! messages, and their SSE, polling and WebSocket forms; plus the JSONL
//! fixture loader.
//!
//! Every transport carries the same JSON object for an event (see
//! [`Event::to_json`]) and resumes from the same [`Cursor`]: an event id in
//! the log's [`Epoch`].

mod control;
mod cursor;
mod event;
mod filter;
pub mod fixture;
pub mod poll;
pub mod sse;
mod transport;
pub mod ws;

pub use control::{Control, Message, Problem};
pub use cursor::{BadCursor, Cursor, EPOCH_HEADER, Epoch};
pub use event::{Event, FieldError, News, Payload, Tick, json_with_prev};
pub use filter::{Continuity, Filter, Kind, MAX_SYMBOLS};
pub use transport::{Transport, UnknownTransport};
