//! The polling transport: `GET /events?cursor=N&limit=L&wait_ms=W` pages,
//! read one event at a time as if they were a stream, with a pause between
//! polls that found nothing. `fetch` is also what gap repair uses. It does
//! not deliver: the driver routes what it yields through the gate.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use wire::{Event, Message};

use crate::driver::Frame;
use crate::error::ClientError;
use crate::http::{self, Timeouts, retry};
use crate::net::{Connect, Link};
use crate::policy::Failure;

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
}

/// The first poll after `after`: its success is the session's "connected".
pub(crate) async fn open<C: Connect>(
    link: &Link<C>,
    settings: Settings,
    after: u64,
) -> Result<Stream, Failure> {
    let started = Instant::now();
    let page = fetch(link, after, settings.limit, settings.wait, settings.body_timeout).await?;
    Ok(Stream {
        settings,
        empty: page.events.is_empty(),
        events: page.events.into(),
        started,
        ended: false,
    })
}

impl Stream {
    /// The next event; `PageEnd` once a page is read (the moment for a
    /// streaming probe); then the next poll, after `last`.
    pub(crate) async fn next<C: Connect>(&mut self, link: &Link<C>, last: u64) -> Result<Frame, Failure> {
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
            let page = fetch(link, last, s.limit, s.wait, s.body_timeout).await?;
            self.empty = page.events.is_empty();
            self.events = page.events.into();
            self.ended = false;
        }
    }
}

/// One polling request: at most `limit` events after `after`, waiting up
/// to `wait` for the first.
pub(crate) async fn fetch<C: Connect>(
    link: &Link<C>,
    after: u64,
    limit: usize,
    wait: Duration,
    body_timeout: Duration,
) -> Result<wire::poll::Page, Failure> {
    let path = format!(
        "/events?cursor={after}&limit={limit}&wait_ms={}",
        wait.as_millis()
    );
    let timeouts = Timeouts {
        connect: link.timeouts.connect,
        headers: link.timeouts.headers + wait,
    };
    let reply = link.get(&path, &[], timeouts).await?;
    let status = reply.response.status();
    let headers = reply.response.headers().clone();
    let body = reply.text(64 << 20, body_timeout).await?;
    match status.as_u16() {
        200 => serde_json::from_str(&body).map_err(|e| retry(&format!("malformed polling page: {e}"))),
        410 => Err(Failure::Fatal(ClientError::CursorExpired {
            cursor: after,
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

/// The wire's head: one polling page without a cursor (after the oldest
/// event held, so never expired) answers it.
pub(crate) async fn head<C: Connect>(link: &Link<C>) -> Result<u64, ClientError> {
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
        .map(|page| page.head)
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
