//! The newest events in memory, in id order, up to a retention: what the
//! embedded log and a shared log's node both serve their readers from.

use std::collections::VecDeque;

use super::{Entry, Expired};

#[derive(Debug)]
pub(crate) struct Window {
    events: VecDeque<Entry>,
    /// The newest id taken in (it may have left the window since).
    head: u64,
    retention: usize,
}

impl Window {
    /// An empty window whose next event is `head + 1`.
    pub(crate) fn new(head: u64, retention: usize) -> Window {
        Window {
            events: VecDeque::new(),
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
        self.events.push_back(entry);
    }

    /// Forgets what is held: the next event pushed starts the window.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
    }

    /// Drops the oldest events past the retention.
    pub(crate) fn trim(&mut self) {
        let excess = self.events.len().saturating_sub(self.retention);
        self.events.drain(..excess);
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
}
