//! What the server needs of a log ([`EventLog`]) and the types it speaks
//! in: entries, batches, what an append did, misses, status and errors.

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use wire::{Epoch, Filter, Kind, Payload};

use super::{HeadWatch, IdempotencyKey, Scan, Topic};

/// One stored event.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub kind: String,
    /// The event's JSON object (`wire::Event::to_json`), `pub_us` included.
    pub json: String,
    /// Its kind and symbol, for filtered readers; `None` for kinds without
    /// a symbol.
    pub topic: Option<Topic>,
    /// Its SSE block and WebSocket text, each rendered once and shared by
    /// every connection: a connection writes these bytes, it never encodes.
    frames: Frames,
}

#[derive(Debug, Clone, Default)]
struct Frames {
    sse: OnceLock<Bytes>,
    ws: OnceLock<Utf8Bytes>,
}

impl Entry {
    /// An entry without a topic (no filter selects it).
    pub fn new(id: u64, kind: String, json: String) -> Entry {
        Entry {
            id,
            kind,
            json,
            topic: None,
            frames: Frames::default(),
        }
    }

    /// The entry of `event`, whose JSON object is `json`.
    pub fn of(event: &wire::Event, json: String) -> Entry {
        let kind = event.payload.kind();
        let topic = Kind::of(kind)
            .zip(event.payload.symbol())
            .map(|(kind, symbol)| Topic {
                kind,
                symbol: symbol.into(),
            });
        Entry {
            topic,
            ..Entry::new(event.id, kind.to_owned(), json)
        }
    }

    /// Whether `filter` passes this event.
    pub fn matches(&self, filter: &Filter) -> bool {
        filter.matches(&self.kind, self.topic.as_ref().map(|t| &*t.symbol))
    }

    /// The block of a filtered stream: [`sse`](Entry::sse) with `prev`
    /// in the data, rendered for this connection.
    pub fn sse_filtered(&self, epoch: Epoch, prev: u64) -> Bytes {
        let mut out = Vec::with_capacity(self.json.len() + self.kind.len() + 60);
        wire::sse::encode_filtered(
            &mut out,
            &self.kind,
            wire::Cursor::new(epoch, self.id),
            &self.json,
            prev,
        );
        Bytes::from(out)
    }

    /// The WebSocket text of a filtered stream, `prev` included.
    pub fn ws_filtered(&self, prev: u64) -> Utf8Bytes {
        Utf8Bytes::from(wire::ws::encode_event_json(&wire::json_with_prev(
            &self.json, prev,
        )))
    }

    /// The JSON object of a filtered page, `prev` included.
    pub fn json_filtered(&self, prev: u64) -> String {
        wire::json_with_prev(&self.json, prev)
    }

    /// The event's SSE block (`event`, `id: <epoch>-<id>`, `data`), under
    /// its log's `epoch`: rendered by the first caller (the log renders it
    /// at append), shared by the rest. A log has one epoch, so the block
    /// cached is the same whoever asks.
    pub fn sse(&self, epoch: Epoch) -> &Bytes {
        self.frames.sse.get_or_init(|| {
            let mut out = Vec::with_capacity(self.json.len() + self.kind.len() + 40);
            wire::sse::encode_parts(
                &mut out,
                &self.kind,
                wire::Cursor::new(epoch, self.id),
                &self.json,
            );
            Bytes::from(out)
        })
    }

    /// The event's WebSocket text message (`wire::ws`), rendered once.
    pub fn ws(&self) -> &Utf8Bytes {
        self.frames
            .ws
            .get_or_init(|| Utf8Bytes::from(wire::ws::encode_event_json(&self.json)))
    }
}

/// Where an event came from; recorded in the journal so a restart knows how
/// far the fixture replay had got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Fixture,
    Ingest,
}

/// The cursor points before the oldest retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub oldest: u64,
    pub head: u64,
}

