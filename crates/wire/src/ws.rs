//! The WebSocket form: one JSON text message per wire message. An event is
//! its JSON object plus `"type": "event"`; a control message is its JSON
//! (`"type": "heartbeat"`, ...).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Control, Event, FieldError, Message};

/// What a client may send on a live connection: a change of its filter
/// ([`Filter`](crate::Filter)), answered by [`Control::Subscribed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Adds symbols and kinds (an empty filter, the full stream, becomes
    /// exactly these).
    Subscribe {
        #[serde(default)]
        symbols: Vec<String>,
        #[serde(default)]
        kinds: Vec<String>,
    },
    /// Removes them; no symbols left means every symbol again.
    Unsubscribe {
        #[serde(default)]
        symbols: Vec<String>,
        #[serde(default)]
        kinds: Vec<String>,
    },
}

impl Request {
    pub fn to_text(&self) -> String {
        // A tagged enum of strings serializes without failing.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a client's message, naming what is wrong.
    pub fn from_text(text: &str) -> Result<Request, FieldError> {
        serde_json::from_str(text).map_err(|e| FieldError {
            field: "type".into(),
            reason: format!("not a subscribe or unsubscribe message: {e}"),
        })
    }
}

pub fn encode(message: &Message) -> String {
    match message {
        Message::Event(e) => encode_event(e),
        Message::Control(c) => encode_control(c),
    }
}

pub fn encode_event(event: &Event) -> String {
    encode_event_json(&event.to_json())
}

/// The message for an event from its JSON object ([`Event::to_json`]), for a
/// server that keeps events encoded: `"type":"event"` first, then the
/// object's own keys as they are. [`decode`] reads keys in any order.
pub fn encode_event_json(json: &str) -> String {
    const TYPE: &str = "{\"type\":\"event\"";
    let fields = json.trim_start().strip_prefix('{').unwrap_or("}").trim_start();
    let mut out = String::with_capacity(TYPE.len() + json.len() + 1);
    out.push_str(TYPE);
    // An event object always has fields; an empty one needs no comma.
    if !fields.starts_with('}') {
        out.push(',');
    }
    out.push_str(fields);
    out
}

/// The message for a control: its JSON, `"type"` first.
pub fn encode_control(control: &Control) -> String {
    // Serializing a plain enum of integers into a String cannot fail.
    serde_json::to_string(control).unwrap_or_default()
}

pub fn decode(text: &str) -> Result<Message, FieldError> {
    let mut map = crate::event::json_object(text)?;
    match map.get("type").and_then(Value::as_str) {
        Some("event") => {
            map.remove("type");
            Event::from_map(map).map(Message::Event)
        }
        Some(_) => serde_json::from_value::<Control>(Value::Object(map))
            .map(Message::Control)
            .map_err(|e| FieldError {
                field: "type".into(),
                reason: e.to_string(),
            }),
        None => Err(FieldError {
            field: "type".into(),
            reason: "missing".into(),
        }),
    }
}
