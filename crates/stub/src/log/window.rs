//! The newest events in memory, in id order, up to a retention: what the
//! embedded log and a shared log's node both serve their readers from.

use std::collections::VecDeque;

use wire::Filter;

use super::index::{Index, Scan};
use super::{Entry, Expired};

#[derive(Debug)]
pub(crate) struct Window {
    events: VecDeque<Entry>,
    /// The ids of `events` by topic, and what has left them.
    index: Index,
    /// The newest id taken in (it may have left the window since).
    head: u64,
    retention: usize,
}

impl Window {
    /// An empty window whose next event is `head + 1`.
    pub(crate) fn new(head: u64, retention: usize) -> Window {
        Window {
            events: VecDeque::new(),
            index: Index::new(head + 1),
            head,
            retention: retention.max(1),
        }
    }

    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The oldest id held; `head + 1` when none is.
    pub(crate) fn oldest(&self) -> u64 {
        self.events.front().map_or(self.head + 1, |e| e.id)
    }

    /// Takes in an event past the head (the next id, or a later one after
    /// [`clear`](Window::clear)); [`trim`](Window::trim) after a batch.
    pub(crate) fn push(&mut self, entry: Entry) {
        self.head = entry.id;
        if let Some(topic) = &entry.topic {
            self.index.push(entry.id, topic);
        }
        self.events.push_back(entry);
    }

    /// Forgets what is held: the next event pushed, `next`, starts the window.
    pub(crate) fn clear(&mut self, next: u64) {
        self.events.clear();
        self.index.clear(next);
    }

    /// Drops the oldest events past the retention.
    pub(crate) fn trim(&mut self) {
        let excess = self.events.len().saturating_sub(self.retention);
        for entry in self.events.drain(..excess) {
            if let Some(topic) = &entry.topic {
                self.index.pop(entry.id, topic);
            }
        }
    }

    /// Takes in a batch of consecutive events and trims.
    pub(crate) fn extend(&mut self, entries: Vec<Entry>) {
        entries.into_iter().for_each(|e| self.push(e));
        self.trim();
    }

    /// Calls `f` with up to `max` events after `after`, in order; returns
    /// the last id passed to `f` (or `after` when none was). A cursor older
    /// than the window is [`Expired`].
    pub(crate) fn read_with(
        &self,
        after: u64,
        max: usize,
        f: &mut dyn FnMut(&Entry),
    ) -> Result<u64, Expired> {
        let oldest = self.oldest();
        // `oldest` is at least 1, so this cannot overflow, whatever cursor a
        // client sends (`after + 1` would, at u64::MAX).
        if after < oldest - 1 {
            return Err(Expired {
                oldest,
                head: self.head,
            });
        }
        if after >= self.head {
            return Ok(after);
        }
        // Here oldest - 1 <= after < head, so neither side overflows.
        let skip = (after - (oldest - 1)) as usize;
        let mut last = after;
        for entry in self.events.range(skip..).take(max) {
            f(entry);
            last = entry.id;
        }
        Ok(last)
    }

    /// [`EventLog::read_filtered`](super::EventLog::read_filtered) on what
    /// the window holds. Where the index cannot tell the match before
    /// `after` (a node's window started later), `prev` is `after`: the
    /// reader resumes from its last event, so that still says nothing it
    /// wants lies between.
    pub(crate) fn read_filtered(
        &self,
        after: u64,
        filter: &Filter,
        max: usize,
        f: &mut dyn FnMut(&Entry, u64),
    ) -> Result<Scan, Expired> {
        let oldest = self.oldest();
        if after < oldest - 1 && self.index.lost_after(filter, after) {
            return Err(Expired {
                oldest,
                head: self.head,
            });
        }
        let mut prev = self.index.last_match(filter, after).unwrap_or(after);
        if after >= self.head {
            return Ok(Scan { scanned: after, prev });
        }
        let end = self.index.matches_after(filter, after, max, &mut |id| {
            // Indexed ids are in the window: oldest <= id <= head.
            if let Some(entry) = self.events.get((id - oldest) as usize) {
                f(entry, prev);
            }
            prev = id;
        });
        Ok(Scan {
            scanned: end.unwrap_or(self.head),
            prev,
        })
    }
}
