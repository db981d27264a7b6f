//! The event model: a gap-free sequence id and a typed payload.
//!
//! One JSON object describes an event everywhere (SSE data, polling item,
//! WebSocket message, fixture line): `kind` names the payload, the payload's
//! fields sit beside it, and `id` and `pub_us` are added once the stub has
//! published it. A kind this build does not know is kept as `Payload::Other`
//! with its fields, so an older client survives a newer server.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Control;

/// A published wire event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Global, gap-free sequence number, starting at 1. The resume cursor of
    /// every transport.
    pub id: u64,
    /// When the stub published it, in microseconds since the Unix epoch, by
    /// the stub's clock. For latency metrics only: decisions never read it.
    pub pub_us: Option<u64>,
    /// On a filtered stream, the id of the previous event in the log that
    /// matches the same filter (0: none); `None` on an unfiltered one,
    /// where it is `id - 1`. See [`Filter::continues`](crate::Filter::continues).
    pub prev: Option<u64>,
    pub payload: Payload,
}

/// What happened in the market.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Tick(Tick),
    News(News),
    /// A kind this build does not know: its name and its other fields.
    Other {
        kind: String,
        fields: BTreeMap<String, Value>,
    },
}

/// A trade or quote update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: String,
    /// Last trade price.
    pub last: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Exchange time of the update (RFC 3339, UTC).
    pub ts_utc: Timestamp,
}

/// A news item with a sentiment score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct News {
    pub symbol: String,
    /// Sentiment in [-1, 1]: -1 very negative, 1 very positive.
    pub score: f64,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    pub ts_utc: Timestamp,
}

/// The crate's error: a message or payload that does not make sense, which
/// field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct FieldError {
    /// The field's path, such as `last` or `kind`.
    pub field: String,
    pub reason: String,
}

fn field_error(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Keys the envelope owns; a payload cannot use them.
const ENVELOPE_KEYS: [&str; 4] = ["id", "kind", "prev", "pub_us"];

impl Payload {
    /// The `kind` name: also the SSE event type.
    pub fn kind(&self) -> &str {
        match self {
            Payload::Tick(_) => "tick",
            Payload::News(_) => "news",
            Payload::Other { kind, .. } => kind,
        }
    }

    /// The instrument, for the kinds that have one.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Payload::Tick(t) => Some(&t.symbol),
            Payload::News(n) => Some(&n.symbol),
            Payload::Other { .. } => None,
        }
    }

    /// Reads a payload from its JSON object (`kind` and the fields).
    pub fn from_json(text: &str) -> Result<Payload, FieldError> {
        let mut map = json_object(text)?;
        let kind = take_kind(&mut map)?;
        Payload::from_fields(&kind, map)
    }

    /// Builds a payload from its kind and its other fields, naming the field
    /// at fault on error. Unknown kinds are kept as they are.
    pub fn from_fields(kind: &str, mut fields: Map<String, Value>) -> Result<Payload, FieldError> {
        for key in ENVELOPE_KEYS {
            fields.remove(key);
        }
        let payload = match kind {
            "tick" => Payload::Tick(typed(fields)?),
            "news" => Payload::News(typed(fields)?),
            "" => return Err(field_error("kind", "must not be empty")),
            other => Payload::Other {
                kind: other.to_owned(),
                fields: fields.into_iter().collect(),
            },
        };
        payload.validate()?;
        Ok(payload)
    }

    /// Checks the values: positive finite prices, a score in [-1, 1], a
    /// plausible symbol, a provider.
    pub fn validate(&self) -> Result<(), FieldError> {
        fn price(field: &str, p: f64) -> Result<(), FieldError> {
            if p.is_finite() && p > 0.0 {
                Ok(())
            } else {
                Err(field_error(
                    field,
                    format!("price must be finite and above 0, got {p}"),
                ))
            }
        }
        match self {
            Payload::Tick(t) => {
                check_symbol(&t.symbol)?;
                price("last", t.last)?;
                if let Some(b) = t.bid {
                    price("bid", b)?;
                }
                if let Some(a) = t.ask {
                    price("ask", a)?;
                }
                Ok(())
            }
            Payload::News(n) => {
                check_symbol(&n.symbol)?;
                if !(n.score.is_finite() && (-1.0..=1.0).contains(&n.score)) {
                    return Err(field_error(
                        "score",
                        format!("must be within [-1, 1], got {}", n.score),
                    ));
                }
                if n.provider.is_empty() {
                    return Err(field_error("provider", "must not be empty"));
                }
                Ok(())
            }
            Payload::Other { kind, fields } => {
                // On WebSocket `type` tells an event from a control message:
                // an event of its own `type` could pose as `cursor_expired`.
                if fields.contains_key("type") {
                    return Err(field_error(
                        "type",
                        "is reserved: the WebSocket form uses it to tell events from control messages",
                    ));
                }
                if kind.is_empty() || kind.len() > 64 || kind.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(field_error("kind", "must be 1 to 64 visible ASCII characters"));
                }
                // On SSE the kind is the event type: a control name there
                // would make every client read the event as a control.
                if Control::is_name(kind) {
                    return Err(field_error(
                        "kind",
                        format!("{kind:?} is a control message type, not an event kind"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The payload as a JSON object, `kind` included.
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("kind".into(), Value::String(self.kind().to_owned()));
        let body = match self {
            Payload::Tick(t) => serde_json::to_value(t),
            Payload::News(n) => serde_json::to_value(n),
            Payload::Other { fields, .. } => Ok(Value::Object(fields.clone().into_iter().collect())),
        };
        if let Ok(Value::Object(body)) = body {
            map.extend(body);
        }
        map
    }
}

pub(crate) fn check_symbol(s: &str) -> Result<(), FieldError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(field_error(
            "symbol",
            format!("must be 1 to 32 of A-Z a-z 0-9 . _ - / :, got {}", quoted(s)),
        ))
    }
}

/// `s` quoted for an error message, cut to its first 40 characters (with
/// its length in bytes) so an error never echoes a huge value back.
pub(crate) fn quoted(s: &str) -> String {
    const SHOWN: usize = 40;
    match s.char_indices().nth(SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &s[..cut], s.len()),
    }
}

fn typed<T: serde::de::DeserializeOwned>(fields: Map<String, Value>) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field is reported at its parent ("."); name the field itself.
        match inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((name, _)) => field_error(name, "missing"),
            None => field_error(if path == "." { "?" } else { &path }, inner),
        }
    })
}

