//! The SSE transport: `GET /stream?cursor=C` (with `Last-Event-ID`; `C` is
//! `<epoch>-<id>` once the epoch is known, else the bare id), the answer
//! checked (status, Content-Type, a 409 that refuses the cursor), its
//! `tickwire-epoch` header and each event's id line read for the epoch, then
//! the body decoded into wire
//! messages under an idle deadline. The deadline moves only when a whole
//! message is decoded (an event, a control message such as the stub's
//! heartbeat, or a comment line, the classic keep-alive of other servers),
//! never on bytes alone: a peer dripping a never-finished event is as dead
//! as a silent one. It does not deliver: the driver routes
//! what it yields through the gate.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;

use wire::{Cursor, Epoch, Message};

use crate::epoch;
use crate::error::ClientError;
use crate::http::{self, AbortOnDrop, retry};
use crate::net::{Connect, Link};
use crate::policy::Failure;
use crate::stream::Frame;

/// An open, checked SSE stream.
#[derive(Debug)]
pub(crate) struct Stream {
    body: Incoming,
    /// The connection's task lives as long as the body.
    _conn: AbortOnDrop,
    decoder: sse::Decoder,
    idle: Duration,
    /// Silent (no whole message) until then: the connection is dead.
    deadline: tokio::time::Instant,
    /// The last epoch reported (the header's, then the id lines').
    epoch: Option<Epoch>,
    /// An event held back while its id line's new epoch is reported.
    held: Option<Message>,
}

/// Opens the stream after `at` and checks the answer.
pub(crate) async fn open<C: Connect>(link: &Link<C>, at: Cursor, idle: Duration) -> Result<Stream, Failure> {
    let mut headers = vec![
        (header::ACCEPT, "text/event-stream".to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    if at != Cursor::bare(0) {
        headers.push((header::HeaderName::from_static("last-event-id"), at.to_string()));
    }
    let reply = link
        .get(
            &link.filtered(&format!("/stream?cursor={at}")),
            &headers,
            link.timeouts,
        )
        .await?;
    let status = reply.response.status();
    if status == hyper::StatusCode::OK && http::is_event_stream(reply.response.headers()) {
        let (response, conn) = reply.into_parts();
        let named = epoch::header(response.headers());
        return Ok(Stream {
            body: response.into_body(),
            _conn: conn,
            decoder: sse::Decoder::default(),
            idle,
            deadline: tokio::time::Instant::now() + idle,
            epoch: named,
            held: None,
        });
    }
    if status == hyper::StatusCode::OK {
        return Err(Failure::Fatal(ClientError::Protocol(
            "the stream's Content-Type is not text/event-stream".into(),
        )));
    }
    let headers = reply.response.headers().clone();
    let body = reply
        .text(64 << 10, link.timeouts.headers)
        .await
        .unwrap_or_default();
    Err(epoch::conflict(status.as_u16(), &body, at)
        .unwrap_or_else(|| http::classify(status, &headers, &body)))
}

impl Stream {
    /// The epoch the answer's header named.
    pub(crate) fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The next message or `retry:` hint, or the new epoch an event's id
    /// line names (the event follows); a failure ends the stream. `last`
    /// (the last id delivered) only names where a bad event was.
    pub(crate) async fn next(&mut self, last: u64) -> Result<Frame, Failure> {
        if let Some(message) = self.held.take() {
            return Ok(Frame::Message(message));
        }
        loop {
            match self.decoder.next_frame() {
                None => {}
                Some(Err(e)) => return Err(retry(&format!("bad SSE: {e}"))),
                Some(Ok(sse::Frame::Retry(ms))) => return Ok(Frame::RetryHint(ms)),
                Some(Ok(sse::Frame::Comment(_))) => {
                    self.deadline = tokio::time::Instant::now() + self.idle;
                    continue;
                }
                Some(Ok(sse::Frame::Event(e))) => {
                    self.deadline = tokio::time::Instant::now() + self.idle;
                    let message = wire::sse::decode(&e)
                        .map_err(|e| retry(&format!("malformed event after id {last}: {e}")))?;
                    // Only an event's id line names its epoch: a control's
                    // id is the one persisted from before (or a reset's).
                    if let (Message::Event(_), Some(named)) = (&message, wire::sse::id_epoch(e.id))
                        && self.epoch != Some(named)
                    {
                        self.epoch = Some(named);
                        self.held = Some(message);
                        return Ok(Frame::Epoch(named));
                    }
                    return Ok(Frame::Message(message));
                }
            }
            let frame = match tokio::time::timeout_at(self.deadline, self.body.frame()).await {
                Err(_) => return Err(crate::driver::idle_failure(self.idle)),
                Ok(None) => return Err(retry("the server ended the stream")),
                Ok(Some(Err(e))) => return Err(retry(&format!("stream read: {e}"))),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                self.decoder.push(&data);
            }
        }
    }
}
