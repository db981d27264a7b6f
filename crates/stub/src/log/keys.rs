//! Idempotency keys: a publisher that retries a batch under the same key
//! gets the ids of the first attempt instead of a second copy.
//!
//! Keys live for a window of publish time and up to a count, whichever ends
//! first; the oldest goes first. They are kept with their batch in the
//! journal, so a retry after a crash (the answer was lost, the batch was
//! not) still finds its key.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;

/// A validated `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A key that is empty, too long, or not visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters")]
pub struct BadKey;

impl IdempotencyKey {
    pub fn new(key: &str) -> Result<IdempotencyKey, BadKey> {
        let ok = (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| IdempotencyKey(key.to_owned())).ok_or(BadKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long and how many keys are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWindow {
    /// Publish time, in µs, after which a key is forgotten.
    pub window_us: u64,
    /// Keys held at most; past it the oldest is forgotten.
    pub max_keys: usize,
}

impl Default for KeyWindow {
    fn default() -> Self {
        KeyWindow {
            window_us: 24 * 3_600 * 1_000_000,
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    ids: RangeInclusive<u64>,
    digest: u32,
    at_us: u64,
}

/// What a key says about a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Not seen (or forgotten): append.
    New,
    /// The same batch was appended under these ids: answer them.
    Replay(RangeInclusive<u64>),
    /// The key was used for a different batch.
    Reused,
}

#[derive(Debug, Default)]
pub(crate) struct Keys {
    window: KeyWindow,
    seen: BTreeMap<IdempotencyKey, Seen>,
    /// Keys in the order they were recorded, for forgetting the oldest.
    order: VecDeque<IdempotencyKey>,
}

impl Keys {
    pub(crate) fn new(window: KeyWindow) -> Keys {
        Keys {
            window,
            ..Keys::default()
        }
    }

    pub(crate) fn lookup(&mut self, key: &IdempotencyKey, digest: u32, now_us: u64) -> Lookup {
        self.forget(now_us);
        match self.seen.get(key) {
            None => Lookup::New,
            Some(seen) if seen.digest == digest => Lookup::Replay(seen.ids.clone()),
            Some(_) => Lookup::Reused,
        }
    }

    pub(crate) fn record(&mut self, key: IdempotencyKey, ids: RangeInclusive<u64>, digest: u32, at_us: u64) {
        if self
            .seen
            .insert(key.clone(), Seen { ids, digest, at_us })
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > self.window.max_keys {
            self.pop_oldest();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    fn forget(&mut self, now_us: u64) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .seen
                .get(oldest)
                .is_none_or(|s| s.at_us.saturating_add(self.window.window_us) < now_us);
            if !expired {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(key) = self.order.pop_front() {
            self.seen.remove(&key);
        }
    }
}

/// The digest a key is bound to: a checksum of the batch's payloads, so a
/// key reused for different events is told apart from a retry.
pub(crate) fn digest(payloads: &[wire::Payload]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in payloads {
        h.update(serde_json::to_string(p).unwrap_or_default().as_bytes());
        h.update(b"\n");
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::new(k).unwrap()
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::new("a").is_ok());
        assert!(IdempotencyKey::new(&"k".repeat(MAX_KEY_LEN)).is_ok());
        for bad in ["", " a", "a b", "é", "a\n"] {
            assert_eq!(IdempotencyKey::new(bad), Err(BadKey), "{bad:?}");
        }
        assert_eq!(IdempotencyKey::new(&"k".repeat(MAX_KEY_LEN + 1)), Err(BadKey));
    }

    #[test]
    fn a_key_replays_its_ids_until_the_window_or_the_count_forgets_it() {
        let mut keys = Keys::new(KeyWindow {
            window_us: 100,
            max_keys: 2,
        });
        assert_eq!(keys.lookup(&key("a"), 7, 0), Lookup::New);
        keys.record(key("a"), 1..=3, 7, 0);
        assert_eq!(keys.lookup(&key("a"), 7, 100), Lookup::Replay(1..=3));
        assert_eq!(keys.lookup(&key("a"), 8, 100), Lookup::Reused);
        assert_eq!(keys.lookup(&key("a"), 7, 101), Lookup::New, "past the window");

        keys.record(key("b"), 4..=4, 1, 200);
        keys.record(key("c"), 5..=5, 1, 200);
        keys.record(key("d"), 6..=6, 1, 200);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.lookup(&key("b"), 1, 200), Lookup::New, "past the count");
        assert_eq!(keys.lookup(&key("d"), 1, 200), Lookup::Replay(6..=6));
    }
}
