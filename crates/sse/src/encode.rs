//! The event-stream encoder: events, comments and retry hints to bytes.
//!
//! Values can never inject fields: an event type with CR or LF, or an id with
//! CR, LF or NUL, is refused, and data is split on every line end into several
//! `data:` lines (so CR, LF and CRLF in data all come back as LF).

use std::fmt;

/// A value that would change the meaning of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The event type holds a CR or LF.
    EventType,
    /// The id holds a CR, LF or NUL.
    Id,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::EventType => f.write_str("SSE event type must not contain CR or LF"),
            EncodeError::Id => f.write_str("SSE id must not contain CR, LF or NUL"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Writes one event block: `event:` (when given), `id:` (when given), one
/// `data:` line per line of `data`, and the blank line that dispatches it.
/// Nothing is written when an error is returned.
pub fn event(
    out: &mut Vec<u8>,
    event_type: Option<&str>,
    id: Option<&str>,
    data: &str,
) -> Result<(), EncodeError> {
    if event_type.is_some_and(|t| memchr::memchr2(b'\r', b'\n', t.as_bytes()).is_some()) {
        return Err(EncodeError::EventType);
    }
    if id.is_some_and(|i| memchr::memchr3(b'\r', b'\n', 0, i.as_bytes()).is_some()) {
        return Err(EncodeError::Id);
    }
    if let Some(t) = event_type {
        field(out, b"event", t.as_bytes());
    }
    if let Some(i) = id {
        field(out, b"id", i.as_bytes());
    }
    lines(out, b"data", data.as_bytes());
    out.push(b'\n');
    Ok(())
}

/// Writes a comment, one `:` line per line of `text`. Browsers ignore
/// comments; a stream uses them to keep idle connections and proxies alive.
pub fn comment(out: &mut Vec<u8>, text: &str) {
    lines(out, b"", text.as_bytes());
}

/// Writes a `retry:` field: the reconnection time a client should use.
pub fn retry(out: &mut Vec<u8>, ms: u64) {
    field(out, b"retry", ms.to_string().as_bytes());
}

/// `name: value\n`. The space is always written, so a value that starts with
/// a space keeps it (the decoder strips exactly one).
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 3);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// One `name:` line per line of `text`, splitting on CRLF, LF and CR.
fn lines(out: &mut Vec<u8>, name: &[u8], mut text: &[u8]) {
    loop {
        match memchr::memchr2(b'\r', b'\n', text) {
            None => {
                field(out, name, text);
                return;
            }
            Some(i) => {
                field(out, name, &text[..i]);
                let crlf = text[i] == b'\r' && text.get(i + 1) == Some(&b'\n');
                text = &text[i + 1 + usize::from(crlf)..];
            }
        }
    }
}
