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

use wire::Cursor;

use super::{ApiError, Conn, StreamQuery, parse_cursor, query, query_cursor, resume, streaming_on};
use crate::Stub;
use crate::conns::Transport;
use crate::feed::{Feed, Out};

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
    let cursor = stream_cursor(&headers, q.cursor.as_deref())?;
    let start = resume(&stub, cursor).await?;
    let mut first = Vec::new();
    sse::encode::retry(&mut first, stub.config().retry_ms);
    let epoch = start.epoch;
    let feed = Feed::new(
        stub,
        Transport::Sse,
        ctx.peer,
        ctx.protocol,
        ctx.kill,
        start.after,
        start.reset(),
    );
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
