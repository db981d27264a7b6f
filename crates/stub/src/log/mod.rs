//! The event log: append-only, ids gap-free from 1 within one [`Epoch`],
//! bounded retention in memory, and an optional journal so the log (and its
//! epoch) survives a restart.
//!
//! [`EventLog`] is what the server needs of a log; [`Log`] is the embedded
//! one (memory, plus a journal on a [`Disk`] when durable), [`NodeLog`] a
//! wire node's view of a shared log (`shared`, JetStream). Events are
//! stored encoded (their JSON object, once), so serving a stream is copying
//! bytes, not serializing; the same id in the same epoch is always the same
//! bytes, `pub_us` included (a restarted journal serves what it wrote).
//! Readers wait for new events on the head's [`HeadWatch`]; both logs keep
//! the newest events in a `window::Window`.

mod api;
mod head;
mod index;
mod jetstream;
mod journal;
mod keys;
mod shared;
mod window;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use futures_util::future::BoxFuture;
use wire::{Epoch, Event};

pub use api::{Appended, Batch, Entry, EventLog, Expired, FixtureAt, LogError, LogStatus, Miss, Source};
pub use head::{HeadWatch, Interest};
pub use index::{Scan, Topic};
pub use jetstream::{JetStream, JetStreamOptions};
pub use journal::{Disk, FileDisk};
pub use keys::{BadKey, IdempotencyKey, KeyWindow, MAX_KEY_LEN};
pub use shared::{Ack, LogService, MemoryService, NodeLog, NodeOptions, Record, ServiceInfo, Stored, Tag};

pub(crate) use keys::digest;

use journal::Journal;
use keys::{Keys, Lookup};
use window::Window;

#[derive(Debug)]
struct Inner {
    window: Window,
    fixture_done: usize,
}

impl Inner {
    fn empty(retention: usize) -> Inner {
        Inner {
            window: Window::new(0, retention),
            fixture_done: 0,
        }
    }

    fn push(&mut self, source: Source, entries: Vec<Entry>) {
        if source == Source::Fixture {
            self.fixture_done += entries.len();
        }
        self.window.extend(entries);
    }
}

/// The embedded log; cheap to clone (all clones are the same log).
#[derive(Clone)]
pub struct Log(Arc<Shared>);

struct Shared {
    epoch: Epoch,
    /// What readers see. Held only to copy entries in or out, never across
    /// disk work, so streams do not wait behind an fsync.
    inner: RwLock<Inner>,
    head: HeadWatch,
    /// Serializes appends and fixes their ids. Held across the journal
    /// write, so ids stay gap-free and in journal order; readers never take it.
    writer: Mutex<Writer>,
    /// Whether an append moves to tokio's blocking pool (a journal on a real
    /// disk) or runs on the caller's thread: known without taking the lock.
    offload: bool,
    durable: bool,
}

struct Writer {
    /// The last id given out (and written, when there is a journal).
    head: u64,
    journal: Option<Journal>,
    keys: Keys,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read_lock();
        f.debug_struct("Log")
            .field("epoch", &self.0.epoch)
            .field("head", &inner.window.head())
            .field("oldest", &inner.window.oldest())
            .field("offload", &self.0.offload)
            .finish()
    }
}

impl Log {
    /// An empty log that lives only in memory, keeping the newest
    /// `retention` events. `epoch` must be new (drawn from randomness the
    /// caller owns): this log's ids are not the ids of any earlier log.
    pub fn new(retention: usize, epoch: Epoch) -> Log {
        Log::in_memory(retention, epoch, KeyWindow::default())
    }

    /// [`Log::new`] remembering idempotency keys for `keys`.
    pub fn in_memory(retention: usize, epoch: Epoch, keys: KeyWindow) -> Log {
        Log::build(epoch, Inner::empty(retention), None, Keys::new(keys), false)
    }

    /// A durable log in `dir/events.jsonl` (see [`Log::open_on`]).
    pub fn open(dir: &Path, retention: usize, fresh: Epoch, keys: KeyWindow) -> Result<Log, LogError> {
        Log::open_on(Box::new(FileDisk::open(dir)?), retention, fresh, keys)
    }

    /// A durable log on `disk`: what it holds is loaded (checksums checked,
    /// ids gap-free, a torn last line cut) under the epoch it was created
    /// with; a new one is created under `fresh`. Every later append is
    /// written and synced before it is published, on tokio's blocking pool.
    pub fn open_on(
        disk: Box<dyn Disk>,
        retention: usize,
        fresh: Epoch,
        window: KeyWindow,
    ) -> Result<Log, LogError> {
        Log::load(disk, retention, fresh, window, true)
    }

    /// [`Log::open_on`] for a disk that never blocks (the simulation's, in
    /// memory): appends run on the caller's thread and complete without
    /// yielding, like the memory log's, so no thread races a simulated clock.
    pub fn open_inline(
        disk: Box<dyn Disk>,
        retention: usize,
        fresh: Epoch,
        window: KeyWindow,
    ) -> Result<Log, LogError> {
        Log::load(disk, retention, fresh, window, false)
    }

