//! The shared log on NATS JetStream: one stream, whose sequence number is
//! the event id and whose name and creation time are the epoch.
//!
//! Records go to `<stream>.fixture` or `<stream>.ingest` with a
//! `Tickwire-Tag` header; a fixture line's and a keyed batch's first
//! record's message id (`Nats-Msg-Id`) let the stream's duplicate window
//! absorb a retry or a second replayer. Ingested batches of more than one
//! event are atomic batch publishes (NATS 2.12's `allow_atomic`), so their
//! ids are consecutive and nothing is half published. The stream denies
//! deletes and purges, so its sequence stays gap-free.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use wire::Epoch;

mod connect;

use super::LogError;
use super::shared::{Ack, LogService, Record, ServiceInfo, Stored, Tag};

const TAG_HEADER: &str = "Tickwire-Tag";
/// How long the follower's pull requests last; the idle heartbeat is half
/// of it. async-nats's default, 30 s, left a follower whose server died
/// silent for half a minute before two missed heartbeats made it follow
/// again (through the server it reconnected to).
const FOLLOW_EXPIRES: Duration = Duration::from_secs(2);
/// JetStream's error for an atomic batch holding a message id it has seen.
const BATCH_DUPLICATE: u64 = 10201;

/// How to reach the stream, and how to create it when it does not exist.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// `nats://host:port`; several, comma-separated, for a cluster.
    pub url: String,
    /// The stream's name (`TICKWIRE`); its subjects are `<name>.>`.
    pub stream: String,
    /// Replicas when the stream is created (1, or 3 on a cluster).
    pub replicas: usize,
    /// The duplicate window when the stream is created.
    pub duplicate_window: Duration,
    /// This node's name in its batch ids (unique among the nodes: random bits).
    pub node: u64,
    /// The most events in one atomic batch (the server's limit is 1,000).
    pub max_batch: usize,
}

impl JetStreamOptions {
    pub fn new(url: &str, stream: &str, node: u64) -> JetStreamOptions {
        JetStreamOptions {
            url: url.to_owned(),
            stream: stream.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(24 * 3600),
            node,
            max_batch: 1000,
        }
    }
}

/// The stream, as a [`LogService`] for [`super::NodeLog`].
#[derive(Debug)]
pub struct JetStream {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    name: String,
    epoch: Epoch,
    options: JetStreamOptions,
    batches: AtomicU64,
    /// Counts the connections made: a follower stops at a reconnect.
    connects: tokio::sync::watch::Receiver<u64>,
}

impl JetStream {
    /// Connects (retrying, with async-nats reconnecting on our backoff from
    /// then on) and opens the stream, creating it when it does not exist.
    /// An existing stream must deny deletes and purges and allow atomic
    /// publishes; one that does not is updated to, or refused.
    pub async fn connect(options: JetStreamOptions) -> Result<JetStream, LogError> {
        let (client, connects) = connect::client(&options).await?;
        let js = jetstream::new(client.clone());
        let stream = open_stream(&js, &options).await?;
        let info = stream.cached_info();
        let epoch = stream_epoch(&info.config.name, info.created.unix_timestamp_nanos());
        Ok(JetStream {
            client,
            js,
            name: info.config.name.clone(),
            stream,
            epoch,
            options,
            batches: AtomicU64::new(0),
            connects,
        })
    }

    fn subject(&self, tag: &Tag) -> String {
        match tag {
            Tag::Fixture { .. } => format!("{}.fixture", self.name),
            Tag::Ingest | Tag::Keyed { .. } => format!("{}.ingest", self.name),
        }
    }

