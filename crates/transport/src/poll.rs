//! The polling transport: `GET /events?cursor=C&limit=L&wait_ms=W` pages
//! (`C` is `<epoch>-<id>` once the epoch is known, else the bare id), read
//! one event at a time as if they were a stream, with a pause between
//! polls that found nothing. Each page names its epoch (its `epoch`, else
//! the `tickwire-epoch` header); a 409 is the cursor refused (another
//! epoch, or past the head). `fetch` is also what gap repair uses. It does not
//! deliver: the driver routes what it yields through the gate.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use wire::{Cursor, Epoch, Event, Message};

use crate::epoch;
use crate::error::ClientError;
use crate::http::{self, Timeouts, retry};
use crate::net::{Connect, Link};
use crate::policy::Failure;
use crate::stream::Frame;

/// How to poll.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Long-poll wait; zero polls without waiting.
    pub wait: Duration,
    /// The least time between two polls that found nothing.
    pub interval: Duration,
    pub limit: usize,
    /// The most time a page's body may take once its headers are in.
    pub body_timeout: Duration,
}

/// A polling session: the page being read, and when it was asked for.
#[derive(Debug)]
pub(crate) struct Stream {
    settings: Settings,
    events: VecDeque<Event>,
    started: Instant,
    empty: bool,
    /// `Frame::PageEnd` was yielded for the current page.
    ended: bool,
    /// The last epoch a page named.
    epoch: Option<Epoch>,
}

/// The first poll after `at`: its success is the session's "connected".
pub(crate) async fn open<C: Connect>(
    link: &Link<C>,
    settings: Settings,
    at: Cursor,
) -> Result<Stream, Failure> {
    let started = Instant::now();
    let page = fetch(link, at, settings.limit, settings.wait, settings.body_timeout).await?;
    Ok(Stream {
        settings,
        empty: page.events.is_empty(),
        events: page.events.into(),
        started,
        ended: false,
        epoch: page.epoch,
    })
}

impl Stream {
    /// The epoch the first page named.
    pub(crate) fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The next event; `PageEnd` once a page is read (the moment for a
    /// streaming probe); then the next poll, after `at`, whose new epoch
    /// (if it names another) comes before its events.
    pub(crate) async fn next<C: Connect>(&mut self, link: &Link<C>, at: Cursor) -> Result<Frame, Failure> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Frame::Message(Message::Event(e)));
            }
            if !std::mem::replace(&mut self.ended, true) {
                return Ok(Frame::PageEnd);
            }
            if self.empty {
                tokio::time::sleep_until(self.started + self.settings.interval).await;
            }
            self.started = Instant::now();
            let s = self.settings;
            let page = fetch(link, at, s.limit, s.wait, s.body_timeout).await?;
            self.empty = page.events.is_empty();
            self.events = page.events.into();
            self.ended = false;
            if let Some(named) = page.epoch
                && self.epoch != Some(named)
            {
                self.epoch = Some(named);
                return Ok(Frame::Epoch(named));
            }
        }
    }
}

/// One polling request: at most `limit` events after `at`, waiting up
/// to `wait` for the first. The page's `epoch` is the one it names, or its
/// header's.
pub(crate) async fn fetch<C: Connect>(
    link: &Link<C>,
    at: Cursor,
    limit: usize,
    wait: Duration,
    body_timeout: Duration,
) -> Result<wire::poll::Page, Failure> {
    let path = link.filtered(&format!(
        "/events?cursor={at}&limit={limit}&wait_ms={}",
        wait.as_millis()
    ));
    let timeouts = Timeouts {
        connect: link.timeouts.connect,
        headers: link.timeouts.headers + wait,
    };
    let reply = link.get(&path, &[], timeouts).await?;
    let status = reply.response.status();
    let headers = reply.response.headers().clone();
    let body = reply.text(64 << 20, body_timeout).await?;
    if let Some(refused) = epoch::conflict(status.as_u16(), &body, at) {
        return Err(refused);
    }
    match status.as_u16() {
        200 => {
            let mut page: wire::poll::Page =
                serde_json::from_str(&body).map_err(|e| retry(&format!("malformed polling page: {e}")))?;
            page.epoch = page.epoch.or_else(|| epoch::header(&headers));
            Ok(page)
        }
        410 => Err(Failure::Fatal(ClientError::CursorExpired {
            cursor: at.id,
            oldest: wire::Problem::from_body(&body).and_then(|p| p.oldest),
        })),
        _ => Err(match http::classify(status, &headers, &body) {
            // The polling endpoint itself missing is not a stream problem:
            // no fallback, even when a streaming session was repairing.
            Failure::StreamMissing => Failure::Fatal(ClientError::PollingMissing),
            f => f,
        }),
    }
}

/// The wire's head, in its epoch: one polling page without a cursor (after
/// the oldest event held, so never expired) answers it.
pub(crate) async fn head<C: Connect>(link: &Link<C>) -> Result<Cursor, ClientError> {
    let reply = link
        .get("/events?limit=1", &[], link.timeouts)
        .await
        .map_err(|f| unreachable(f, "asking for the head"))?;
    let status = reply.response.status();
    let headers = reply.response.headers().clone();
    let body = reply
        .text(1 << 20, link.timeouts.headers)
        .await
        .map_err(|f| unreachable(f, "reading the head"))?;
    if status != hyper::StatusCode::OK {
        return Err(unreachable(
            http::classify(status, &headers, &body),
            "asking for the head",
        ));
    }
    serde_json::from_str::<wire::poll::Page>(&body)
        .map(|page| Cursor {
            epoch: page.epoch.or_else(|| epoch::header(&headers)),
            id: page.head,
        })
        .map_err(|e| ClientError::Protocol(format!("malformed polling page: {e}")))
}

fn unreachable(failure: Failure, what: &str) -> ClientError {
    match failure {
        Failure::Fatal(e) => e,
        Failure::StreamMissing => ClientError::PollingMissing,
        Failure::Retry { reason, .. } => ClientError::Unreachable(format!("{what}: {reason}")),
        silent @ Failure::Silent { .. } => ClientError::Unreachable(format!("{what}: {silent}")),
    }
}
