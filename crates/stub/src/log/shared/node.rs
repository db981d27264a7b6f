//! One wire node's view of a shared log: the window its follower fills,
//! the keys it has seen, and appends through the service.

use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use wire::Epoch;

use super::{Ack, LogService, Record, Stored, Tag};
use crate::log::window::Window;
use crate::log::{
    Appended, Batch, Entry, EventLog, Expired, HeadWatch, IdempotencyKey, LogError, LogStatus, Miss, keys,
};

/// How a node keeps its window.
#[derive(Debug, Clone, Copy)]
pub struct NodeOptions {
    /// Events kept in memory for readers.
    pub retention: usize,
    /// Idempotency keys remembered (as the embedded log's `max_keys`).
    pub max_keys: usize,
    /// The first wait before following again after the service was lost;
    /// it doubles up to 2 s.
    pub follow_retry: Duration,
    /// How long an append (and a resume at a cursor this node has not seen
    /// yet) waits for the follower to bring the events into the window.
    pub visible_wait: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            retention: 100_000,
            max_keys: 100_000,
            follow_retry: Duration::from_millis(250),
            visible_wait: Duration::from_secs(5),
        }
    }
}

/// The longest pause between two attempts to follow: a node catches up
/// within this of the service's return.
const FOLLOW_RETRY_MAX: Duration = Duration::from_secs(2);
/// Records taken into the window under one lock and one wakeup, at most.
const CHUNK: usize = 256;

/// A wire node's log on a shared [`LogService`]. Cheap to clone; the
/// follower stops when the last clone is dropped.
#[derive(Clone)]
pub struct NodeLog(Arc<Node>);

struct Node {
    service: Arc<dyn LogService>,
    epoch: Epoch,
    window: RwLock<Window>,
    head: HeadWatch,
    /// The oldest sequence number the service holds, as last seen.
    stored_first: AtomicU64,
    fixture_next: AtomicU64,
    keys: Mutex<KeyIndex>,
    options: NodeOptions,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = self.follower.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Keyed batches seen in the stream: key → (ids, digest), the oldest
/// forgotten first.
#[derive(Default)]
struct KeyIndex {
    ids: HashMap<String, (RangeInclusive<u64>, u32)>,
    order: VecDeque<String>,
}

impl std::fmt::Debug for NodeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLog")
            .field("service", &self.0.service.kind())
            .field("epoch", &self.0.epoch)
            .field("head", &self.0.head.get())
            .finish()
    }
}

impl NodeLog {
    /// Opens the node's view: the service's identity is the epoch, the
    /// window starts `retention` events back from the newest, and this
    /// returns once the follower has brought the window up to the newest
    /// event the service had when asked.
    pub async fn open(service: impl LogService, options: NodeOptions) -> Result<NodeLog, LogError> {
        let service: Arc<dyn LogService> = Arc::new(service);
        let info = service.info().await?;
        let start = info
            .last
            .saturating_sub(options.retention.max(1) as u64)
            .max(info.first.saturating_sub(1));
        let node = Arc::new(Node {
            service: service.clone(),
            epoch: info.epoch,
            window: RwLock::new(Window::new(start, options.retention)),
            head: HeadWatch::new(start),
            stored_first: AtomicU64::new(info.first),
            fixture_next: AtomicU64::new(info.fixture_next),
            keys: Mutex::default(),
            options,
            follower: Mutex::new(None),
        });
        let task = tokio::spawn(follow(Arc::downgrade(&node), service));
        *node.follower.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        if info.last > start {
            node.head.past(info.last - 1).await;
        }
        Ok(NodeLog(node))
    }

    fn window(&self) -> std::sync::RwLockReadGuard<'_, Window> {
        self.0.window.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (a bounded time) for the follower to bring `id` into the window.
    async fn visible(&self, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        let wait = self.0.options.visible_wait;
        tokio::time::timeout(wait, self.0.head.past(id - 1)).await.is_ok()
    }

