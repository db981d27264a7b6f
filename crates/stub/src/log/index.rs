//! The window's ids by topic (kind and symbol, and kind alone), so a
//! filtered reader finds its events by lookup, never by scanning the log's
//! JSON or the events it does not want; and, for each topic, the newest id
//! that has left the window, so the `prev` of a filtered stream is exact
//! even when the previous match is older than memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use wire::{Filter, Kind};

/// An indexed event's topic: a kind that carries a symbol, and the symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub kind: Kind,
    pub symbol: Arc<str>,
}

/// Topics with no id left in the window are remembered (for their
/// `before`) up to this many; past it they are forgotten together, and
/// the index no longer vouches for what lies before its `floor`.
const MAX_IDLE_TOPICS: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct Ids {
    ids: VecDeque<u64>,
    /// The newest id of the topic that has left the window (0: none).
    before: u64,
}

impl Ids {
    /// The newest id at or before `at`: from the window, else `before`
    /// (0: the topic had none); `None` when `at` is older than `before`,
    /// which is not known here.
    fn last_at_or_before(&self, at: u64) -> Option<u64> {
        match self.ids.partition_point(|&id| id <= at) {
            0 if self.before <= at => Some(self.before),
            0 => None,
            n => Some(self.ids[n - 1]),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Index {
    by_symbol: [HashMap<Arc<str>, Ids>; 2],
    by_kind: [Ids; 2],
    /// Every topic's history from this id on is known (1 for a log that
    /// saw every event; a node's window may start later).
    floor: u64,
    idle: usize,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Tick => 0,
        Kind::News => 1,
    }
}

/// A filtered read's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Looked through up to here: every match up to it was passed on.
    pub scanned: u64,
    /// The last match at or before `scanned`.
    pub prev: u64,
}

impl Index {
    pub(crate) fn new(floor: u64) -> Index {
        Index {
            by_symbol: Default::default(),
            by_kind: Default::default(),
            floor: floor.max(1),
            idle: 0,
        }
    }

    /// Forgets everything: ids from `floor` on will be pushed.
    pub(crate) fn clear(&mut self, floor: u64) {
        *self = Index::new(floor);
    }

    pub(crate) fn push(&mut self, id: u64, topic: &Topic) {
        let k = slot(topic.kind);
        self.by_kind[k].ids.push_back(id);
        match self.by_symbol[k].get_mut(&*topic.symbol) {
            Some(ids) => {
                if ids.ids.is_empty() {
                    self.idle -= 1;
                }
                ids.ids.push_back(id);
            }
            None => {
                let ids = Ids {
                    ids: VecDeque::from([id]),
                    before: 0,
                };
                self.by_symbol[k].insert(topic.symbol.clone(), ids);
            }
        }
    }

    /// The oldest event, `id`, left the window.
    pub(crate) fn pop(&mut self, id: u64, topic: &Topic) {
        let k = slot(topic.kind);
        for ids in [
            Some(&mut self.by_kind[k]),
            self.by_symbol[k].get_mut(&*topic.symbol),
        ]
        .into_iter()
        .flatten()
        {
            if ids.ids.front() == Some(&id) {
                ids.ids.pop_front();
                ids.before = id;
            }
        }
        if self.by_symbol[k]
            .get(&*topic.symbol)
            .is_some_and(|i| i.ids.is_empty())
        {
            self.idle += 1;
        }
        if self.idle > MAX_IDLE_TOPICS {
            for map in &mut self.by_symbol {
                map.retain(|_, ids| !ids.ids.is_empty());
            }
            self.idle = 0;
            self.floor = id + 1;
        }
    }

