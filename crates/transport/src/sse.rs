//! The SSE transport: `GET /stream?cursor=N` (with `Last-Event-ID`), the
//! answer checked (status, Content-Type), then the body decoded into wire
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

use crate::driver::Frame;
use crate::error::ClientError;
use crate::http::{self, AbortOnDrop, retry};
use crate::net::{Connect, Link};
use crate::policy::Failure;

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
}

/// Opens the stream after `after` and checks the answer.
pub(crate) async fn open<C: Connect>(link: &Link<C>, after: u64, idle: Duration) -> Result<Stream, Failure> {
    let mut headers = vec![
        (header::ACCEPT, "text/event-stream".to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    if after > 0 {
        headers.push((
            header::HeaderName::from_static("last-event-id"),
            after.to_string(),
        ));
    }
    let reply = link
        .get(&format!("/stream?cursor={after}"), &headers, link.timeouts)
        .await?;
    let status = reply.response.status();
    if status == hyper::StatusCode::OK && http::is_event_stream(reply.response.headers()) {
        let (response, conn) = reply.into_parts();
        return Ok(Stream {
            body: response.into_body(),
            _conn: conn,
            decoder: sse::Decoder::default(),
            idle,
            deadline: tokio::time::Instant::now() + idle,
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
    Err(http::classify(status, &headers, &body))
}

impl Stream {
    /// The next message or `retry:` hint; a failure ends the stream.
    /// `last` (the last id delivered) only names where a bad event was.
    pub(crate) async fn next(&mut self, last: u64) -> Result<Frame, Failure> {
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
                    return wire::sse::decode(&e)
                        .map(Frame::Message)
                        .map_err(|e| retry(&format!("malformed event after id {last}: {e}")));
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
