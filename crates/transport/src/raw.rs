//! A raw SSE reader that follows a browser's `EventSource` exactly: for
//! `wire-tail --raw`, and the oracle of the conformance tests.
//!
//! Unlike the wire client it knows nothing of tickwire: any stream, any
//! events. Any status other than 200 (5xx included), or a Content-Type other
//! than `text/event-stream`, fails the connection for good; a network error
//! or the end of the stream reconnects after the reconnection time (which
//! `retry:` sets), sending `Last-Event-ID` only when it is non-empty.
//!
//! The last event ID persists across reconnections, as in a browser: a new
//! connection starts with the previous one's, so an event without an `id:`
//! field reports it and the next reconnect sends it again. What the decoder
//! drops (an over-long line, an over-large event) is logged as a warning.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::header;

use crate::http::{self, Timeouts};
use crate::net::{Connect, Endpoint};
use crate::policy::Failure;
use crate::tls::Tls;

#[derive(Debug, Clone)]
pub struct RawConfig {
    /// The stream's exact URL.
    pub url: String,
    /// Reconnect when the stream ends or the network fails (browser
    /// behaviour); false: return when it ends.
    pub reconnect: bool,
    /// The reconnection time until a `retry:` field says otherwise.
    pub initial_retry: Duration,
    pub timeouts: Timeouts,
    /// Whom to trust on `https://`.
    pub tls: Tls,
    pub limits: sse::Limits,
}

impl RawConfig {
    pub fn new(url: &str) -> RawConfig {
        RawConfig {
            url: url.to_owned(),
            reconnect: true,
            initial_retry: Duration::from_secs(3),
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                headers: Duration::from_secs(30),
            },
            tls: Tls::platform(),
            limits: sse::Limits::default(),
        }
    }
}

/// One dispatched event as a browser would hand it to a listener.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RawEvent {
    pub event: String,
    pub data: String,
    /// The `lastEventId`; empty when there is none.
    pub id: String,
}

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEnd {
    /// The stream ended and reconnecting was off.
    Ended,
    /// The callback asked to stop.
    Stopped,
    /// The connection failed for good (status, Content-Type, bad URL, or a
    /// network error with reconnecting off).
    Failed(String),
}