pub(crate) fn json_object(text: &str) -> Result<Map<String, Value>, FieldError> {
    serde_json::from_str(text).map_err(|e| field_error("?", format!("not a JSON object: {e}")))
}

fn take_kind(map: &mut Map<String, Value>) -> Result<String, FieldError> {
    match map.remove("kind") {
        Some(Value::String(k)) => Ok(k),
        Some(_) => Err(field_error("kind", "must be a string")),
        None => Err(field_error("kind", "missing")),
    }
}

fn take_u64(map: &mut Map<String, Value>, key: &str) -> Result<Option<u64>, FieldError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| field_error(key, "must be a non-negative integer")),
    }
}

impl Event {
    /// Reads an event from its JSON object, naming the field at fault.
    pub fn from_json(text: &str) -> Result<Event, FieldError> {
        Event::from_map(json_object(text)?)
    }

    pub fn from_map(mut map: Map<String, Value>) -> Result<Event, FieldError> {
        let id = take_u64(&mut map, "id")?.ok_or_else(|| field_error("id", "missing"))?;
        if id == 0 {
            return Err(field_error("id", "must be at least 1"));
        }
        let pub_us = take_u64(&mut map, "pub_us")?;
        let prev = take_u64(&mut map, "prev")?;
        if prev.is_some_and(|p| p >= id) {
            return Err(field_error("prev", "must be below the event's id"));
        }
        let kind = take_kind(&mut map)?;
        let payload = Payload::from_fields(&kind, map)?;
        Ok(Event {
            id,
            pub_us,
            prev,
            payload,
        })
    }

    /// The event's JSON object: `id`, `kind`, the payload's fields and
    /// `pub_us`, keys in alphabetical order.
    pub fn to_json(&self) -> String {
        Value::Object(self.to_map()).to_string()
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut map = self.payload.to_fields();
        map.insert("id".into(), self.id.into());
        if let Some(us) = self.pub_us {
            map.insert("pub_us".into(), us.into());
        }
        if let Some(prev) = self.prev {
            map.insert("prev".into(), prev.into());
        }
        map
    }

    /// The id before this one on its stream: `prev` on a filtered stream,
    /// `id - 1` on a full one.
    pub fn prev_id(&self) -> u64 {
        self.prev.unwrap_or(self.id - 1)
    }
}

/// An event's JSON object ([`Event::to_json`]) with `"prev":N` put first,
/// for a server that keeps events encoded and serves a filtered stream:
/// the one place that form is written.
pub fn json_with_prev(json: &str, prev: u64) -> String {
    let fields = json.trim_start().strip_prefix('{').unwrap_or("}").trim_start();
    let mut digits = itoa::Buffer::new();
    let prev = digits.format(prev);
    let mut out = String::with_capacity(json.len() + prev.len() + 10);
    out.push_str("{\"prev\":");
    out.push_str(prev);
    if !fields.starts_with('}') {
        out.push(',');
    }
    out.push_str(fields);
    out
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_fields().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(d)?;
        let kind = take_kind(&mut map).map_err(D::Error::custom)?;
        Payload::from_fields(&kind, map).map_err(D::Error::custom)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Event::from_map(Map::deserialize(d)?).map_err(D::Error::custom)
    }
}
