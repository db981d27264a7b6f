//! `GET /stream`: Server-Sent Events, encoded by `wire::sse` straight from
//! the log: a `retry:` hint, then the feed (replay, `caught_up`, live,
//! heartbeats) until it ends.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, Conn, StreamQuery, query, start_after, streaming_on};
use crate::Stub;
use crate::conns::Transport;
use crate::feed::{Feed, Out};

/// The resume point of a stream: `Last-Event-ID` (what a browser sends on
/// reconnect) wins over `?cursor=` (what the page was opened with).
fn stream_cursor(stub: &Stub, headers: &HeaderMap, cursor: Option<wire::Cursor>) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a decimal event id"))?;
            if text.is_empty() {
                return Ok(start_after(stub, cursor));
            }
            text.parse::<wire::Cursor>()
                .map(|c| c.id)
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a decimal event id"))
        }
        None => Ok(start_after(stub, cursor)),
    }
}

pub(super) async fn stream(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    streaming_on(&stub)?;
    let cursor = stream_cursor(&stub, &headers, q.cursor)?;
    let mut first = Vec::new();
    sse::encode::retry(&mut first, stub.config().retry_ms);
    let epoch = stub.log().epoch();
    let feed = Feed::new(stub, Transport::Sse, ctx.peer, ctx.protocol, ctx.kill, cursor);
    let body = futures_util::stream::unfold((feed, Some(first)), move |(mut feed, first)| async move {
        if let Some(first) = first {
            return Some((Ok::<_, Infallible>(Bytes::from(first)), (feed, None)));
        }
        let mut buf = Vec::new();
        let out = feed
            .next(|e| wire::sse::encode_parts(&mut buf, &e.kind, wire::Cursor::new(epoch, e.id), &e.json))
            .await;
        match out {
            Out::Events => {}
            Out::Control(c) => wire::sse::encode_control(&mut buf, &c),
            Out::End => return None,
        }
        Some((Ok(Bytes::from(buf)), (feed, None)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
