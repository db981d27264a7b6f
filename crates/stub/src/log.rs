//! The event log: append-only, ids gap-free from 1, bounded retention, and an
//! optional append-only journal file so events survive a restart.
//!
//! Events are stored encoded (their JSON object, once), so serving a stream
//! is copying bytes, not serializing. Readers wait for new events on a
//! `watch` of the head id.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use wire::{Event, Payload};

/// One stored event.
#[derive(Debug)]
pub struct Entry {
    pub id: u64,
    pub kind: String,
    /// The event's JSON object (`wire::Event::to_json`), `pub_us` included.
    pub json: String,
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

#[derive(Debug)]
struct Inner {
    events: VecDeque<Entry>,
    head: u64,
    retention: usize,
    /// Fixture events appended so far (the replay resumes after them).
    fixture_done: usize,
}

impl Inner {
    fn oldest(&self) -> u64 {
        self.events.front().map_or(self.head + 1, |e| e.id)
    }
}

/// Where appended events go before anyone can see them: the journal file,
/// or a test double. `write` returns once the records are durable.
pub trait Journal: Send + 'static {
    fn write(&mut self, source: Source, entries: &[Entry]) -> Result<(), LogError>;
}

/// The event log; cheap to clone (all clones are the same log).
#[derive(Clone)]
pub struct Log(Arc<Shared>);

struct Shared {
    /// What readers see. Held only to copy entries in or out, never across
    /// disk work, so streams do not wait behind an fsync.
    inner: RwLock<Inner>,
    head: watch::Sender<u64>,
    /// Serializes appends and fixes their ids. Held across the journal
    /// write, so ids stay gap-free and in journal order; readers never take it.
    writer: Mutex<Writer>,
    /// Whether `writer` holds a journal: known without taking the lock, so an
    /// async caller knows whether it must move the append to a blocking thread.
    journaled: bool,
}

struct Writer {
    /// The last id given out (and written, when there is a journal).
    head: u64,
    journal: Option<Box<dyn Journal>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read_lock();
        f.debug_struct("Log")
            .field("head", &inner.head)
            .field("oldest", &inner.oldest())
            .field("journaled", &self.0.journaled)
            .finish()
    }
}

impl Log {
    /// An empty log keeping the newest `retention` events in memory.
    pub fn new(retention: usize) -> Log {
        Log::build(Inner::empty(retention), None)
    }

    /// An empty log whose appends go to `journal` before they are published.
    pub fn with_journal(retention: usize, journal: impl Journal) -> Log {
        Log::build(Inner::empty(retention), Some(Box::new(journal)))
    }

    fn build(inner: Inner, journal: Option<Box<dyn Journal>>) -> Log {
        let head = inner.head;
        Log(Arc::new(Shared {
            inner: RwLock::new(inner),
            head: watch::channel(head).0,
            journaled: journal.is_some(),
            writer: Mutex::new(Writer { head, journal }),
        }))
    }

    /// A log backed by `dir/events.jsonl`: what the file holds is loaded
    /// (ids checked gap-free), and every later append is written and synced
    /// to disk before it is published.
    pub fn open(dir: &Path, retention: usize) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let path = dir.join("events.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let mut inner = Inner::empty(retention);
        let good_len = load(&mut inner, &path, &file)?;
        if good_len < file.metadata().map_err(|e| LogError::io(&path, e))?.len() {
            // A torn last line from a crash mid-write: drop it.
            tracing::warn!(path = %path.display(), good_len, "truncating a torn last journal line");
            file.set_len(good_len).map_err(|e| LogError::io(&path, e))?;
            file.seek(io::SeekFrom::End(0))
                .map_err(|e| LogError::io(&path, e))?;
        }
        Ok(Log::build(inner, Some(Box::new(FileJournal { path, file }))))
    }

    /// The newest id; 0 when nothing was ever published.
    pub fn head(&self) -> u64 {
        self.read_lock().head
    }

    /// The oldest id still held; `head + 1` when none is.
    pub fn oldest(&self) -> u64 {
        self.read_lock().oldest()
    }

    /// Fixture events published so far.
    pub fn fixture_done(&self) -> usize {
        self.read_lock().fixture_done
    }