    /// The id lists a filter reads (none for the full stream, which is not
    /// read through the index).
    fn lists<'a>(&'a self, filter: &Filter) -> Vec<&'a Ids> {
        let kinds: Vec<Kind> = if filter.kinds.is_empty() {
            Kind::ALL.to_vec()
        } else {
            filter.kinds.iter().copied().collect()
        };
        if filter.symbols.is_empty() {
            return kinds.iter().map(|&k| &self.by_kind[slot(k)]).collect();
        }
        let mut out = Vec::new();
        for s in &filter.symbols {
            for &k in &kinds {
                if let Some(ids) = self.by_symbol[slot(k)].get(s.as_str()) {
                    out.push(ids);
                }
            }
        }
        out
    }

    /// The last match at or before `at`; `None` when a topic's history
    /// that far back is not known here.
    pub(crate) fn last_match(&self, filter: &Filter, at: u64) -> Option<u64> {
        let mut best = 0;
        for ids in self.lists(filter) {
            best = best.max(ids.last_at_or_before(at)?);
        }
        (best >= self.floor || self.floor == 1).then_some(best)
    }

    /// True when a match after `after` has left the window (or may have:
    /// the index does not know that far back).
    pub(crate) fn lost_after(&self, filter: &Filter, after: u64) -> bool {
        after + 1 < self.floor || self.lists(filter).iter().any(|ids| ids.before > after)
    }

    /// Calls `f` with the ids of up to `max` matches after `after`, in
    /// order; returns the last id passed, or `None` when there were fewer
    /// than `max` (everything to the head was looked through).
    pub(crate) fn matches_after(
        &self,
        filter: &Filter,
        after: u64,
        max: usize,
        f: &mut dyn FnMut(u64),
    ) -> Option<u64> {
        let lists = self.lists(filter);
        let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
        for (i, ids) in lists.iter().enumerate() {
            let at = ids.ids.partition_point(|&id| id <= after);
            if let Some(&id) = ids.ids.get(at) {
                heap.push(Reverse((id, i, at)));
            }
        }
        let mut sent = 0;
        while let Some(Reverse((id, i, at))) = heap.pop() {
            if sent == max {
                return Some(id - 1);
            }
            f(id);
            sent += 1;
            if let Some(&next) = lists[i].ids.get(at + 1) {
                heap.push(Reverse((next, i, at + 1)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Entry;
    use crate::log::window::Window;

    /// Events 1..=n: tick of A on odd ids, news of B on multiples of 4,
    /// tick of C otherwise.
    fn window(n: u64, retention: usize) -> Window {
        let mut w = Window::new(0, retention);
        for id in 1..=n {
            let (kind, symbol) = match id {
                _ if id % 2 == 1 => (Kind::Tick, "A"),
                _ if id % 4 == 0 => (Kind::News, "B"),
                _ => (Kind::Tick, "C"),
            };
            let mut e = Entry::new(id, kind.as_str().into(), format!("{{\"id\":{id}}}"));
            e.topic = Some(Topic {
                kind,
                symbol: symbol.into(),
            });
            w.push(e);
            w.trim();
        }
        w
    }

    fn read(w: &Window, q: (&str, &str), after: u64, max: usize) -> Result<(Vec<(u64, u64)>, Scan), u64> {
        let filter = Filter::from_query(Some(q.0), Some(q.1)).unwrap();
        let mut got = Vec::new();
        w.read_filtered(after, &filter, max, &mut |e, prev| got.push((e.id, prev)))
            .map(|scan| (got, scan))
            .map_err(|e| e.oldest)
    }

    #[test]
    fn matches_come_by_lookup_in_order_with_their_prev() {
        let w = window(12, 100);
        let (got, scan) = read(&w, ("A,B", ""), 0, 100).unwrap();
        assert_eq!(
            got,
            [
                (1, 0),
                (3, 1),
                (4, 3),
                (5, 4),
                (7, 5),
                (8, 7),
                (9, 8),
                (11, 9),
                (12, 11)
            ]
        );
        assert_eq!(
            scan,
            Scan {
                scanned: 12,
                prev: 12
            }
        );
        // Kinds alone, and a batch that stops short of the head.
        let (got, scan) = read(&w, ("", "news"), 2, 2).unwrap();
        assert_eq!(got, [(4, 0), (8, 4)]);
        assert_eq!(scan, Scan { scanned: 11, prev: 8 });
        // From a cursor between matches, prev is the match before it.
        let (got, _) = read(&w, ("C", "tick"), 6, 100).unwrap();
        assert_eq!(got, [(10, 6)]);
        // A symbol never seen: nothing, looked through to the head.
        let (got, scan) = read(&w, ("Z", ""), 0, 100).unwrap();
        assert_eq!((got, scan), (vec![], Scan { scanned: 12, prev: 0 }));
    }

    #[test]
    fn prev_is_exact_after_the_match_before_left_memory() {
        // Ids 7..=12 held; B's 4 has left.
        let w = window(12, 6);
        let (got, _) = read(&w, ("B", ""), 6, 100).unwrap();
        assert_eq!(got, [(8, 4), (12, 8)]);
    }

    #[test]
    fn an_old_cursor_expires_only_when_a_match_after_it_left_memory() {
        let w = window(12, 6);
        assert_eq!(w.oldest(), 7);
        // B's 4 left the window after cursor 3: lost.
        assert_eq!(read(&w, ("B", ""), 3, 100).unwrap_err(), 7);
        // Nothing of B left after 4: a reader at 4 has lost nothing.
        let (got, _) = read(&w, ("B", ""), 4, 100).unwrap();
        assert_eq!(got, [(8, 4), (12, 8)]);
        // The full stream from 4 has lost 5 and 6.
        assert!(w.read_with(4, 100, &mut |_| {}).is_err());
    }

    #[test]
    fn a_window_that_started_late_does_not_vouch_for_what_came_before() {
        // A node's window: it began after 100.
        let mut w = Window::new(100, 10);
        let mut e = Entry::new(101, "tick".into(), "{}".into());
        e.topic = Some(Topic {
            kind: Kind::Tick,
            symbol: "A".into(),
        });
        w.push(e);
        // The match before 101 is unknown: prev is the cursor.
        let (got, _) = read(&w, ("A", ""), 100, 10).unwrap();
        assert_eq!(got, [(101, 100)]);
        assert_eq!(read(&w, ("A", ""), 50, 10).unwrap_err(), 101);
    }
}
