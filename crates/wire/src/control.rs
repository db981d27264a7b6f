//! Control messages (heartbeat, caught-up, overflow, cursor expired, reset)
//! and the error body every HTTP error answer carries.

use serde::{Deserialize, Serialize};

use crate::{Epoch, Event};

/// What the stub tells a streaming client besides events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// The connection is alive; `head` is the newest id in the log, so a
    /// client on a quiet stream can still see that it missed something. On
    /// a filtered stream `scanned` is the id the server has looked through
    /// and `prev` the last event up to it that matches the filter: a
    /// reader whose last event is older has missed one.
    Heartbeat {
        head: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scanned: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prev: Option<u64>,
    },
    /// The replay after (re)connecting reached the head: live from here.
    /// `scanned` and `prev` as in a heartbeat.
    CaughtUp {
        head: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scanned: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prev: Option<u64>,
    },
    /// WebSocket only: a `subscribe` or `unsubscribe` took effect. Events
    /// after `at` are chosen by the new filter, none at or before it by
    /// it; `prev` is the last event up to `at` that the new filter matches,
    /// from which the stream's `prev` chain continues.
    Subscribed { at: u64, prev: u64 },
    /// The client read too slowly and is being disconnected; `last_id` is the
    /// last event sent to it. Resume after it.
    Overflow { last_id: u64 },
    /// The cursor is older than the log retains; the oldest id still held is
    /// `oldest`. Nothing is sent: skipping silently would lose events.
    CursorExpired { cursor: u64, oldest: u64, head: u64 },
    /// The cursor names another epoch `from`: the log was recreated and its
    /// ids no longer name the events the client saw. Sent before anything
    /// else; the events that follow (if the stream goes on) are the new
    /// epoch's, from `oldest`. In SSE it carries the id `<epoch>-<oldest - 1>`,
    /// so a browser that reconnects starts at the new epoch's beginning.
    Reset {
        from: Epoch,
        epoch: Epoch,
        oldest: u64,
        head: u64,
    },
}

impl Control {
    /// A heartbeat of an unfiltered stream.
    pub fn heartbeat(head: u64) -> Control {
        Control::Heartbeat {
            head,
            scanned: None,
            prev: None,
        }
    }

    /// A `caught_up` of an unfiltered stream.
    pub fn caught_up(head: u64) -> Control {
        Control::CaughtUp {
            head,
            scanned: None,
            prev: None,
        }
    }

    /// The SSE event type and the WebSocket `type` of this message.
    pub fn name(&self) -> &'static str {
        match self {
            Control::Heartbeat { .. } => "heartbeat",
            Control::CaughtUp { .. } => "caught_up",
            Control::Subscribed { .. } => "subscribed",
            Control::Overflow { .. } => "overflow",
            Control::CursorExpired { .. } => "cursor_expired",
            Control::Reset { .. } => "reset",
        }
    }

    /// One message of every kind, in declaration order (fields zero). The
    /// walk is an exhaustive match, so a new variant does not compile until
    /// it is placed in it; the names of control messages come from here.
    pub fn every() -> impl Iterator<Item = Control> {
        std::iter::successors(Some(Control::heartbeat(0)), |c| match c {
            Control::Heartbeat { .. } => Some(Control::caught_up(0)),
            Control::CaughtUp { .. } => Some(Control::Subscribed { at: 0, prev: 0 }),
            Control::Subscribed { .. } => Some(Control::Overflow { last_id: 0 }),
            Control::Overflow { .. } => Some(Control::CursorExpired {
                cursor: 0,
                oldest: 0,
                head: 0,
            }),
            Control::CursorExpired { .. } => Some(Control::Reset {
                from: Epoch::from_random(0),
                epoch: Epoch::from_random(0),
                oldest: 0,
                head: 0,
            }),
            Control::Reset { .. } => None,
        })
    }

    /// True when `name` is a control message type: such a name cannot be an
    /// event kind, or streams would carry events that read as controls.
    pub fn is_name(name: &str) -> bool {
        Control::every().any(|c| c.name() == name)
    }
}

/// One message on a stream: an event or a control message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Event(Event),
    Control(Control),
}

/// The JSON error answer of every endpoint: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable, machine-readable: `cursor_expired`, `epoch_changed`,
    /// `cursor_ahead`, `bad_request`, `unauthorized`, `not_found`,
    /// `payload_too_large`, ...
    pub code: String,
    /// For people.
    pub message: String,
    /// With `cursor_expired`: the oldest id still retained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<u64>,
    /// The newest id, where it helps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// The server's epoch, with `epoch_changed` and `cursor_ahead`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>) -> Problem {
        Problem {
            code: code.to_owned(),
            message: message.into(),
            oldest: None,
            head: None,
            epoch: None,
        }
    }

    /// The body as sent: `{"error": {...}}`.
    pub fn to_body(&self) -> String {
        serde_json::json!({ "error": self }).to_string()
    }

    /// Reads an error body; `None` when it is not one.
    pub fn from_body(body: &str) -> Option<Problem> {
        #[derive(Deserialize)]
        struct Body {
            error: Problem,
        }
        serde_json::from_str::<Body>(body).ok().map(|b| b.error)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
