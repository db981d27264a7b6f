//! The exactly-once rule as a sans-IO state machine: the last delivered id
//! in, each offered id out as deliver, duplicate or gap; and the repair of a
//! gap from pages of the polling endpoint, whose state stays consistent when
//! a repair fails part-way. No IO, no clock: unit-tested by plain calls.
//!
//! The driver feeds it; nothing else decides what reaches the subscriber.

use std::ops::RangeInclusive;

use wire::Continuity;

/// What to do with an id from a live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The next id: hand it over (the gate has counted it delivered).
    Deliver,
    /// Delivered before: drop it.
    Duplicate,
    /// These ids are missing before it: repair them, then offer it again.
    Gap(RangeInclusive<u64>),
}

/// What to do with an event from a repair page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repaired {
    /// The next id: hand it over.
    Deliver,
    /// Delivered before (pages may overlap what the stream sent).
    Duplicate,
    /// Not the next id (past the repair's end, or after a hole in the page):
    /// dropped; a later page or the stream brings it again.
    Skip,
}

/// The polling page a repair needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The cursor: events after this id.
    pub after: u64,
    /// At most this many.
    pub limit: u64,
}

/// A repair page brought nothing new: fetching it again would loop, so the
/// repair is abandoned. `after` is the last id delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    pub after: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Repair {
    /// The last id the repair must deliver.
    upto: u64,
    /// `last` when the current page was requested, to see progress.
    page_from: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    last: u64,
    repair: Option<Repair>,
}

impl Gate {
    /// Delivers ids after `start_after` (0: from the first).
    pub fn new(start_after: u64) -> Gate {
        Gate {
            last: start_after,
            repair: None,
        }
    }

    /// The last id delivered: the resume cursor.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The ids a repair under way still has to deliver.
    pub fn repairing(&self) -> Option<RangeInclusive<u64>> {
        self.repair.map(|r| self.last + 1..=r.upto)
    }

    /// An event from a stream (or a polling page read as the stream): its
    /// id, and the id of the previous event its stream carries
    /// ([`wire::Event::prev_id`]: `id - 1` on a full stream, `prev` on a
    /// filtered one). The rule is [`wire::Filter::continues`].
    pub fn offer(&mut self, id: u64, prev: u64) -> Offer {
        match wire::Filter::continues(self.last, id, prev) {
            Continuity::Duplicate => Offer::Duplicate,
            Continuity::Next => {
                self.advance(id);
                Offer::Deliver
            }
            Continuity::Missing { after, upto } => Offer::Gap(after + 1..=upto),
        }
    }

    /// The ids missing before what a heartbeat says the stream holds: the
    /// head of a full stream, the last match (`prev`) of a filtered one.
    pub fn behind(&self, upto: u64) -> Option<RangeInclusive<u64>> {
        (upto > self.last).then(|| self.last + 1..=upto)
    }

    /// Starts (or extends) a repair of every id up to `upto`. Returns the
    /// ids now missing; `None` when nothing is (then no repair starts).
    pub fn start_repair(&mut self, upto: u64) -> Option<RangeInclusive<u64>> {
        if upto <= self.last {
            return None;
        }
        let upto = self.repair.map_or(upto, |r| r.upto.max(upto));
        self.repair = Some(Repair {
            upto,
            page_from: self.last,
        });
        Some(self.last + 1..=upto)
    }

    /// The page to fetch next; `None` once the repair is complete (or none
    /// is under way).
    pub fn next_page(&mut self, page_limit: u64) -> Option<PageRequest> {
        let last = self.last;
        let r = self.repair.as_mut()?;
        r.page_from = last;
        Some(PageRequest {
            after: last,
            limit: (r.upto - last).min(page_limit.max(1)),
        })
    }

    /// An event from a repair page, in the page's order, with its
    /// previous id as in [`offer`](Gate::offer).
    pub fn feed(&mut self, id: u64, prev: u64) -> Repaired {
        match self.repair {
            _ if id <= self.last => Repaired::Duplicate,
            // Past the repair's end is Skip: the repair ends at `upto`.
            Some(_) if prev <= self.last => {
                self.advance(id);
                Repaired::Deliver
            }
            _ => Repaired::Skip,
        }
    }

    /// Every event of the page has been fed. A page that delivered nothing
    /// abandons the repair.
    pub fn page_done(&mut self) -> Result<(), Stalled> {
        match self.repair {
            Some(r) if r.page_from == self.last => {
                self.repair = None;
                Err(Stalled { after: self.last })
            }
            _ => Ok(()),
        }
    }

    /// The repair failed (a fetch error, the session ended): it is dropped;
    /// what it delivered stays delivered, and the next offer finds the rest
    /// of the gap again.
    pub fn repair_failed(&mut self) {
        self.repair = None;
    }

    fn advance(&mut self, id: u64) {
        self.last = id;
        if self.repair.is_some_and(|r| id >= r.upto) {
            self.repair = None;
        }
    }
}
