//! One client's view of the log, shared by SSE and WebSocket: a `reset`
//! first when the cursor named another epoch, replay from the cursor to the
//! head, say `caught_up`, then go live; heartbeats on silence;
//! `cursor_expired` or `overflow` when the client cannot be served without
//! loss, and then the end.

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use wire::Control;

use crate::Stub;
use crate::conns::{Registration, Transport};
use crate::log::{Entry, HeadWatch, Miss};

pub(crate) struct Feed {
    stub: Stub,
    transport: Transport,
    reg: Registration,
    cursor: u64,
    /// Sent before anything else (a `reset`), then gone.
    first: Option<Control>,
    head: HeadWatch,
    caught_up: bool,
    done: bool,
    last_write: Instant,
    /// When events were last written while live: the next write waits for
    /// `write_delay` after it.
    last_events: Option<Instant>,
    behind_since: Option<Instant>,
}

/// What the feed produced; events went to the caller's closure.
pub(crate) enum Out {
    Events,
    Control(Control),
    End,
}

impl Feed {
    pub(crate) fn new(
        stub: Stub,
        transport: Transport,
        peer: std::sync::Arc<str>,
        protocol: &'static str,
        kill: CancellationToken,
        cursor: u64,
        first: Option<Control>,
    ) -> Feed {
        let now_us = (stub.0.clock)();
        let reg = stub
            .0
            .conns
            .register(transport, peer, protocol, now_us, cursor, kill);
        stub.0.metrics.opened(transport);
        let head = stub.0.log.watch();
        Feed {
            stub,
            transport,
            reg,
            cursor,
            first,
            head,
            caught_up: false,
            done: false,
            last_write: Instant::now(),
            last_events: None,
            behind_since: None,
        }
    }

    pub(crate) fn kill(&self) -> &CancellationToken {
        &self.reg.conn.kill
    }

    /// The next thing to send. Cancel-safe: nothing is consumed across an
    /// await point, so a caller may drop it inside `select!`.
    pub(crate) async fn next(&mut self, mut on_event: impl FnMut(&Entry)) -> Out {
        let out = self.step(&mut on_event).await;
        if !matches!(out, Out::End) {
            self.last_write = Instant::now();
        }
        out
    }

    async fn step(&mut self, on_event: &mut impl FnMut(&Entry)) -> Out {
        let stub = self.stub.clone();
        let shared = &stub.0;
        loop {
            // The kill token is a child of the shutdown token: one check covers both.
            if self.done || self.reg.conn.kill.is_cancelled() {
                self.done = true;
                return Out::End;
            }
            // Taken and returned in one poll: nothing is lost if the caller
            // drops the future.
            if let Some(first) = self.first.take() {
                if matches!(first, Control::Reset { .. }) {
                    shared.metrics.resets.inc();
                }
                return Out::Control(first);
            }
            let head = shared.log.head();
            if self.caught_up && self.lagging_too_long(head) {
                self.done = true;
                shared.metrics.overflow_drops.inc();
                tracing::info!(
                    conn = self.reg.conn.id,
                    last_id = self.cursor,
                    head,
                    "slow consumer dropped"
                );
                return Out::Control(Control::Overflow { last_id: self.cursor });
            }
            // Live, a connection writes at most once per write delay: what
            // arrives meanwhile goes out together. Replay is not delayed.
            if let Some(at) = self.last_events.map(|t| t + shared.config.write_delay())
                && at > Instant::now()
            {
                tokio::select! {
                    biased;
                    () = self.reg.conn.kill.cancelled() => continue,
                    () = sleep_until(at) => {}
                }
            }
            let mut count = 0;
            let (drop_every, dup_every) = (shared.config.drop_every, shared.config.dup_every);
            let mut send = |e: &Entry| {
                count += 1;
                if drop_every == 0 || !e.id.is_multiple_of(drop_every) {
                    on_event(e);
                }
                if dup_every != 0 && e.id.is_multiple_of(dup_every) {
                    on_event(e);
                }
            };
            let mut read = shared
                .log
                .read_with(self.cursor, shared.config.batch_events, &mut send)
                .map_err(Miss::Expired);
            if read.is_err() {
                // Older than memory: a shared log reads it from its store.
                // Taken and sent in one poll once it is here, so dropping
                // this future loses nothing.
                read = shared
                    .log
                    .fetch(self.cursor, shared.config.batch_events)
                    .await
                    .map(|entries| {
                        entries.iter().for_each(&mut send);
                        entries.last().map_or(self.cursor, |e| e.id)
                    });
            }
            match read {
                Err(Miss::Expired(expired)) => {
                    self.done = true;
                    shared.metrics.cursor_expired.inc();
                    return Out::Control(Control::CursorExpired {
                        cursor: self.cursor,
                        oldest: expired.oldest,
                        head: expired.head,
                    });
                }
                Err(Miss::Unavailable(reason)) => {
                    // The client resumes by cursor, here or on another node.
                    tracing::warn!(conn = self.reg.conn.id, %reason, "stream ended: the log is unavailable");
                    self.done = true;
                    return Out::End;
                }
                Ok(last) if count > 0 => {
                    if self.caught_up && !shared.config.write_delay().is_zero() {
                        self.last_events = Some(Instant::now());
                    }
                    self.cursor = last;
                    self.reg.sent(last, count);
                    shared.metrics.sent(self.transport, count);
                    return Out::Events;
                }
                Ok(_) => {}
            }
            if !self.caught_up {
                self.caught_up = true;
                return Out::Control(Control::CaughtUp { head });
            }
            let heartbeat_at = self.last_write + shared.config.heartbeat();
            tokio::select! {
                biased;
                () = self.reg.conn.kill.cancelled() => {}
                _ = self.head.past(self.cursor) => {}
                () = sleep_until(heartbeat_at) => {
                    return Out::Control(Control::Heartbeat { head: shared.log.head() });
                }
            }
        }
    }

    /// True once the client has stayed more than `max_lag` behind for longer
    /// than the grace period: a burst it drains in time is not slowness.
    fn lagging_too_long(&mut self, head: u64) -> bool {
        let config = &self.stub.0.config;
        if head.saturating_sub(self.cursor) <= config.max_lag {
            self.behind_since = None;
            return false;
        }
        let since = *self.behind_since.get_or_insert_with(Instant::now);
        since.elapsed() >= config.lag_grace()
    }
}
