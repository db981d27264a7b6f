//! The SSE form: `event: <kind>`, `id: <id>`, `data: <event JSON>` for an
//! event; `event: <control name>`, `data: <control JSON>` and no `id` for a
//! control message, so control messages never move the resume point.

use crate::{Control, Event, FieldError, Message};

/// Appends an event block.
pub fn encode_event(out: &mut Vec<u8>, event: &Event) {
    encode_parts(out, event.payload.kind(), event.id, &event.to_json());
}

/// Appends an event block from an event's parts: its kind, its id and its
/// JSON object ([`Event::to_json`]), for a server that keeps events encoded.
pub fn encode_parts(out: &mut Vec<u8>, kind: &str, id: u64, json: &str) {
    let mut digits = itoa::Buffer::new();
    // A validated kind is visible ASCII and an id is digits: neither can hold
    // a line end, so this cannot fail; JSON text holds no raw line end either.
    let written = sse::encode::event(out, Some(kind), Some(digits.format(id)), json);
    debug_assert!(written.is_ok());
}

/// Appends a control block.
pub fn encode_control(out: &mut Vec<u8>, control: &Control) {
    let data = serde_json::to_string(control).unwrap_or_default();
    let written = sse::encode::event(out, Some(control.name()), None, &data);
    debug_assert!(written.is_ok());
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
    if frame.id != event.id.to_string() {
        return Err(FieldError {
            field: "id".into(),
            reason: format!("SSE id {:?} but data id {}", frame.id, event.id),
        });
    }
    Ok(Message::Event(event))
}
