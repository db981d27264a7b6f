//! The user's choices: the transport preference, `auto` or one transport
//! strictly, and how it sets the policy; and the start point, the head or
//! after an id. Read from flags, environment and YAML by the
//! binaries; the wire itself only knows `wire::Transport`.

use crate::policy::{PolicyConfig, Transport};

/// What a user asks for: `auto` (SSE, falling back to polling when
/// streaming is missing or fails, probing to upgrade back), or one
/// transport, strictly. A client preference, not a wire transport: the
/// wire knows only `sse`, `ws` and `poll`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    #[default]
    Auto,
    Sse,
    Ws,
    #[serde(alias = "http")]
    Poll,
}

impl Preference {
    /// The transport tried first.
    pub fn transport(self) -> Transport {
        match self {
            Preference::Auto | Preference::Sse => Transport::Sse,
            Preference::Ws => Transport::Ws,
            Preference::Poll => Transport::Poll,
        }
    }

    /// Whether the client may fall back to polling (and probe back).
    pub fn fallback(self) -> bool {
        self == Preference::Auto
    }

    /// Sets the policy's transport and fallback.
    pub fn apply(self, config: &mut PolicyConfig) {
        config.transport = self.transport();
        config.fallback = self.fallback();
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Preference::Auto => "auto",
            strict => strict.transport().as_str(),
        }
    }
}

impl std::fmt::Display for Preference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a preference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transport must be auto, sse, ws or poll (or http), not {0:?}")]
pub struct UnknownPreference(pub String);

impl std::str::FromStr for Preference {
    type Err = UnknownPreference;

    /// `auto`, or a transport's name as `wire::Transport` reads it (its
    /// aliases included): the vocabulary is defined once, there.
    fn from_str(s: &str) -> Result<Preference, UnknownPreference> {
        if s == "auto" {
            return Ok(Preference::Auto);
        }
        match s.parse::<Transport>() {
            Ok(Transport::Sse) => Ok(Preference::Sse),
            Ok(Transport::Ws) => Ok(Preference::Ws),
            Ok(Transport::Poll) => Ok(Preference::Poll),
            Err(_) => Err(UnknownPreference(s.to_owned())),
        }
    }
}

/// Where a client starts: after a cursor (`42`, or `<epoch>-42` to insist
/// on that epoch; `0`: from the first event), or at the head, learnt from
/// the wire first ([`crate::Client::head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Head,
    After(wire::Cursor),
}

/// A start point that is neither `head` nor a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a start point is head, an event id (42) or an epoch and an id (0a1b2c3d4e5f-42), not {0:?}")]
pub struct BadStart(pub String);

impl std::str::FromStr for Start {
    type Err = BadStart;

    fn from_str(s: &str) -> Result<Start, BadStart> {
        match s {
            "head" => Ok(Start::Head),
            cursor => cursor
                .parse()
                .map(Start::After)
                .map_err(|_| BadStart(cursor.to_owned())),
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Start::Head => f.write_str("head"),
            Start::After(cursor) => write!(f, "{cursor}"),
        }
    }
}
