//! Why the client stopped for good: one typed error callers can branch on;
//! and why one attempt or session ended (`Failure`), which the policy reads.
//! It is also what the policy's `Failure::Fatal` and `Next::Stop` carry, so
//! the cause found on the wire reaches the caller unchanged.

use std::time::Duration;

/// Why the client stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL (or a request built from it) is unusable.
    #[error("{0}")]
    BadUrl(String),
    /// The cursor is older than the server's retention: events were lost
    /// for good, and only the caller can decide what to do about it.
    #[error(
        "cursor {cursor} is older than the server's retention (oldest id {}): start elsewhere with --from head, or --from ID with {}",
        OldestId(*.oldest),
        Elsewhere(*.oldest)
    )]
    CursorExpired { cursor: u64, oldest: Option<u64> },
    /// The wire's log is another one than the cursor's (its epoch changed:
    /// restarted without a journal, or its data lost): the ids the client
    /// holds no longer name the same events. Never delivered across: the
    /// client stops before the first event of the new epoch. `oldest` and
    /// `head` are the new log's, when the wire said (a `reset`, a 409);
    /// a server that changed epoch without a word leaves them unknown.
    #[error(
        "the wire's log changed epoch from {from} to {epoch} (recreated: restarted without its journal, or its data lost; it now holds {}): the ids seen before no longer name the same events, and nothing from the new epoch was delivered. Start again in the new epoch: --from head, or --from {epoch}-{} for all it holds",
        Held(*.oldest, *.head),
        .oldest.map_or(0, |o| o.saturating_sub(1))
    )]
    EpochChanged {
        from: wire::Epoch,
        epoch: wire::Epoch,
        oldest: Option<u64>,
        head: Option<u64>,
    },
    /// The cursor is past the wire's head: it comes from another log, or
    /// the wire lost events it had published (a journal cut back).
    #[error(
        "cursor {cursor} is past the wire's head {}: it comes from another wire's log, or this wire lost events it had published. Check --url; start again with --from head, or --from an id at or below the head",
        OldestId(*.head)
    )]
    CursorAhead { cursor: wire::Cursor, head: Option<u64> },
    /// A 4xx other than 404, 408 and 429 (or a status the client has no use
    /// for): retrying would not help. `message` is the server's problem, or
    /// the status's reason phrase.
    #[error("refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// 204 No Content: the server asked the client to stop.
    #[error("204 No Content: the server asked the client to stop")]
    StoppedByServer,
    /// The streaming endpoint answered 404 and the transport was asked for
    /// strictly (`sse`, `ws`): only `auto` falls back to polling.
    #[error("the {0} endpoint is missing (404) and {0} is strict: use auto to fall back to polling")]
    StreamingMissing(wire::Transport),
    /// The polling endpoint itself answered 404.
    #[error("polling endpoint missing (404)")]
    PollingMissing,
    /// The server answered something the client cannot use (a stream that
    /// is not `text/event-stream`, an unusable redirect).
    #[error("{0}")]
    Protocol(String),
    /// The server's certificate failed verification: retrying would not
    /// help (and would hide a misconfiguration or an attack).
    #[error("the TLS certificate of {host} is not trusted: {reason}")]
    Certificate { host: String, reason: String },
    /// TLS cannot be set up: an unreadable CA file, no platform roots.
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// The wire did not answer a one-off question (its head, for a start
    /// at the head).
    #[error("the wire did not answer: {0}")]
    Unreachable(String),
    /// `max_attempts` reached: after a first failure, `attempts` more
    /// attempts failed in a row (`attempts == max_attempts`); `last` is the
    /// last cause.
    #[error("gave up after {attempts} failed attempts: {last}")]
    GaveUp { attempts: u32, last: String },
}

struct OldestId(Option<u64>);

/// The ids a new epoch holds, as far as the wire said.
struct Held(Option<u64>, Option<u64>);

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0, self.1) {
            (Some(oldest), Some(head)) => write!(f, "ids {oldest} to {head}"),
            (None, Some(head)) => write!(f, "ids up to {head}"),
            _ => f.write_str("ids the server did not say"),
        }
    }
}

/// The ids a restart may start after.
struct Elsewhere(Option<u64>);

impl std::fmt::Display for Elsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "ID >= {}", id.saturating_sub(1)),
            None => f.write_str("an ID the wire still holds"),
        }
    }
}

impl std::fmt::Display for OldestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Why a connection attempt or a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying with backoff: network error, timeout, 5xx, 408, 429,
    /// end of stream. `retry_after` is a server's `Retry-After`.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// No whole message (not even a heartbeat) for the idle deadline: the
    /// connection is dead, or a peer drips bytes of an unfinished one.
    /// Retried like any network fault.
    Silent { idle: Duration },
    /// The streaming endpoint does not exist here (404): fall back at once.
    StreamMissing,
    /// Stop: 204, or a 4xx other than 408 and 429, or a cursor the server no
    /// longer retains. Retrying would not help.
    Fatal(ClientError),
}

/// For people: the reason alone, as a timeline's "disconnected" line shows it.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry { reason, .. } => f.write_str(reason),
            Failure::Silent { idle } => {
                write!(f, "no data for {} ms: the connection is silent", idle.as_millis())
            }
            Failure::StreamMissing => f.write_str("endpoint missing (404)"),
            Failure::Fatal(e) => write!(f, "{e}"),
        }
    }
}
