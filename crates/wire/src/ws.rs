//! The WebSocket form: one JSON text message per wire message. An event is
//! its JSON object plus `"type": "event"`; a control message is its JSON
//! (`"type": "heartbeat"`, ...).

use serde_json::{Map, Value};

use crate::{Control, Event, FieldError, Message};

pub fn encode(message: &Message) -> String {
    match message {
        Message::Event(e) => encode_event(e),
        Message::Control(c) => serde_json::to_string(c).unwrap_or_default(),
    }
}

pub fn encode_event(event: &Event) -> String {
    let mut map = match serde_json::to_value(event) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    map.insert("type".into(), "event".into());
    Value::Object(map).to_string()
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
