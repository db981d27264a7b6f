//! Stream identity: the [`Epoch`] a log is minted with, and the [`Cursor`]
//! (an epoch and an event id) every transport resumes from.
//!
//! Ids are unique only within one epoch: a log that is recreated (a stub
//! restarted without a journal, a lost disk) starts a new epoch, and a
//! cursor from the old one cannot name anything in it. The SSE `id:` line
//! carries the cursor's full form, `<epoch>-<id>`, so a browser's
//! `EventSource` sends the epoch back by itself on reconnect.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The response header naming the epoch of the log a stream, page or health
/// answer comes from.
pub const EPOCH_HEADER: &str = "tickwire-epoch";

/// The identity of one log: 48 random bits, written as 12 lowercase hex
/// digits. Minted from randomness the caller supplies (the binary's OS
/// entropy, the simulation's seed), never from a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch for 64 random bits (the low 48 are kept).
    pub fn from_random(bits: u64) -> Epoch {
        Epoch(bits & 0xffff_ffff_ffff)
    }

    /// The epoch as a number (for hashing into names, for metrics labels).
    pub fn bits(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}", self.0)
    }
}

/// A cursor or epoch that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a cursor: expected an event id (42) or an epoch and an id (0a1b2c3d4e5f-42)", crate::event::quoted(.0))]
pub struct BadCursor(pub String);

impl FromStr for Epoch {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Epoch, BadCursor> {
        let ok = s.len() == 12 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
            .map(Epoch)
            .ok_or_else(|| BadCursor(s.to_owned()))
    }
}

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Epoch, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a client resumes: after `id`, in `epoch`. A cursor without an
/// epoch (what old clients and curl send) means "in the server's epoch".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: Option<Epoch>,
    pub id: u64,
}

impl Cursor {
    /// After `id` in `epoch`.
    pub fn new(epoch: Epoch, id: u64) -> Cursor {
        Cursor {
            epoch: Some(epoch),
            id,
        }
    }

    /// After `id`, in whatever epoch the server has.
    pub fn bare(id: u64) -> Cursor {
        Cursor { epoch: None, id }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.epoch {
            Some(epoch) => write!(f, "{epoch}-{}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Cursor, BadCursor> {
        let bad = || BadCursor(s.to_owned());
        let digits = |d: &str| {
            // `u64::from_str` takes a leading `+`; a cursor is digits only.
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            d.parse::<u64>().map_err(|_| bad())
        };
        match s.split_once('-') {
            Some((epoch, id)) => Ok(Cursor {
                epoch: Some(epoch.parse().map_err(|_| bad())?),
                id: digits(id)?,
            }),
            None => Ok(Cursor::bare(digits(s)?)),
        }
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cursor, D::Error> {
        // A bare number (`?cursor=42` read as a number, an old checkpoint)
        // or a string in either form.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Id(u64),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::Id(id) => Ok(Cursor::bare(id)),
            Form::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip_and_garbage_is_refused() {
        let e = Epoch::from_random(0xdead_0a1b_2c3d_4e5f);
        assert_eq!(e.to_string(), "0a1b2c3d4e5f");
        for c in [Cursor::new(e, 42), Cursor::bare(0), Cursor::bare(u64::MAX)] {
            assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }
        for bad in [
            "",
            "-1",
            "+1",
            "1-2",
            "x",
            "0a1b2c3d4e5f-",
            "0a1b2c3d4e5f-+1",
            "0A1B2C3D4E5F-1",
            "0a1b2c3d4e5-1",
            "18446744073709551616",
            "0a1b2c3d4e5f-1-2",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} parsed");
        }
        // The message names a bad cursor, but never echoes a huge one back.
        let huge = "9".repeat(100_000);
        let e = huge.parse::<Cursor>().unwrap_err().to_string();
        assert!(e.len() < 200 && e.contains("(100000 bytes)"), "{e}");
        assert!(
            "x".parse::<Cursor>()
                .unwrap_err()
                .to_string()
                .starts_with("\"x\" is not a cursor")
        );
    }

    #[test]
    fn json_takes_a_number_or_either_string_form() {
        let e: Epoch = "00000000002a".parse().unwrap();
        assert_eq!(serde_json::from_str::<Cursor>("7").unwrap(), Cursor::bare(7));
        assert_eq!(
            serde_json::from_str::<Cursor>("\"00000000002a-7\"").unwrap(),
            Cursor::new(e, 7)
        );
        assert_eq!(
            serde_json::to_string(&Cursor::new(e, 7)).unwrap(),
            "\"00000000002a-7\""
        );
    }
}
