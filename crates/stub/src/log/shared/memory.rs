//! A shared log service in memory: what the wire nodes rely on of NATS
//! JetStream, and nothing more, for tests and for the simulation (which
//! runs several nodes on one, in simulated time). One ordered, durable
//! sequence from 1, gap-free; appends acknowledged after a short simulated
//! delay; atomic appends all or nothing; a duplicate window by record id;
//! followers that see every record in order and are cut when the service
//! goes away; and an outage that keeps what was stored (a restart of the
//! service with its store).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::Notify;
use wire::Epoch;

use super::{Ack, LogService, Record, ServiceInfo, Stored, Tag};
use crate::log::LogError;

/// The service; every clone is the same service (each node holds one).
#[derive(Clone)]
pub struct MemoryService(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    /// Wakes followers: a record stored, or the service gone.
    changed: Notify,
}

struct State {
    epoch: Epoch,
    records: Vec<Record>,
    /// Record id → its sequence number: the duplicate window (the whole
    /// run: longer than any scenario).
    ids: HashMap<String, u64>,
    up: bool,
    /// Bumped at every outage: a follower of an earlier one is cut.
    generation: u64,
    /// Draws the acknowledgement delays (splitmix64).
    rng: u64,
    fixture_next: u64,
}

impl std::fmt::Debug for MemoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryService")
            .field("records", &s.records.len())
            .field("up", &s.up)
            .finish()
    }
}

/// The most records one atomic append takes (JetStream's default).
const MAX_ATOMIC: usize = 1000;

impl MemoryService {
    /// An empty, reachable service with this identity; `seed` draws the
    /// acknowledgement delays.
    pub fn new(epoch: Epoch, seed: u64) -> MemoryService {
        MemoryService(Arc::new(Inner {
            state: Mutex::new(State {
                epoch,
                records: Vec::new(),
                ids: HashMap::new(),
                up: true,
                generation: 0,
                rng: seed,
                fixture_next: 0,
            }),
            changed: Notify::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The service goes away (false) or comes back with its store (true).
    pub fn set_up(&self, up: bool) {
        let mut s = self.lock();
        if s.up && !up {
            s.generation += 1;
        }
        s.up = up;
        drop(s);
        self.0.changed.notify_waiters();
    }

    pub fn is_up(&self) -> bool {
        self.lock().up
    }

    /// Everything stored, in sequence order (for the checks).
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    pub fn epoch(&self) -> Epoch {
        self.lock().epoch
    }

    fn down() -> LogError {
        LogError::Unavailable {
            reason: "the log service (in memory) is down".into(),
        }
    }

    fn store(s: &mut State, record: Record) -> u64 {
        if let Tag::Fixture { line, .. } = record.tag {
            s.fixture_next = s.fixture_next.max(line + 1);
        }
        if let Some(id) = record.tag.msg_id() {
            s.ids.insert(id, s.records.len() as u64 + 1);
        }
        s.records.push(record);
        s.records.len() as u64
    }

    fn append_now(&self, records: Vec<Record>, atomic: bool) -> Result<Ack, LogError> {
        let mut s = self.lock();
        if !s.up {
            return Err(Self::down());
        }
        let ack = if atomic {
            let known = records
                .first()
                .and_then(|r| r.tag.msg_id())
                .is_some_and(|id| s.ids.contains_key(&id));
            if known {
                Ack::Duplicate
            } else {
                let first = s.records.len() as u64 + 1;
                let mut last = first;
                for record in records {
                    last = Self::store(&mut s, record);
                }
                Ack::Stored { first, last }
            }
        } else {
            let (mut first, mut last) = (u64::MAX, 0);
            for record in records {
                let seq = match record.tag.msg_id().and_then(|id| s.ids.get(&id).copied()) {
                    Some(seq) => seq,
                    None => Self::store(&mut s, record),
                };
                first = first.min(seq);
                last = last.max(seq);
            }
            Ack::Stored { first, last }
        };
        drop(s);
        self.0.changed.notify_waiters();
        Ok(ack)
    }
}

impl LogService for MemoryService {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn info(&self) -> BoxFuture<'_, Result<ServiceInfo, LogError>> {
        let s = self.lock();
        let info = if s.up {
            Ok(ServiceInfo {
                epoch: s.epoch,
                first: 1,
                last: s.records.len() as u64,
                fixture_next: s.fixture_next,
            })
        } else {
            Err(Self::down())
        };
        Box::pin(std::future::ready(info))
    }

    /// Stored at once, acknowledged 1 to 4 ms later (a round trip and a
    /// replicated write); an outage meanwhile loses the answer, not the
    /// records, as a real one can.
    fn append(&self, records: Vec<Record>, atomic: bool) -> BoxFuture<'_, Result<Ack, LogError>> {
        let delay = {
            let mut s = self.lock();
            s.rng = s.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Duration::from_millis(1 + (z ^ (z >> 31)) % 4)
        };
        Box::pin(async move {
            let ack = self.append_now(records, atomic)?;
            tokio::time::sleep(delay).await;
            if !self.is_up() {
                return Err(LogError::Unanswered {
                    reason: "the log service (in memory) went down before answering".into(),
                });
            }
            Ok(ack)
        })
    }

    fn follow(&self, after: u64) -> BoxStream<'static, Result<Stored, LogError>> {
        let model = self.clone();
        let generation = self.lock().generation;
        futures_util::stream::unfold(Some(after + 1), move |next| {
            let model = model.clone();
            async move {
                let next = next?;
                loop {
                    let changed = model.0.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    {
                        let s = model.lock();
                        if !s.up || s.generation != generation {
                            return Some((Err(Self::down()), None));
                        }
                        if let Some(record) = s.records.get(next as usize - 1) {
                            let stored = Stored {
                                seq: next,
                                record: record.clone(),
                            };
                            return Some((Ok(stored), Some(next + 1)));
                        }
                    }
                    changed.await;
                }
            }
        })
        .boxed()
    }

    fn get(&self, seq: u64) -> BoxFuture<'_, Result<Option<Stored>, LogError>> {
        let s = self.lock();
        let got = if !s.up {
            Err(Self::down())
        } else {
            Ok(seq
                .checked_sub(1)
                .and_then(|i| s.records.get(i as usize))
                .map(|r| Stored {
                    seq,
                    record: r.clone(),
                }))
        };
        Box::pin(std::future::ready(got))
    }

    fn connected(&self) -> bool {
        self.is_up()
    }

    fn max_atomic(&self) -> usize {
        MAX_ATOMIC
    }
}