    /// A receiver that changes whenever the head moves.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.head.subscribe()
    }

    /// Publishes payloads under the next ids, stamped `pub_us`, and returns
    /// the ids. With a journal, the records are written and synced first (on
    /// a blocking thread, not the caller's): an event is on disk before any
    /// reader can see it. All or nothing: on a journal error nothing is
    /// published and no id is used up. Without a journal it completes
    /// without yielding or spawning, so the simulation stays deterministic.
    pub async fn append(
        &self,
        source: Source,
        payloads: &[Payload],
        pub_us: u64,
    ) -> Result<std::ops::RangeInclusive<u64>, LogError> {
        if !self.0.journaled {
            return self.append_blocking(source, payloads, pub_us);
        }
        let log = self.clone();
        let payloads = payloads.to_vec();
        tokio::task::spawn_blocking(move || log.append_blocking(source, &payloads, pub_us))
            .await
            .map_err(|e| LogError::Interrupted {
                reason: e.to_string(),
            })?
    }

    /// [`append`](Log::append) on the calling thread: it blocks for the
    /// journal write when there is one.
    fn append_blocking(
        &self,
        source: Source,
        payloads: &[Payload],
        pub_us: u64,
    ) -> Result<std::ops::RangeInclusive<u64>, LogError> {
        let mut writer = self.0.writer.lock().unwrap_or_else(|p| p.into_inner());
        let first = writer.head + 1;
        let entries: Vec<Entry> = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let event = Event {
                    id: first + i as u64,
                    pub_us: Some(pub_us),
                    payload: payload.clone(),
                };
                Entry {
                    id: event.id,
                    kind: payload.kind().to_owned(),
                    json: event.to_json(),
                }
            })
            .collect();
        if let Some(journal) = writer.journal.as_mut() {
            journal.write(source, &entries)?;
        }
        let last = first + entries.len() as u64 - 1;
        writer.head = writer.head.max(last);
        let head = writer.head;
        {
            let mut inner = self.0.inner.write().unwrap_or_else(|p| p.into_inner());
            if source == Source::Fixture {
                inner.fixture_done += entries.len();
            }
            inner.head = head;
            inner.events.extend(entries);
            let excess = inner.events.len().saturating_sub(inner.retention);
            inner.events.drain(..excess);
        }
        // Still under the writer lock, so the watched head only moves forward.
        self.0.head.send_replace(head);
        Ok(first..=last)
    }

    /// Calls `f` with up to `max` events after `after`, in order, under one
    /// read lock (so a stream encodes straight from the log). Returns the
    /// last id passed to `f` (or `after` when none was).
    pub fn read_with(&self, after: u64, max: usize, mut f: impl FnMut(&Entry)) -> Result<u64, Expired> {
        let inner = self.read_lock();
        let oldest = inner.oldest();
        // `oldest` is at least 1, so this cannot overflow, whatever cursor a
        // client sends (`after + 1` would, at u64::MAX).
        if after < oldest - 1 {
            return Err(Expired {
                oldest,
                head: inner.head,
            });
        }
        if after >= inner.head {
            return Ok(after);
        }
        // Here oldest - 1 <= after < head, so neither side overflows.
        let skip = (after - (oldest - 1)) as usize;
        let mut last = after;
        for entry in inner.events.range(skip..).take(max) {
            f(entry);
            last = entry.id;
        }
        Ok(last)
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn empty(retention: usize) -> Inner {
        Inner {
            events: VecDeque::new(),
            head: 0,
            retention: retention.max(1),
            fixture_done: 0,
        }
    }
}

/// Reads the journal into `inner`; returns the length of its well-formed
/// prefix.
fn load(inner: &mut Inner, path: &Path, file: &File) -> Result<u64, LogError> {
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut good_len = 0u64;
    let mut n = 0;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| LogError::io(path, e))?;
        if read == 0 {
            break;
        }
        n += 1;
        let complete = line.ends_with('\n');
        let parsed = parse_record(line.trim_end_matches('\n'));
        let (source, event) = match parsed {
            Ok(r) => r,
            // Only the last line may be torn.
            Err(_) if !complete => break,
            Err(reason) => {
                return Err(LogError::Corrupt {
                    path: path.to_owned(),
                    line: n,
                    reason,
                });
            }
        };
        if event.id != inner.head + 1 {
            return Err(LogError::Corrupt {
                path: path.to_owned(),
                line: n,
                reason: format!("id {} after {}: ids must be gap-free", event.id, inner.head),
            });
        }
        if !complete {
            break;
        }
        good_len += read as u64;
        inner.head = event.id;
        if source == Source::Fixture {
            inner.fixture_done += 1;
        }
        inner.events.push_back(Entry {
            id: event.id,
            kind: event.payload.kind().to_owned(),
            json: event.to_json(),
        });
        if inner.events.len() > inner.retention {
            inner.events.pop_front();
        }
    }
    Ok(good_len)
}

fn parse_record(line: &str) -> Result<(Source, Event), String> {
    let (tag, json) = line.split_once(' ').ok_or("no source tag")?;
    let source = match tag {
        "f" => Source::Fixture,
        "i" => Source::Ingest,
        other => return Err(format!("unknown source tag {other:?}")),
    };
    let event = Event::from_json(json).map_err(|e| e.to_string())?;
    Ok((source, event))
}

/// The append-only file: one line per event, `f <json>` or `i <json>`.
#[derive(Debug)]
struct FileJournal {
    path: PathBuf,
    file: File,
}

impl Journal for FileJournal {
    fn write(&mut self, source: Source, entries: &[Entry]) -> Result<(), LogError> {
        let tag = match source {
            Source::Fixture => "f ",
            Source::Ingest => "i ",
        };
        let mut buf = String::new();
        for e in entries {
            buf.push_str(tag);
            buf.push_str(&e.json);
            buf.push('\n');
        }
        self.file
            .write_all(buf.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| LogError::io(&self.path, e))
    }
}

/// The log's one error type: the journal could not be read or written.
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
