//! `GET /events`: one page of events after a cursor, or a long-poll that
//! waits up to `wait_ms` for the next one. The body is `wire::poll`'s form.
//! With `symbols` / `kinds`, only matching events, each with its `prev`,
//! and `next_cursor` is how far the server looked.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use wire::{Cursor, Epoch};

use super::{ApiError, Conn, Resume, json_response, query, query_cursor, query_filter, resume, unavailable};
use crate::Stub;
use crate::conns::Transport;
use crate::log::Miss;

#[derive(Deserialize)]
pub(super) struct PollQuery {
    cursor: Option<String>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
    symbols: Option<String>,
    kinds: Option<String>,
}

pub(super) async fn poll(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    q: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let config = stub.config();
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > config.max_page {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {}",
            config.max_page
        )));
    }
    let wait_ms = q.wait_ms.unwrap_or(0);
    if wait_ms > config.max_wait_ms {
        return Err(ApiError::bad_request(format!(
            "wait_ms must be at most {}",
            config.max_wait_ms
        )));
    }
    let filter = query_filter(q.symbols.as_deref(), q.kinds.as_deref())?;
    let start = resume(&stub, query_cursor(q.cursor.as_deref())?).await?;
    if let Some(from) = start.from {
        return Err(epoch_changed(from, &start));
    }
    let cursor = start.after;
    if !filter.is_all() {
        let wait = Duration::from_millis(wait_ms);
        let read = filtered(&stub, &ctx, cursor, &filter, limit, wait).await;
        return finish(&stub, cursor, read);
    }
    if wait_ms > 0 && cursor >= stub.log().head() {
        // Long-poll: listed as a live client while it waits.
        let _reg = stub.0.conns.register(
            Transport::Poll,
            ctx.peer,
            ctx.protocol,
            (stub.0.clock)(),
            cursor,
            ctx.kill.clone(),
        );
        let head = stub.log().watch();
        // The kill token is a child of the shutdown token: it covers both.
        tokio::select! {
            biased;
            () = ctx.kill.cancelled() => {}
            _ = tokio::time::timeout(Duration::from_millis(wait_ms), head.past(cursor)) => {}
        }
    }
    let mut page = wire::poll::PageBody::default();
    let mut read = stub
        .log()
        .read_with(cursor, limit, &mut |e| page.push(&e.json))
        .map_err(Miss::Expired);
    if read.is_err() {
        // Older than memory: a shared log reads it from its store.
        read = stub.log().fetch(cursor, limit).await.map(|entries| {
            entries.iter().for_each(|e| page.push(&e.json));
            entries.last().map_or(cursor, |e| e.id)
        });
        // The page goes on into memory where the store's part ended.
        if let Ok(last) = read
            && page.count() < limit
        {
            let room = limit - page.count();
            read = Ok(stub
                .log()
                .read_with(last, room, &mut |e| page.push(&e.json))
                .unwrap_or(last));
        }
    }
    finish(&stub, cursor, read.map(|last| (page, last)))
}

/// A filtered page: matching events after `cursor` found by lookup, each
/// with its `prev`; with a wait, until one matches (or the wait ends).
async fn filtered(
    stub: &Stub,
    ctx: &super::ConnCtx,
    cursor: u64,
    filter: &wire::Filter,
    limit: usize,
    wait: Duration,
) -> Result<(wire::poll::PageBody, u64), Miss> {
    let log = stub.log();
    // Registered before the first read: a match in between wakes it.
    let interest = log.watch().interest(filter);
    let read = |page: &mut wire::poll::PageBody| {
        log.read_filtered(cursor, filter, limit, &mut |e, prev| {
            page.push(&e.json_filtered(prev))
        })
        .map(|scan| scan.scanned)
    };
    let mut page = wire::poll::PageBody::default();
    let mut last = read(&mut page);
    if last.is_ok() && page.count() == 0 && !wait.is_zero() {
        let _reg = stub.0.conns.register(
            Transport::Poll,
            ctx.peer.clone(),
            ctx.protocol,
            (stub.0.clock)(),
            cursor,
            ctx.kill.clone(),
        );
        tokio::select! {
            biased;
            () = ctx.kill.cancelled() => {}
            _ = tokio::time::timeout(wait, interest.wait()) => {}
        }
        last = read(&mut page);
    }
    match last {
        Ok(last) => Ok((page, last)),
        Err(_) => {
            // Older than memory: a shared log reads it from its store, and
            // the page says how far that went.
            let entries = log.fetch(cursor, limit).await?;
            let mut prev = cursor;
            for e in &entries {
                if e.matches(filter) {
                    page.push(&e.json_filtered(prev));
                    prev = e.id;
                }
            }
            Ok((page, entries.last().map_or(cursor, |e| e.id)))
        }
    }
}

/// The answer of a read: the page, or the error it met.
fn finish(
    stub: &Stub,
    cursor: u64,
    read: Result<(wire::poll::PageBody, u64), Miss>,
) -> Result<Response, ApiError> {
    let head = stub.log().head();
    match read {
        Ok((page, last)) => {
            stub.0.metrics.sent(Transport::Poll, page.count() as u64);
            Ok(json_response(page.finish(last, head, Some(stub.log().epoch()))))
        }
        Err(Miss::Unavailable(reason)) => Err(unavailable(&reason)),
        Err(Miss::Expired(expired)) => {
            stub.0.metrics.cursor_expired.inc();
            let mut e = ApiError::new(
                StatusCode::GONE,
                "cursor_expired",
                format!(
                    "cursor {cursor} is older than retention; the oldest event held is {}",
                    expired.oldest
                ),
            );
            e.problem.oldest = Some(expired.oldest);
            e.problem.head = Some(expired.head);
            Err(e)
        }
    }
}

/// A page cannot carry a reset: a cursor from another epoch is 409, and the
/// client starts over in the new one.
fn epoch_changed(from: Epoch, start: &Resume) -> ApiError {
    let epoch = start.epoch;
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        "epoch_changed",
        format!(
            "the cursor is from epoch {from}, but this log is epoch {epoch} (it was recreated: its ids \
             name other events); resume with no cursor, or from {}, the new epoch's beginning",
            Cursor::new(epoch, start.oldest - 1)
        ),
    );
    e.problem.epoch = Some(epoch);
    e.problem.oldest = Some(start.oldest);
    e.problem.head = Some(start.head);
    e
}