    fn load(
        disk: Box<dyn Disk>,
        retention: usize,
        fresh: Epoch,
        window: KeyWindow,
        offload: bool,
    ) -> Result<Log, LogError> {
        let mut inner = Inner::empty(retention);
        let mut keys = Keys::new(window);
        let (journal, epoch) = Journal::open(disk, fresh, |record: journal::Record| {
            if let (Some((key, digest)), Some(first), Some(last)) =
                (record.key, record.entries.first(), record.entries.last())
            {
                keys.record(key, first.id..=last.id, digest, record.at_us);
            }
            inner.push(record.source, record.entries);
        })?;
        Ok(Log::build(epoch, inner, Some(journal), keys, offload))
    }

    fn build(epoch: Epoch, inner: Inner, journal: Option<Journal>, keys: Keys, offload: bool) -> Log {
        let head = inner.window.head();
        Log(Arc::new(Shared {
            epoch,
            inner: RwLock::new(inner),
            head: HeadWatch::new(head),
            offload,
            durable: journal.is_some(),
            writer: Mutex::new(Writer { head, journal, keys }),
        }))
    }

    /// [`EventLog::append`] on the calling thread: it blocks for the journal
    /// write when there is one.
    fn append_blocking(&self, batch: Batch) -> Result<Appended, LogError> {
        let mut writer = self.0.writer.lock().unwrap_or_else(|p| p.into_inner());
        let digest = batch.key.as_ref().map(|_| keys::digest(&batch.payloads));
        if let (Some(key), Some(digest)) = (&batch.key, digest) {
            match writer.keys.lookup(key, digest, batch.pub_us) {
                Lookup::New => {}
                Lookup::Replay(ids) => return Ok(Appended { ids, replayed: true }),
                Lookup::Reused => {
                    return Err(LogError::KeyReused {
                        key: key.as_str().to_owned(),
                    });
                }
            }
        }
        let first = writer.head + 1;
        let Batch {
            source,
            key,
            payloads,
            pub_us,
            ..
        } = batch;
        let entries: Vec<Entry> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let event = Event {
                    id: first + i as u64,
                    pub_us: Some(pub_us),
                    prev: None,
                    payload,
                };
                let entry = Entry::of(&event, event.to_json());
                // Rendered here, once, not by each connection.
                entry.sse(self.0.epoch);
                entry
            })
            .collect();
        if let Some(journal) = writer.journal.as_mut() {
            let keyed = key.as_ref().zip(digest);
            journal.write(&journal::encode(source, keyed, pub_us, &entries))?;
        }
        let last = first + entries.len() as u64 - 1;
        writer.head = last;
        if let Some((key, digest)) = key.zip(digest) {
            writer.keys.record(key, first..=last, digest, pub_us);
        }
        let topics: Vec<Topic> = entries.iter().filter_map(|e| e.topic.clone()).collect();
        self.0
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(source, entries);
        // Still under the writer lock, so the watched head only moves forward.
        self.0.head.set_with(last, &mut topics.iter());
        Ok(Appended {
            ids: first..=last,
            replayed: false,
        })
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventLog for Log {
    fn epoch(&self) -> Epoch {
        self.0.epoch
    }

    fn head(&self) -> u64 {
        self.read_lock().window.head()
    }

    fn oldest(&self) -> u64 {
        self.read_lock().window.oldest()
    }

    fn fixture_done(&self) -> usize {
        self.read_lock().fixture_done
    }

    fn watch(&self) -> HeadWatch {
        self.0.head.clone()
    }

    fn status(&self) -> LogStatus {
        LogStatus {
            kind: if self.0.durable { "journal" } else { "memory" },
            connected: true,
        }
    }

    fn read_with(&self, after: u64, max: usize, f: &mut dyn FnMut(&Entry)) -> Result<u64, Expired> {
        self.read_lock().window.read_with(after, max, f)
    }

    fn read_filtered(
        &self,
        after: u64,
        filter: &wire::Filter,
        max: usize,
        f: &mut dyn FnMut(&Entry, u64),
    ) -> Result<Scan, Expired> {
        self.read_lock().window.read_filtered(after, filter, max, f)
    }

    /// With a journal, the record is written and synced first, on a
    /// blocking thread (not the caller's): an event is on disk before any
    /// reader can see it. On a journal error nothing is published, no id is
    /// used up, and the journal is as it was. Without a journal (or opened
    /// with [`Log::open_inline`]) it completes without yielding or spawning,
    /// so the simulation stays deterministic.
    fn append(&self, batch: Batch) -> BoxFuture<'_, Result<Appended, LogError>> {
        if batch.payloads.is_empty() {
            return Box::pin(std::future::ready(Err(LogError::Empty)));
        }
        if !self.0.offload {
            return Box::pin(std::future::ready(self.append_blocking(batch)));
        }
        let log = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || log.append_blocking(batch))
                .await
                .map_err(|e| LogError::Interrupted {
                    reason: e.to_string(),
                })?
        })
    }
}
