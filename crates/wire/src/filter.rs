//! What a subscription asks for: a set of symbols and a set of kinds, each
//! empty for "all". The same filter is a query (`symbols=AAPL,NVDA&kinds=tick`)
//! on every transport and a WebSocket `subscribe` message's fields.
//!
//! On a filtered stream ids have holes by design, so each event carries
//! `prev`, the id of the previous event in the log that matches the same
//! filter. The whole rule a client needs is [`Filter::continues`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{FieldError, Payload};

/// The most symbols one connection may ask for (Binance's 1,024 streams).
pub const MAX_SYMBOLS: usize = 1024;

/// The kinds a filter can name: the kinds that carry a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Tick,
    News,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Tick, Kind::News];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tick => "tick",
            Kind::News => "news",
        }
    }

    /// The kind of an event's `kind` name; `None` for kinds no filter names.
    pub fn of(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Symbols and kinds to receive; an empty set means every one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub symbols: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub kinds: BTreeSet<Kind>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// A filter from lists, each checked: a malformed symbol, an unknown
    /// kind or more than [`MAX_SYMBOLS`] symbols is an error naming it.
    pub fn new<S: AsRef<str>, K: AsRef<str>>(
        symbols: impl IntoIterator<Item = S>,
        kinds: impl IntoIterator<Item = K>,
    ) -> Result<Filter, FieldError> {
        let mut filter = Filter::default();
        filter.add(symbols, kinds)?;
        Ok(filter)
    }

    /// Reads the query parameters' values (`AAPL,NVDA`, `tick,news`);
    /// `None` or an empty value asks for all.
    pub fn from_query(symbols: Option<&str>, kinds: Option<&str>) -> Result<Filter, FieldError> {
        let split = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Filter::new(split(symbols), split(kinds))
    }

    /// Adds symbols and kinds (a `subscribe`), checked as in [`Filter::new`].
    /// Nothing changes on an error.
    pub fn add<S: AsRef<str>, K: AsRef<str>>(
        &mut self,
        symbols: impl IntoIterator<Item = S>,
        kinds: impl IntoIterator<Item = K>,
    ) -> Result<(), FieldError> {
        let mut next = self.clone();
        for s in symbols {
            let s = s.as_ref();
            crate::event::check_symbol(s)?;
            next.symbols.insert(s.to_owned());
        }
        for k in kinds {
            next.kinds.insert(parse_kind(k.as_ref())?);
        }
        if next.symbols.len() > MAX_SYMBOLS {
            return Err(FieldError {
                field: "symbols".into(),
                reason: format!(
                    "at most {MAX_SYMBOLS} symbols per connection, got {}",
                    next.symbols.len()
                ),
            });
        }
        *self = next;
        Ok(())
    }

    /// Removes symbols and kinds (an `unsubscribe`). Removing the last
    /// symbol leaves the set empty, which asks for every symbol.
    pub fn remove<S: AsRef<str>, K: AsRef<str>>(
        &mut self,
        symbols: impl IntoIterator<Item = S>,
        kinds: impl IntoIterator<Item = K>,
    ) -> Result<(), FieldError> {
        let kinds: Vec<Kind> = kinds
            .into_iter()
            .map(|k| parse_kind(k.as_ref()))
            .collect::<Result<_, _>>()?;
        for s in symbols {
            self.symbols.remove(s.as_ref());
        }
        for k in kinds {
            self.kinds.remove(&k);
        }
        Ok(())
    }

    /// True when it asks for every event.
    pub fn is_all(&self) -> bool {
        self.symbols.is_empty() && self.kinds.is_empty()
    }

    /// Whether an event of `kind` about `symbol` passes. A filtered stream
    /// carries only kinds with a symbol.
    pub fn matches(&self, kind: &str, symbol: Option<&str>) -> bool {
        if self.is_all() {
            return true;
        }
        let Some(k) = Kind::of(kind) else {
            return false;
        };
        (self.kinds.is_empty() || self.kinds.contains(&k))
            && (self.symbols.is_empty() || symbol.is_some_and(|s| self.symbols.contains(s)))
    }

    /// Whether `payload` passes.
    pub fn matches_payload(&self, payload: &Payload) -> bool {
        self.matches(payload.kind(), payload.symbol())
    }

    /// The query parameters (`symbols=A,B&kinds=tick`), empty for all;
    /// without a leading `?` or `&`.
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if !self.symbols.is_empty() {
            let list: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
            parts.push(format!("symbols={}", list.join(",")));
        }
        if !self.kinds.is_empty() {
            let list: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            parts.push(format!("kinds={}", list.join(",")));
        }
        parts.join("&")
    }

    /// The continuity rule of every stream, filtered or not: an event `id`
    /// whose previous matching event is `prev` follows a reader that
    /// delivered through `last` exactly when nothing it wanted lies between.
    /// An unfiltered event's `prev` is `id - 1`, so this is id contiguity.
    pub fn continues(last: u64, id: u64, prev: u64) -> Continuity {
        if id <= last {
            Continuity::Duplicate
        } else if prev <= last {
            Continuity::Next
        } else {
            Continuity::Missing {
                after: last,
                upto: prev,
            }
        }
    }
}

