//! `GET /stream`: Server-Sent Events, encoded by `wire::sse` straight from
//! the log: a `retry:` hint, then the feed (a `reset` when the cursor named
//! another epoch, replay, `caught_up`, live, heartbeats) until it ends. Ids
//! are `<epoch>-<id>`, so `Last-Event-ID` brings the epoch back.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;

use wire::Cursor;

use super::{
    ApiError, Conn, StreamQuery, parse_cursor, query, query_cursor, query_filter, resume, streaming_on,
};
use crate::Stub;
use crate::conns::Transport;
use crate::feed::{Feed, Out};

/// One chunk of blocks: the block itself when there is one (no copy), else
/// the blocks side by side. A chunk per block would cost a write each once
/// hyper's queue of buffers is full, and a write costs far more than a copy.
fn join(mut blocks: Vec<Bytes>) -> Bytes {
    if blocks.len() == 1 {
        return blocks.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(blocks.iter().map(Bytes::len).sum());
    blocks.iter().for_each(|b| out.extend_from_slice(b));
    out.freeze()
}

/// The cursor of a stream: `Last-Event-ID` (what a browser sends on
/// reconnect) wins over `?cursor=` (what the page was opened with) unless
/// it is empty. Either may be `<epoch>-<id>` or a bare id.
fn stream_cursor(headers: &HeaderMap, query: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    match headers.get("last-event-id") {
        Some(v) if !v.is_empty() => {
            let text = v.to_str().map_err(|_| {
                ApiError::bad_request(format!(
                    "Last-Event-ID: {}",
                    wire::BadCursor(String::from_utf8_lossy(v.as_bytes()).into_owned())
                ))
            })?;
            parse_cursor("Last-Event-ID", text).map(Some)
        }
        _ => query_cursor(query),
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
    let filter = query_filter(q.symbols.as_deref(), q.kinds.as_deref())?;
    let cursor = stream_cursor(&headers, q.cursor.as_deref())?;
    let start = resume(&stub, cursor).await?;
    let mut first = Vec::new();
    sse::encode::retry(&mut first, stub.config().retry_ms);
    let epoch = start.epoch;
    let feed = Feed::new(stub, Transport::Sse, ctx, start.after, start.reset(), filter);
    let body = futures_util::stream::unfold((feed, Some(first)), move |(mut feed, first)| async move {
        if let Some(first) = first {
            return Some((Ok::<_, Infallible>(Bytes::from(first)), (feed, None)));
        }
        // Every pending event's block, as the log rendered it: one shared
        // buffer each, written as one chunk (one write to the socket). A
        // filtered stream's blocks carry `prev`: rendered here.
        let mut blocks: Vec<Bytes> = Vec::new();
        let out = feed
            .next(|e, prev| {
                blocks.push(match prev {
                    None => e.sse(epoch).clone(),
                    Some(prev) => e.sse_filtered(epoch, prev),
                })
            })
            .await;
        let chunk = match out {
            Out::Events => join(blocks),
            Out::Control(c) => {
                let mut buf = Vec::new();
                wire::sse::encode_control(&mut buf, &c);
                Bytes::from(buf)
            }
            Out::End => return None,
        };
        Some((Ok(chunk), (feed, None)))
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