/// A read the log could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The cursor is older than anything the log holds.
    Expired(Expired),
    /// The log's store cannot be reached now (a shared log's service is
    /// away); the reader should come back later, or go to another node.
    Unavailable(String),
}

/// Where a fixture batch sits in its fixture: each event's identity in a
/// shared log, so a second node replaying the same fixture publishes
/// nothing twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixtureAt {
    /// A digest of the whole fixture.
    pub fixture: u32,
    /// The 0-based index in the fixture of the batch's first payload.
    pub first: u64,
}

/// Payloads to publish together: all get ids, or none do.
#[derive(Debug, Clone)]
pub struct Batch {
    pub source: Source,
    /// A retry under the same key answers the first attempt's ids.
    pub key: Option<IdempotencyKey>,
    pub payloads: Vec<Payload>,
    /// The publish time stamped on every event (µs since the Unix epoch).
    pub pub_us: u64,
    /// For fixture batches, where they sit in the fixture.
    pub fixture_at: Option<FixtureAt>,
}

/// The state of a log's store, for `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogStatus {
    /// `memory`, `journal` or the shared service (`jetstream`, `model`).
    pub kind: &'static str,
    /// Whether appends can be stored now.
    pub connected: bool,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub ids: RangeInclusive<u64>,
    /// True when the key had been seen: these are the first attempt's ids
    /// and nothing was appended.
    pub replayed: bool,
}

/// What the server needs of a log. Reads are synchronous (they copy from
/// memory under a lock); appends are futures (a journal's fsync, a remote
/// log's acknowledgement).
pub trait EventLog: Send + Sync + 'static {
    /// The log's identity: ids name events only within it.
    fn epoch(&self) -> Epoch;
    /// The newest id; 0 when nothing was ever published.
    fn head(&self) -> u64;
    /// The oldest id still held; `head + 1` when none is.
    fn oldest(&self) -> u64;
    /// Fixture events published so far (the replay resumes after them).
    fn fixture_done(&self) -> usize;
    /// The head, to wait on for it to move ([`HeadWatch::past`]).
    fn watch(&self) -> HeadWatch;
    /// Calls `f` with up to `max` events after `after`, in order; returns
    /// the last id passed to `f` (or `after` when none was).
    fn read_with(&self, after: u64, max: usize, f: &mut dyn FnMut(&Entry)) -> Result<u64, Expired>;
    /// Calls `f` with up to `max` events after `after` that `filter`
    /// matches, in order, each with the previous match's id (its `prev`),
    /// found by lookup; returns how far it looked and the last match there.
    /// Expired only when a match after `after` has left memory.
    fn read_filtered(
        &self,
        after: u64,
        filter: &Filter,
        max: usize,
        f: &mut dyn FnMut(&Entry, u64),
    ) -> Result<Scan, Expired>;
    /// Publishes a batch under the next ids, all or nothing.
    fn append(&self, batch: Batch) -> BoxFuture<'_, Result<Appended, LogError>>;

    /// Up to `max` events after `after` when [`read_with`](EventLog::read_with)
    /// found the cursor older than what is in memory: a shared log reads
    /// them from its store. The embedded log holds nothing more.
    fn fetch(&self, _after: u64, _max: usize) -> BoxFuture<'_, Result<Vec<Entry>, Miss>> {
        let expired = Expired {
            oldest: self.oldest(),
            head: self.head(),
        };
        Box::pin(std::future::ready(Err(Miss::Expired(expired))))
    }

    /// Waits until this log holds `id` when its store does (a node of a
    /// shared log following a little behind the node a client came from);
    /// false when `id` is past the head everywhere; [`Miss::Unavailable`]
    /// when that cannot be told now. The embedded log answers at once.
    fn reach(&self, id: u64) -> BoxFuture<'_, Result<bool, Miss>> {
        Box::pin(std::future::ready(Ok(id <= self.head())))
    }

    /// What `/healthz` says of the store.
    fn status(&self) -> LogStatus {
        LogStatus {
            kind: "memory",
            connected: true,
        }
    }
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
