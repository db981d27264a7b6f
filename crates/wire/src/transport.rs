//! The one vocabulary for the three ways an event travels, shared by the
//! server, the client, the binaries, the metrics and the simulation.
//!
//! Canonical names are `sse`, `ws` and `poll`; `http` is accepted wherever a
//! name is read (flags, environment, YAML) because earlier releases called
//! polling that. Output (logs, metrics labels, JSON) always says `poll`.

use serde::{Deserialize, Serialize};

/// A streaming transport, or polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Server-Sent Events: `GET /stream`.
    Sse,
    /// WebSocket: `GET /ws`.
    Ws,
    /// HTTP polling (long-poll when asked): `GET /events`.
    #[serde(alias = "http")]
    Poll,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Poll => "poll",
        }
    }

    pub fn is_streaming(self) -> bool {
        self != Transport::Poll
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transport must be sse, ws or poll (or http), not {}", crate::event::quoted(.0))]
pub struct UnknownTransport(pub String);

impl std::str::FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Transport, UnknownTransport> {
        match s {
            "sse" => Ok(Transport::Sse),
            "ws" => Ok(Transport::Ws),
            "poll" | "http" => Ok(Transport::Poll),
            other => Err(UnknownTransport(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Transport;

    #[test]
    fn every_name_reads_back_and_http_is_an_alias_for_poll() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<Transport>(&json).ok(), Some(t));
        }
        assert_eq!("http".parse::<Transport>(), Ok(Transport::Poll));
        assert_eq!(
            serde_json::from_str::<Transport>("\"http\"").ok(),
            Some(Transport::Poll)
        );
        let err = "carrier-pigeon".parse::<Transport>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("transport must be sse, ws or poll (or http), not \"carrier-pigeon\"")
        );
    }
}