/// What [`Filter::continues`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Delivered before.
    Duplicate,
    /// Nothing wanted was missed: deliver it.
    Next,
    /// Wanted events after `after`, up to and including `upto` (the missed
    /// event the stream named as `prev`), were not delivered.
    Missing { after: u64, upto: u64 },
}

fn parse_kind(k: &str) -> Result<Kind, FieldError> {
    Kind::of(k).ok_or_else(|| FieldError {
        field: "kinds".into(),
        reason: format!(
            "unknown kind {}: a filter names tick or news",
            crate::event::quoted(k)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_back_as_the_same_filter() {
        let f = Filter::from_query(Some("NVDA, AAPL,"), Some("tick")).unwrap();
        assert_eq!(f.to_query(), "symbols=AAPL,NVDA&kinds=tick");
        let back = Filter::from_query(Some("AAPL,NVDA"), Some("tick")).unwrap();
        assert_eq!(back, f);
        assert!(Filter::from_query(None, Some("")).unwrap().is_all());
    }

    #[test]
    fn bad_values_name_themselves() {
        let e = Filter::from_query(None, Some("tick,trade")).unwrap_err();
        assert_eq!(e.field, "kinds");
        assert!(e.reason.contains("\"trade\""), "{e}");
        let e = Filter::from_query(Some("AAPL,BAD SYMBOL"), None).unwrap_err();
        assert_eq!(e.field, "symbol");
        assert!(e.reason.contains("BAD SYMBOL"), "{e}");
        let many: Vec<String> = (0..=MAX_SYMBOLS).map(|i| format!("S{i}")).collect();
        let e = Filter::new(&many, None::<&str>).unwrap_err();
        assert!(e.reason.contains("at most 1024"), "{e}");
        assert!(Filter::new(&many[..MAX_SYMBOLS], None::<&str>).is_ok());
        // A huge value is named by its start and its length, not echoed.
        let huge = "A".repeat(20_000);
        let e = Filter::from_query(Some(&huge), None).unwrap_err();
        assert!(e.reason.len() < 200, "{e}");
        assert!(e.reason.contains("(20000 bytes)"), "{e}");
        let e = Filter::from_query(None, Some(&huge)).unwrap_err();
        assert!(e.reason.len() < 200 && e.reason.contains("(20000 bytes)"), "{e}");
    }

    #[test]
    fn a_failed_add_changes_nothing() {
        let mut f = Filter::new(["AAPL"], None::<&str>).unwrap();
        assert!(f.add(["MSFT"], ["bogus"]).is_err());
        assert_eq!(f, Filter::new(["AAPL"], None::<&str>).unwrap());
    }

    #[test]
    fn matching_is_by_kind_and_symbol() {
        let f = Filter::from_query(Some("AAPL"), Some("news")).unwrap();
        assert!(f.matches("news", Some("AAPL")));
        assert!(!f.matches("tick", Some("AAPL")));
        assert!(!f.matches("news", Some("MSFT")));
        assert!(!f.matches("custom", None));
        assert!(Filter::all().matches("custom", None));
        let kinds = Filter::from_query(None, Some("tick")).unwrap();
        assert!(kinds.matches("tick", Some("ANY")));
    }

    #[test]
    fn continuity_is_the_prev_rule() {
        use Continuity::*;
        // Unfiltered: prev = id - 1.
        assert_eq!(Filter::continues(4, 5, 4), Next);
        assert_eq!(Filter::continues(4, 7, 6), Missing { after: 4, upto: 6 });
        assert_eq!(Filter::continues(4, 4, 3), Duplicate);
        // Filtered: a hole in ids is fine when prev is what was delivered,
        // or older (a reader that started after it).
        assert_eq!(Filter::continues(10, 50, 10), Next);
        assert_eq!(Filter::continues(10, 50, 3), Next);
        assert_eq!(Filter::continues(10, 50, 20), Missing { after: 10, upto: 20 });
    }
}
