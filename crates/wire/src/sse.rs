//! The SSE form: `event: <kind>`, `id: <epoch>-<id>`, `data: <event JSON>`
//! for an event; `event: <control name>`, `data: <control JSON>` and no `id`
//! for a control message, so control messages never move the resume point.
//! The one exception is `reset`, whose id is the new epoch's beginning.
//!
//! The id line is the whole [`Cursor`], so a browser's `EventSource` sends
//! the epoch back in `Last-Event-ID` without any code on the page.

use crate::{Control, Cursor, Epoch, Event, FieldError, Message};

/// Appends an event block whose id line is the bare id (no epoch): what a
/// server that predates epochs sends.
pub fn encode_event(out: &mut Vec<u8>, event: &Event) {
    encode_parts(
        out,
        event.payload.kind(),
        Cursor::bare(event.id),
        &event.to_json(),
    );
}

/// Appends an event block from an event's parts: its kind, its cursor (the
/// log's epoch and the event's id) and its JSON object ([`Event::to_json`]),
/// for a server that keeps events encoded.
pub fn encode_parts(out: &mut Vec<u8>, kind: &str, cursor: Cursor, json: &str) {
    let mut id = [0u8; 40];
    let id = cursor_text(&mut id, cursor);
    // A validated kind is visible ASCII and a cursor is hex, `-` and digits:
    // neither can hold a line end, so this cannot fail; JSON text holds no
    // raw line end either.
    let written = sse::encode::event(out, Some(kind), Some(id), json);
    debug_assert!(written.is_ok());
}

/// Appends an event block of a filtered stream: [`encode_parts`] with
/// `prev` (the previous matching id) in the data.
pub fn encode_filtered(out: &mut Vec<u8>, kind: &str, cursor: Cursor, json: &str, prev: u64) {
    encode_parts(out, kind, cursor, &crate::json_with_prev(json, prev));
}

/// A cursor's text without allocating or formatting machinery: this runs
/// once per event sent, so the epoch's 12 hex digits and the id's decimal
/// ones are written by hand (`core::fmt` here cost a third of the stub's
/// SSE throughput).
fn cursor_text(buf: &mut [u8; 40], cursor: Cursor) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut len = 0;
    if let Some(epoch) = cursor.epoch {
        let bits = epoch.bits();
        for (i, slot) in buf[..12].iter_mut().enumerate() {
            *slot = HEX[((bits >> (44 - 4 * i)) & 0xf) as usize];
        }
        buf[12] = b'-';
        len = 13;
    }
    let mut digits = itoa::Buffer::new();
    let id = digits.format(cursor.id).as_bytes();
    buf[len..len + id.len()].copy_from_slice(id);
    len += id.len();
    // Only ASCII was written, and 12 + 1 + 20 bytes fit in 40.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// Appends a control block.
pub fn encode_control(out: &mut Vec<u8>, control: &Control) {
    let data = serde_json::to_string(control).unwrap_or_default();
    let id = match control {
        Control::Reset { epoch, oldest, .. } => {
            Some(Cursor::new(*epoch, oldest.saturating_sub(1)).to_string())
        }
        _ => None,
    };
    let written = sse::encode::event(out, Some(control.name()), id.as_deref(), &data);
    debug_assert!(written.is_ok());
}

/// The epoch of an SSE id line, when it has one.
pub fn id_epoch(id: &str) -> Option<Epoch> {
    id.parse::<Cursor>().ok().and_then(|c| c.epoch)
}

/// Reads a dispatched SSE event as a wire message. A control type is read as
/// control; any other type as an event whose JSON `id` must equal the SSE id.
pub fn decode(frame: &sse::EventRef<'_>) -> Result<Message, FieldError> {
    if Control::is_name(frame.event) {
        return serde_json::from_str(frame.data)
            .map(Message::Control)
            .map_err(|e| FieldError {
                field: "data".into(),
                reason: format!("bad {} message: {e}", frame.event),
            });
    }
    let event = Event::from_json(frame.data)?;
    if frame.event != event.payload.kind() {
        return Err(FieldError {
            field: "kind".into(),
            reason: format!(
                "SSE type {:?} but data kind {:?}",
                frame.event,
                event.payload.kind()
            ),
        });
    }
    let id_matches = frame.id.parse::<Cursor>().is_ok_and(|c| c.id == event.id);
    if !id_matches {
        return Err(FieldError {
            field: "id".into(),
            reason: format!("SSE id {:?} but data id {}", frame.id, event.id),
        });
    }
    Ok(Message::Event(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_id_is_the_cursors_display() {
        let epochs = [0, 1, 0xabc, 0xffff_ffff_ffff, 0x0123_4567_89ab, 0x8000_0000_0001];
        let ids = [0, 1, 9, 10, 12_345, u64::MAX];
        for bits in epochs {
            for id in ids {
                for cursor in [Cursor::new(Epoch::from_random(bits), id), Cursor::bare(id)] {
                    let mut buf = [0u8; 40];
                    assert_eq!(cursor_text(&mut buf, cursor), cursor.to_string());
                }
            }
        }
    }
}