    fn headers(&self, record: &Record) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TAG_HEADER, encode_tag(&record.tag).as_str());
        if let Some(id) = record.tag.msg_id() {
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        }
        headers
    }

    async fn append_atomic(&self, records: Vec<Record>) -> Result<Ack, LogError> {
        let n = records.len();
        if n == 1 {
            let record = &records[0];
            let ack = publish(
                &self.js,
                self.subject(&record.tag),
                self.headers(record),
                record.body.clone(),
            )
            .await?;
            return Ok(match ack {
                Some(ack) if !ack.duplicate => Ack::Stored {
                    first: ack.sequence,
                    last: ack.sequence,
                },
                _ => Ack::Duplicate,
            });
        }
        let batch = format!(
            "{:016x}-{}",
            self.options.node,
            self.batches.fetch_add(1, Ordering::Relaxed)
        );
        for (i, record) in records.iter().enumerate() {
            let mut headers = self.headers(record);
            headers.insert(async_nats::header::NATS_BATCH_ID, batch.as_str());
            headers.insert(
                async_nats::header::NATS_BATCH_SEQUENCE,
                (i + 1).to_string().as_str(),
            );
            let subject = self.subject(&record.tag);
            if i + 1 < n {
                // Only the commit is answered; order on one connection is kept.
                self.client
                    .publish_with_headers(subject, headers, record.body.clone())
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                continue;
            }
            headers.insert(async_nats::header::NATS_BATCH_COMMIT, "1");
            return Ok(
                match publish(&self.js, subject, headers, record.body.clone()).await? {
                    Some(ack) => Ack::Stored {
                        first: ack.sequence + 1 - n as u64,
                        last: ack.sequence,
                    },
                    None => Ack::Duplicate,
                },
            );
        }
        Err(LogError::Empty)
    }

    async fn append_each(&self, records: Vec<Record>) -> Result<Ack, LogError> {
        let mut acks = Vec::with_capacity(records.len());
        for record in &records {
            let pending = self
                .js
                .publish_with_headers(
                    self.subject(&record.tag),
                    self.headers(record),
                    record.body.clone(),
                )
                .await
                .map_err(publish_error)?;
            acks.push(pending);
        }
        let (mut first, mut last) = (u64::MAX, 0);
        for pending in acks {
            let ack = pending.await.map_err(publish_error)?;
            first = first.min(ack.sequence);
            last = last.max(ack.sequence);
        }
        Ok(Ack::Stored { first, last })
    }
}

impl LogService for JetStream {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn info(&self) -> BoxFuture<'_, Result<ServiceInfo, LogError>> {
        Box::pin(async move {
            let info = self
                .stream
                .get_info()
                .await
                .map_err(|e| unavailable(format!("stream info: {e}")))?;
            let fixture_next = match self
                .stream
                .get_last_raw_message_by_subject(&format!("{}.fixture", self.name))
                .await
            {
                Ok(message) => match decode_tag(&message.headers) {
                    Tag::Fixture { line, .. } => line + 1,
                    _ => 0,
                },
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => 0,
                Err(e) => return Err(unavailable(format!("the last fixture record: {e}"))),
            };
            Ok(ServiceInfo {
                epoch: self.epoch,
                first: info.state.first_sequence.max(1),
                last: info.state.last_sequence,
                fixture_next,
            })
        })
    }

    fn append(&self, records: Vec<Record>, atomic: bool) -> BoxFuture<'_, Result<Ack, LogError>> {
        Box::pin(async move {
            if atomic {
                self.append_atomic(records).await
            } else {
                self.append_each(records).await
            }
        })
    }

    fn follow(&self, after: u64) -> BoxStream<'static, Result<Stored, LogError>> {
        let stream = self.stream.clone();
        // The server a consumer lived on may be gone or restarted (its
        // ephemeral consumers with it): after a reconnect the stream ends and
        // the node follows again, instead of waiting out async-nats's
        // missed heartbeats and pull errors (15 s and more).
        let mut connects = self.connects.clone();
        let at = *connects.borrow_and_update();
        let reconnected = async move {
            let _ = connects.wait_for(|&n| n != at).await;
            tracing::info!("reconnected to NATS: following the stream again");
        };
        let opened = async move {
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    },
                    max_expires: FOLLOW_EXPIRES,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(format!("ordered consumer: {e}")))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| unavailable(format!("ordered consumer: {e}")))?;
            Ok::<_, LogError>(
                messages
                    .map_err(|e| unavailable(e.to_string()))
                    .and_then(|m| async move {
                        let seq = m.info().map_err(|e| unavailable(e.to_string()))?.stream_sequence;
                        let tag = m.headers.as_ref().map_or(Tag::Ingest, decode_tag);
                        Ok(Stored {
                            seq,
                            record: Record {
                                tag,
                                body: m.payload.clone(),
                            },
                        })
                    }),
            )
        };
        futures_util::stream::once(opened)
            .try_flatten()
            .take_until(reconnected)
            .boxed()
    }

    fn get(&self, seq: u64) -> BoxFuture<'_, Result<Option<Stored>, LogError>> {
        Box::pin(async move {
            match self.stream.get_raw_message(seq).await {
                Ok(message) => Ok(Some(Stored {
                    seq: message.sequence,
                    record: Record {
                        tag: decode_tag(&message.headers),
                        body: message.payload,
                    },
                })),
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(unavailable(format!("reading {seq}: {e}"))),
            }
        })
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn max_atomic(&self) -> usize {
        self.options.max_batch
    }
}

