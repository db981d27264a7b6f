//! A log kept by a shared service (NATS JetStream in production, a model of
//! it in the simulation), so that several wire nodes serve one stream.
//!
//! The service holds the one ordered, durable sequence. Its sequence
//! number is the event id, so every node names each event alike, and its
//! identity is the epoch, so a client resumes on any node. Each node
//! follows the sequence with one subscription into a window of recent
//! events, from which every connection is served: a connection never costs
//! the service anything. A cursor older than the window is read from the
//! service directly.

mod memory;
mod node;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::{Map, Value};
use wire::{Epoch, Event, Payload};

use super::{Entry, LogError};

pub use memory::MemoryService;
pub use node::{NodeLog, NodeOptions};

/// What a record is, kept beside its bytes (JetStream headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Ingested without a key, or a keyed batch's records after the first.
    Ingest,
    /// The first record of a batch ingested under an idempotency key.
    Keyed { key: String, digest: u32, count: u32 },
    /// A fixture's line (0-based).
    Fixture { fixture: u32, line: u64 },
}

impl Tag {
    /// The id the service's duplicate window knows the record by. A fixture
    /// line's is its place in its fixture, so a second node replaying the
    /// same fixture stores nothing twice; a keyed batch's first record's is
    /// the key, so a retry stores nothing twice.
    pub fn msg_id(&self) -> Option<String> {
        match self {
            Tag::Ingest => None,
            Tag::Keyed { key, .. } => Some(format!("key:{key}")),
            Tag::Fixture { fixture, line } => Some(format!("fx:{fixture:08x}:{line}")),
        }
    }
}

/// One record: an event without its id (the service's sequence number is
/// the id), and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tag: Tag,
    /// The event's JSON object without `id`.
    pub body: Bytes,
}

impl Record {
    /// A payload published at `pub_us`.
    pub fn new(tag: Tag, payload: &Payload, pub_us: u64) -> Record {
        let mut map = match serde_json::to_value(payload) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        map.insert("pub_us".into(), pub_us.into());
        Record {
            tag,
            body: Bytes::from(Value::Object(map).to_string()),
        }
    }
}

/// A record as the service stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub record: Record,
}

impl Stored {
    /// The entry every node serves for it: the same bytes on every node. A
    /// body that is not an event (written to the stream by something else)
    /// is served as an event of kind `undecodable`, so ids stay gap-free
    /// and the reader sees what happened.
    pub fn entry(&self) -> Entry {
        let event = match decode(self.seq, &self.record.body) {
            Ok(event) => event,
            Err(reason) => {
                tracing::warn!(seq = self.seq, %reason, "a record in the log service is not an event");
                let fields = [("error".to_owned(), Value::from(reason))].into_iter().collect();
                Event {
                    id: self.seq,
                    pub_us: None,
                    prev: None,
                    payload: Payload::Other {
                        kind: "undecodable".into(),
                        fields,
                    },
                }
            }
        };
        Entry::of(&event, event.to_json())
    }
}

fn decode(seq: u64, body: &[u8]) -> Result<Event, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let mut map: Map<String, Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    map.insert("id".into(), seq.into());
    Event::from_map(map).map_err(|e| e.to_string())
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Stored under `first..=last`: contiguous for an atomic append; for a
    /// non-atomic one, the span of the records stored now or before.
    Stored { first: u64, last: u64 },
    /// An atomic append whose first record's id the duplicate window knew:
    /// nothing was stored.
    Duplicate,
}

/// The service's view of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The log's identity (for JetStream, its stream's name and creation
    /// time): a re-created log is a new epoch.
    pub epoch: Epoch,
    /// The oldest sequence number held; `last + 1` when none is.
    pub first: u64,
    /// The newest; 0 when nothing was ever stored.
    pub last: u64,
    /// Fixture lines stored so far: the last fixture record's line + 1.
    pub fixture_next: u64,
}

/// A shared, ordered, durable log service with a duplicate window.
pub trait LogService: Send + Sync + 'static {
    /// Its name in `/healthz` (`jetstream`, `model`).
    fn kind(&self) -> &'static str;
    fn info(&self) -> BoxFuture<'_, Result<ServiceInfo, LogError>>;
    /// Stores records in order. Atomic: all under consecutive numbers, or
    /// none ([`Ack::Duplicate`] when the first record's id is in the
    /// duplicate window). Not atomic: each on its own; one whose id is in
    /// the window is not stored again.
    fn append(&self, records: Vec<Record>, atomic: bool) -> BoxFuture<'_, Result<Ack, LogError>>;
    /// Every record after `after`, in order, as they are stored. It ends,
    /// or yields an error, when the service is lost; the node follows again
    /// from where it got to.
    fn follow(&self, after: u64) -> BoxStream<'static, Result<Stored, LogError>>;
    /// One record; `None` once the service no longer holds it.
    fn get(&self, seq: u64) -> BoxFuture<'_, Result<Option<Stored>, LogError>>;
    /// Whether the service can be reached now.
    fn connected(&self) -> bool;
    /// The most records one atomic append takes.
    fn max_atomic(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_served_with_its_sequence_number_as_id_and_the_same_bytes_everywhere() {
        let payload = Payload::from_json(r#"{"headline":"x","kind":"news","provider":"p","score":0.39,"symbol":"MSFT","ts_utc":"2026-03-02T14:30:18.666Z"}"#)
            .unwrap();
        let record = Record::new(Tag::Ingest, &payload, 7);
        let entry = Stored { seq: 42, record }.entry();
        let expected = Event {
            id: 42,
            pub_us: Some(7),
            prev: None,
            payload,
        };
        assert_eq!(entry.id, 42);
        assert_eq!(entry.kind, "news");
        assert_eq!(entry.json, expected.to_json());
    }

    #[test]
    fn a_foreign_record_is_served_as_undecodable_under_its_id() {
        let record = Record {
            tag: Tag::Ingest,
            body: Bytes::from_static(b"not json"),
        };
        let entry = Stored { seq: 3, record }.entry();
        assert_eq!((entry.id, entry.kind.as_str()), (3, "undecodable"));
        assert!(entry.json.contains("\"id\":3"), "{}", entry.json);
    }

    #[test]
    fn fixture_lines_and_keys_have_ids_and_plain_ingest_has_none() {
        let line = Tag::Fixture {
            fixture: 0xab,
            line: 9,
        };
        assert_eq!(line.msg_id().as_deref(), Some("fx:000000ab:9"));
        let keyed = Tag::Keyed {
            key: "k1".into(),
            digest: 1,
            count: 2,
        };
        assert_eq!(keyed.msg_id().as_deref(), Some("key:k1"));
        assert_eq!(Tag::Ingest.msg_id(), None);
    }
}
