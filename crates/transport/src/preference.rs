//! The user's transport preference, `auto` or one transport strictly, and
//! how it sets the policy. Read from flags, environment and YAML by the
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
            Preference::Sse => "sse",
            Preference::Ws => "ws",
            Preference::Poll => "poll",
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

    fn from_str(s: &str) -> Result<Preference, UnknownPreference> {
        match s {
            "auto" => Ok(Preference::Auto),
            "sse" => Ok(Preference::Sse),
            "ws" => Ok(Preference::Ws),
            "poll" | "http" => Ok(Preference::Poll),
            other => Err(UnknownPreference(other.to_owned())),
        }
    }
}