    async fn append_batch(&self, batch: Batch) -> Result<Appended, LogError> {
        if batch.payloads.is_empty() {
            return Err(LogError::Empty);
        }
        let service = &self.0.service;
        if !service.connected() {
            return Err(LogError::Unavailable {
                reason: format!("{} is not connected", service.kind()),
            });
        }
        let digest = batch.key.as_ref().map(|_| keys::digest(&batch.payloads));
        let (records, atomic) = records(&batch, digest);
        if atomic && records.len() > service.max_atomic() {
            return Err(LogError::TooLarge {
                max: service.max_atomic(),
            });
        }
        match service.append(records, atomic).await? {
            Ack::Stored { first, last } => {
                self.visible(last).await;
                Ok(Appended {
                    ids: first..=last,
                    replayed: false,
                })
            }
            Ack::Duplicate => match (batch.key, digest) {
                (Some(key), Some(digest)) => self.replayed(key, digest).await,
                _ => Err(LogError::Unanswered {
                    reason: "the service called a batch without ids a duplicate".into(),
                }),
            },
        }
    }

    /// The first attempt's ids for a key the service's window knew, once
    /// the follower has seen everything stored so far.
    async fn replayed(&self, key: IdempotencyKey, digest: u32) -> Result<Appended, LogError> {
        let last = self.0.service.info().await?.last;
        self.visible(last).await;
        let keys = self.0.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.ids.get(key.as_str()) {
            Some((ids, seen)) if *seen == digest => Ok(Appended {
                ids: ids.clone(),
                replayed: true,
            }),
            Some(_) => Err(LogError::KeyReused {
                key: key.as_str().to_owned(),
            }),
            None => Err(LogError::KeyForgotten {
                key: key.as_str().to_owned(),
            }),
        }
    }

