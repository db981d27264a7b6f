//! A record's tag in its `Tickwire-Tag` header: what it is (plain ingest,
//! the first record of a keyed batch, a fixture line), read back by every
//! node that follows or reads the stream.

use async_nats::HeaderMap;

use crate::log::shared::Tag;

pub(super) const TAG_HEADER: &str = "Tickwire-Tag";

pub(super) fn encode_tag(tag: &Tag) -> String {
    match tag {
        Tag::Ingest => "ingest".into(),
        Tag::Keyed { key, digest, count } => format!("keyed {digest:08x} {count} {key}"),
        Tag::Fixture { fixture, line } => format!("fixture {fixture:08x} {line}"),
    }
}

/// A record's tag from its headers; anything else is plain ingest.
pub(super) fn decode_tag(headers: &HeaderMap) -> Tag {
    let text = headers.get(TAG_HEADER).map(|v| v.as_str()).unwrap_or("");
    let mut parts = text.splitn(4, ' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("keyed"), Some(digest), Some(count), Some(key)) => {
            match (u32::from_str_radix(digest, 16), count.parse()) {
                (Ok(digest), Ok(count)) => Tag::Keyed {
                    key: key.to_owned(),
                    digest,
                    count,
                },
                _ => Tag::Ingest,
            }
        }
        (Some("fixture"), Some(fixture), Some(line), None) => {
            match (u32::from_str_radix(fixture, 16), line.parse()) {
                (Ok(fixture), Ok(line)) => Tag::Fixture { fixture, line },
                _ => Tag::Ingest,
            }
        }
        _ => Tag::Ingest,
    }
}