/// The stream, created when missing, with deletes and purges denied.
async fn open_stream(
    js: &jetstream::Context,
    options: &JetStreamOptions,
) -> Result<stream::Stream, LogError> {
    let wanted = stream::Config {
        name: options.stream.clone(),
        subjects: vec![format!("{}.>", options.stream)],
        storage: stream::StorageType::File,
        num_replicas: options.replicas.max(1),
        duplicate_window: options.duplicate_window,
        allow_atomic_publish: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    let mut wait = Duration::from_millis(250);
    let mut stream = loop {
        match js.get_or_create_stream(wanted.clone()).await {
            Ok(stream) => break stream,
            Err(e) => {
                tracing::warn!(error = %e, url = %options.url, retry_in_ms = wait.as_millis() as u64, "waiting for the NATS stream");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(16));
            }
        }
    };
    let config = &stream.cached_info().config;
    if !(config.deny_delete && config.deny_purge && config.allow_atomic_publish) {
        let mut fixed = config.clone();
        fixed.deny_delete = true;
        fixed.deny_purge = true;
        fixed.allow_atomic_publish = true;
        js.update_stream(fixed).await.map_err(|e| LogError::Setup {
            reason: format!(
                "stream {} must deny deletes and purges and allow atomic publishes, and could not be updated: {e}",
                options.stream
            ),
        })?;
        stream = js
            .get_stream(&options.stream)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
    }
    Ok(stream)
}

/// Publishes and waits for the ack: `None` when JetStream refused an atomic
/// batch as a duplicate.
async fn publish(
    js: &jetstream::Context,
    subject: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Option<jetstream::publish::PublishAck>, LogError> {
    let pending = js
        .publish_with_headers(subject, headers, body)
        .await
        .map_err(publish_error)?;
    match pending.await {
        Ok(ack) => Ok(Some(ack)),
        Err(e) if duplicate_batch(&e) => Ok(None),
        Err(e) => Err(publish_error(e)),
    }
}

fn duplicate_batch(e: &jetstream::context::PublishError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|e| e.error_code().0 == BATCH_DUPLICATE)
}

fn publish_error(e: jetstream::context::PublishError) -> LogError {
    use jetstream::context::PublishErrorKind as Kind;
    match e.kind() {
        Kind::TimedOut => LogError::Unanswered {
            reason: e.to_string(),
        },
        Kind::BrokenPipe | Kind::StreamNotFound => unavailable(e.to_string()),
        _ => LogError::Setup {
            reason: format!("JetStream refused the publish: {e}"),
        },
    }
}

fn unavailable(reason: String) -> LogError {
    LogError::Unavailable { reason }
}

/// The epoch of a stream: its name and creation time, hashed (FNV-1a), so
/// every node computes the same one and a re-created stream gets another.
fn stream_epoch(name: &str, created_ns: i128) -> Epoch {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(created_ns.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Epoch::from_random(h ^ (h >> 29))
}

fn encode_tag(tag: &Tag) -> String {
    match tag {
        Tag::Ingest => "ingest".into(),
        Tag::Keyed { key, digest, count } => format!("keyed {digest:08x} {count} {key}"),
        Tag::Fixture { fixture, line } => format!("fixture {fixture:08x} {line}"),
    }
}

/// A record's tag from its headers; anything else is plain ingest.
fn decode_tag(headers: &HeaderMap) -> Tag {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_survive_their_header() {
        for tag in [
            Tag::Ingest,
            Tag::Keyed {
                key: "order-7/a".into(),
                digest: 0xdead_beef,
                count: 3,
            },
            Tag::Fixture {
                fixture: 0x1234,
                line: 99,
            },
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(TAG_HEADER, encode_tag(&tag).as_str());
            assert_eq!(decode_tag(&headers), tag);
        }
        assert_eq!(decode_tag(&HeaderMap::new()), Tag::Ingest);
    }

    #[test]
    fn the_epoch_is_the_streams_name_and_creation_time() {
        let a = stream_epoch("TICKWIRE", 1_700_000_000_000_000_000);
        assert_eq!(a, stream_epoch("TICKWIRE", 1_700_000_000_000_000_000));
        assert_ne!(a, stream_epoch("TICKWIRE", 1_700_000_000_000_000_001));
        assert_ne!(a, stream_epoch("OTHER", 1_700_000_000_000_000_000));
    }
}