/// Reads the stream, calling `on_event` for each event until it returns
/// false or the stream ends or fails for good.
pub async fn read<C: Connect>(
    connector: &C,
    config: &RawConfig,
    mut on_event: impl FnMut(RawEvent) -> bool,
) -> RawEnd {
    let (endpoint, path) = match split_url(&config.url) {
        Ok(v) => v,
        Err(e) => return RawEnd::Failed(e),
    };
    let mut last_event_id = String::new();
    let mut retry = config.initial_retry;
    loop {
        let mut headers = vec![
            (header::ACCEPT, "text/event-stream".to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ];
        if !last_event_id.is_empty() {
            headers.push((
                header::HeaderName::from_static("last-event-id"),
                last_event_id.clone(),
            ));
        }
        let failure = match http::get(
            connector,
            &config.tls,
            &endpoint,
            &path,
            &headers,
            config.timeouts,
        )
        .await
        {
            Err(Failure::Fatal(reason)) => return RawEnd::Failed(reason.to_string()),
            Err(f) => format!("{f:?}"),
            Ok(reply) => {
                let status = reply.response.status();
                if status != hyper::StatusCode::OK {
                    return RawEnd::Failed(format!("status {status}: the connection fails, as in a browser"));
                }
                if !http::is_event_stream(reply.response.headers()) {
                    let ct = reply
                        .response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    return RawEnd::Failed(format!("Content-Type {ct} is not text/event-stream"));
                }
                let (response, _conn) = reply.into_parts();
                let mut body = response.into_body();
                let mut decoder = Seeded::new(config.limits, &last_event_id);
                let mut stop = false;
                let end = loop {
                    let data = match body.frame().await {
                        None => break "the stream ended".to_owned(),
                        Some(Err(e)) => break format!("network error: {e}"),
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(d) => d,
                            Err(_) => continue,
                        },
                    };
                    decoder.push(&data);
                    while let Some(frame) = decoder.decoder.next_frame() {
                        match frame {
                            Ok(sse::Frame::Retry(ms)) => retry = Duration::from_millis(ms),
                            Ok(sse::Frame::Event(e)) => {
                                last_event_id = e.id.to_owned();
                                if !on_event(RawEvent {
                                    event: e.event.to_owned(),
                                    data: e.data.to_owned(),
                                    id: e.id.to_owned(),
                                }) {
                                    stop = true;
                                    break;
                                }
                            }
                            Ok(sse::Frame::Comment(_)) => {}
                            Err(e) => tracing::warn!(error = %e, "raw: dropped a block"),
                        }
                    }
                    if stop {
                        break String::new();
                    }
                    // An id-only block moves the resume point too.
                    if decoder.decoder.dispatches() > 0 {
                        last_event_id = decoder.decoder.last_event_id().to_owned();
                    }
                };
                if stop {
                    return RawEnd::Stopped;
                }
                decoder.finish();
                while let Some(frame) = decoder.decoder.next_frame() {
                    if let Err(e) = frame {
                        tracing::warn!(error = %e, "raw: dropped a block at the end of the stream");
                    }
                }
                if decoder.decoder.dispatches() > 0 {
                    last_event_id = decoder.decoder.last_event_id().to_owned();
                }
                end
            }
        };
        if !config.reconnect {
            return if failure == "the stream ended" {
                RawEnd::Ended
            } else {
                RawEnd::Failed(failure)
            };
        }
        tracing::info!(
            reason = failure,
            retry_ms = retry.as_millis() as u64,
            last_event_id,
            "reconnecting"
        );
        tokio::time::sleep(retry).await;
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One connection's decoder, starting with the last event ID the previous
/// connection left (WHATWG: the last event ID string is the EventSource's,
/// not the connection's). `sse::Decoder` has no setter, so the id is
/// replayed into it as an id-only block, `id: X` and a blank line: that
/// sets the last-event-ID buffer and fires nothing, exactly the state a
/// browser reconnects with. The block goes after the stream's byte-order
/// mark, which is stripped here first (the stream's first three bytes are
/// held until they are known not to be one), so a BOM is still dropped only
/// at the very start and a second one is still content.
#[derive(Debug)]
struct Seeded {
    decoder: sse::Decoder,
    /// Until the seed is pushed: the bytes held, and the id to seed.
    pending: Option<(Vec<u8>, String)>,
}

impl Seeded {
    fn new(limits: sse::Limits, last_event_id: &str) -> Seeded {
        Seeded {
            decoder: sse::Decoder::new(limits),
            pending: (!last_event_id.is_empty()).then(|| (Vec::new(), last_event_id.to_owned())),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let Some((held, _)) = self.pending.as_mut() else {
            return self.decoder.push(bytes);
        };
        held.extend_from_slice(bytes);
        if held.len() < BOM.len() && BOM.starts_with(held) {
            return; // still maybe a BOM
        }
        self.seed();
    }

    fn seed(&mut self) {
        if let Some((held, id)) = self.pending.take() {
            self.decoder.push(format!("id: {id}\n\n").as_bytes());
            self.decoder.push(held.strip_prefix(BOM).unwrap_or(&held));
        }
    }

    fn finish(&mut self) {
        self.seed();
        self.decoder.finish();
    }
}

/// `http[s]://host:port/path?query` into the endpoint and the path.
fn split_url(url: &str) -> Result<(Endpoint, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let endpoint = Endpoint::parse(url)?;
    if endpoint.scheme.is_ws() {
        return Err(format!("{url:?}: an SSE stream is read over http:// or https://"));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((
        Endpoint {
            prefix: String::new(),
            ..endpoint
        },
        path,
    ))
}
