//! The log's one error type (what an append could not do, and why), and
//! what a read could not answer.

use std::io;
use std::path::{Path, PathBuf};

use super::Expired;

/// A read the log could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The cursor is older than anything the log holds.
    Expired(Expired),
    /// The log's store cannot be reached now (a shared log's service is
    /// away); the reader should come back later, or go to another node.
    Unavailable(String),
}

/// The log's one error type.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}:{line}: corrupt journal: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The blocking task that writes the journal did not finish (it
    /// panicked, or the runtime is shutting down): nothing was published.
    #[error("journal write did not finish: {reason}")]
    Interrupted { reason: String },
    /// The idempotency key was used before for different events.
    #[error("idempotency key {key:?} was already used for a different batch")]
    KeyReused { key: String },
    /// A batch without payloads.
    #[error("a batch must hold at least one event")]
    Empty,
    /// A shared log's service cannot be reached: nothing was published.
    #[error("the log service is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The store may or may not have stored the batch (its answer was
    /// lost); a retry under an idempotency key is safe.
    #[error("the log service did not answer in time: {reason}")]
    Unanswered { reason: String },
    /// More events in one batch than the store takes atomically.
    #[error("at most {max} events can be published in one batch here")]
    TooLarge { max: usize },
    /// The log service's setup or an answer it gave is wrong for tickwire.
    #[error("{reason}")]
    Setup { reason: String },
    /// The key was used, but the ids it was given are no longer known here.
    #[error("idempotency key {key:?} was already used, for events older than this node's window")]
    KeyForgotten { key: String },
}

impl LogError {
    /// An IO error on `path`.
    pub fn io(path: &Path, error: io::Error) -> LogError {
        LogError::Io {
            path: path.to_owned(),
            error,
        }
    }
}