    async fn fetch_stored(&self, after: u64, max: usize) -> Result<Vec<Entry>, Miss> {
        let end = self.window().oldest();
        if after.saturating_add(1) >= end {
            return Ok(Vec::new());
        }
        let last = after.saturating_add(max.max(1) as u64).min(end - 1);
        let gets = (after + 1..=last).map(|seq| self.0.service.get(seq));
        let mut out = Vec::new();
        for got in futures_util::future::join_all(gets).await {
            match got {
                Ok(Some(stored)) => out.push(stored.entry()),
                Ok(None) if out.is_empty() => {
                    let first = match self.0.service.info().await {
                        Ok(info) => info.first,
                        Err(e) => return Err(Miss::Unavailable(e.to_string())),
                    };
                    self.0.stored_first.store(first, Ordering::Release);
                    return Err(Miss::Expired(Expired {
                        oldest: self.oldest(),
                        head: self.head(),
                    }));
                }
                Err(e) if out.is_empty() => return Err(Miss::Unavailable(e.to_string())),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// The records of a batch, and whether they go in atomically: a fixture's
/// lines go one by one (each has its own id, so a retry or a second
/// replayer stores each once); ingested batches all or nothing.
fn records(batch: &Batch, digest: Option<u32>) -> (Vec<Record>, bool) {
    let count = batch.payloads.len() as u32;
    let records = batch
        .payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let tag = match (batch.fixture_at, &batch.key, digest) {
                (Some(at), _, _) => Tag::Fixture {
                    fixture: at.fixture,
                    line: at.first + i as u64,
                },
                (None, Some(key), Some(digest)) if i == 0 => Tag::Keyed {
                    key: key.as_str().to_owned(),
                    digest,
                    count,
                },
                _ => Tag::Ingest,
            };
            Record::new(tag, payload, batch.pub_us)
        })
        .collect();
    (records, batch.fixture_at.is_none())
}

impl Node {
    /// Takes records from the follower into the window; one wakeup.
    fn take(&self, chunk: Vec<Stored>) {
        // Decoded and rendered before taking the lock readers wait on: once
        // here, not by each connection.
        let chunk: Vec<(Stored, Entry)> = chunk
            .into_iter()
            .map(|stored| {
                let entry = stored.entry();
                entry.sse(self.epoch);
                (stored, entry)
            })
            .collect();
        let topics: Vec<crate::log::Topic> = chunk.iter().filter_map(|(_, e)| e.topic.clone()).collect();
        let mut window = self.window.write().unwrap_or_else(|p| p.into_inner());
        for (stored, entry) in chunk {
            if stored.seq <= window.head() {
                continue; // seen before following again
            }
            if stored.seq != window.head() + 1 {
                // The service dropped records (its retention) before this
                // node saw them: the window restarts here, and older cursors
                // are read from the service, which says they expired.
                tracing::warn!(
                    from = window.head() + 1,
                    to = stored.seq - 1,
                    "the log service no longer holds records this node had not seen"
                );
                window.clear(stored.seq);
            }
            match &stored.record.tag {
                Tag::Keyed { key, digest, count } => {
                    let last = stored.seq + u64::from(*count).max(1) - 1;
                    self.remember(key, stored.seq..=last, *digest);
                }
                Tag::Fixture { line, .. } => {
                    self.fixture_next.fetch_max(line + 1, Ordering::AcqRel);
                }
                Tag::Ingest => {}
            }
            window.push(entry);
        }
        window.trim();
        let head = window.head();
        drop(window);
        self.head.set_with(head, &mut topics.iter());
    }

    fn remember(&self, key: &str, ids: RangeInclusive<u64>, digest: u32) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.ids.insert(key.to_owned(), (ids, digest)).is_none() {
            keys.order.push_back(key.to_owned());
        }
        while keys.order.len() > self.options.max_keys.max(1) {
            if let Some(old) = keys.order.pop_front() {
                keys.ids.remove(&old);
            }
        }
    }
}

/// The node's one subscription: follows the service from the window's
/// head, and again after a loss, with a doubling pause.
async fn follow(node: Weak<Node>, service: Arc<dyn LogService>) {
    let first_retry = match node.upgrade() {
        Some(n) => n.options.follow_retry,
        None => return,
    };
    let mut retry = first_retry;
    loop {
        let Some(after) = node.upgrade().map(|n| n.head.get()) else {
            return;
        };
        let mut records = service.follow(after).ready_chunks(CHUNK);
        while let Some(chunk) = records.next().await {
            let Some(node) = node.upgrade() else {
                return;
            };
            let mut ok = Vec::with_capacity(chunk.len());
            let mut lost = None;
            for item in chunk {
                match item {
                    Ok(stored) => ok.push(stored),
                    Err(e) => {
                        lost = Some(e);
                        break;
                    }
                }
            }
            if !ok.is_empty() {
                node.take(ok);
                retry = first_retry;
            }
            if let Some(e) = lost {
                tracing::warn!(error = %e, "following the log service failed; following again");
                break;
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(FOLLOW_RETRY_MAX);
    }
}

impl EventLog for NodeLog {
    fn epoch(&self) -> Epoch {
        self.0.epoch
    }

    fn head(&self) -> u64 {
        self.window().head()
    }

    fn oldest(&self) -> u64 {
        let window = self.window().oldest();
        window.min(self.0.stored_first.load(Ordering::Acquire).max(1))
    }

    fn fixture_done(&self) -> usize {
        self.0.fixture_next.load(Ordering::Acquire) as usize
    }

    fn watch(&self) -> HeadWatch {
        self.0.head.clone()
    }

    fn read_with(&self, after: u64, max: usize, f: &mut dyn FnMut(&Entry)) -> Result<u64, Expired> {
        self.window().read_with(after, max, f)
    }

    fn read_filtered(
        &self,
        after: u64,
        filter: &wire::Filter,
        max: usize,
        f: &mut dyn FnMut(&Entry, u64),
    ) -> Result<crate::log::Scan, Expired> {
        self.window().read_filtered(after, filter, max, f)
    }

    fn append(&self, batch: Batch) -> BoxFuture<'_, Result<Appended, LogError>> {
        Box::pin(self.append_batch(batch))
    }

    fn fetch(&self, after: u64, max: usize) -> BoxFuture<'_, Result<Vec<Entry>, Miss>> {
        Box::pin(self.fetch_stored(after, max))
    }

    fn reach(&self, id: u64) -> BoxFuture<'_, Result<bool, Miss>> {
        Box::pin(async move {
            if id <= self.head() {
                return Ok(true);
            }
            let last = match self.0.service.info().await {
                Ok(info) => info.last,
                Err(e) => return Err(Miss::Unavailable(e.to_string())),
            };
            if id > last {
                return Ok(false);
            }
            if self.visible(id).await {
                Ok(true)
            } else {
                Err(Miss::Unavailable(format!(
                    "this node has not yet caught up with id {id} of the log"
                )))
            }
        })
    }

    fn status(&self) -> LogStatus {
        LogStatus {
            kind: self.0.service.kind(),
            connected: self.0.service.connected(),
        }
    }
}
