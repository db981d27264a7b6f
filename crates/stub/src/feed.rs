//! One client's view of the log, shared by SSE and WebSocket: a `reset`
//! first when the cursor named another epoch, replay from the cursor to the
//! head, say `caught_up`, then go live; heartbeats on silence;
//! `cursor_expired` or `overflow` when the client cannot be served without
//! loss, and then the end.
//!
//! A filtered feed reads its events through the log's index, hands each
//! with its `prev`, and waits on an [`Interest`] in its topics instead of
//! the head; its cursor is how far it has looked, and its heartbeats and
//! `caught_up` say so.

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use wire::{Control, Filter};

use crate::Stub;
use crate::conns::{Registration, Transport};
use crate::log::{Entry, HeadWatch, Interest, Miss};
use crate::serve::ConnCtx;

/// What a filtered feed carries beyond the full stream's state.
struct Filtered {
    filter: Filter,
    interest: Interest,
    /// The last match at or before the cursor: the next event's `prev`.
    prev: u64,
    /// The last read stopped at its batch size, short of the head.
    full: bool,
    /// The heartbeat's time came: look through to the head, then say so.
    beat_due: bool,
}

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
    filtered: Option<Filtered>,
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
        ctx: ConnCtx,
        cursor: u64,
        first: Option<Control>,
        filter: Filter,
    ) -> Feed {
        let now_us = (stub.0.clock)();
        let reg = stub
            .0
            .conns
            .register(transport, ctx.peer, ctx.protocol, now_us, cursor, ctx.kill);
        stub.0.metrics.opened(transport);
        let head = stub.0.log.watch();
        let filtered = (!filter.is_all()).then(|| Filtered {
            interest: head.interest(&filter),
            filter,
            prev: cursor,
            full: false,
            beat_due: false,
        });
        Feed {
            filtered,
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

    /// Changes the feed's filter (a WebSocket `subscribe`): events after the
    /// cursor are chosen by the new one, none before. Returns the
    /// acknowledgement, to send before anything else.
    pub(crate) fn refilter(&mut self, filter: Filter) -> Control {
        let cursor = self.cursor;
        if filter.is_all() {
            // The full stream's `prev` is the id before: `cursor` itself.
            self.filtered = None;
            return Control::Subscribed {
                at: cursor,
                prev: cursor,
            };
        }
        let prev = self
            .stub
            .0
            .log
            .read_filtered(cursor, &filter, 0, &mut |_, _| {})
            .map_or(cursor, |scan| scan.prev);
        match &mut self.filtered {
            Some(f) => {
                f.interest.change(&filter);
                f.filter = filter;
                f.prev = prev;
            }
            None => {
                self.filtered = Some(Filtered {
                    interest: self.head.interest(&filter),
                    filter,
                    prev,
                    full: false,
                    beat_due: false,
                });
            }
        }
        Control::Subscribed { at: cursor, prev }
    }

    /// The filter, when the feed has one.
    pub(crate) fn filter(&self) -> Option<&Filter> {
        self.filtered.as_ref().map(|f| &f.filter)
    }

    /// The next thing to send; events go to `on_event` with their `prev`
    /// on a filtered feed. Cancel-safe: nothing is consumed across an
    /// await point, so a caller may drop it inside `select!`.
    pub(crate) async fn next(&mut self, mut on_event: impl FnMut(&Entry, Option<u64>)) -> Out {
        let out = self.step(&mut on_event).await;
        if !matches!(out, Out::End) {
            self.last_write = Instant::now();
        }
        out
    }

    async fn step(&mut self, on_event: &mut impl FnMut(&Entry, Option<u64>)) -> Out {
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
            let batch = shared.config.batch_events;
            // Fault injection (`drop_every`, `dup_every`) acts on what is
            // sent, never on what was read: a dropped event is still the
            // next one's `prev`.
            let mut send = |e: &Entry, prev: Option<u64>| {
                count += 1;
                if drop_every == 0 || !e.id.is_multiple_of(drop_every) {
                    on_event(e, prev);
                }
                if dup_every != 0 && e.id.is_multiple_of(dup_every) {
                    on_event(e, prev);
                }
            };
            let mut read = match &mut self.filtered {
                None => shared.log.read_with(self.cursor, batch, &mut |e| send(e, None)),
                Some(f) => shared
                    .log
                    .read_filtered(self.cursor, &f.filter, batch, &mut |e, prev| send(e, Some(prev)))
                    .map(|scan| {
                        f.prev = scan.prev;
                        f.full = scan.scanned < head;
                        scan.scanned
                    }),
            }
            .map_err(Miss::Expired);
            if read.is_err() {
                // Older than memory: a shared log reads it from its store.
                // Taken and sent in one poll once it is here, so dropping
                // this future loses nothing.
                let cursor = self.cursor;
                read = shared.log.fetch(cursor, batch).await.map(|entries| {
                    let last = entries.last().map_or(cursor, |e| e.id);
                    match &mut self.filtered {
                        None => entries.iter().for_each(|e| send(e, None)),
                        Some(f) => {
                            for e in &entries {
                                if e.matches(&f.filter) {
                                    send(e, Some(f.prev));
                                    f.prev = e.id;
                                }
                            }
                            f.full = true;
                        }
                    }
                    last
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
                    if let Some(f) = &mut self.filtered {
                        // What was written keeps the connection alive.
                        f.beat_due = false;
                    }
                    if self.caught_up && !shared.config.write_delay().is_zero() {
                        self.last_events = Some(Instant::now());
                    }
                    self.cursor = last;
                    self.reg.sent(last, count);
                    shared.metrics.sent(self.transport, count);
                    return Out::Events;
                }
                Ok(last) => {
                    // A filtered read may look past events it does not want.
                    if last > self.cursor {
                        self.cursor = last;
                        self.reg.sent(last, 0);
                    }
                }
            }
            let scan = self.filtered.as_ref().map(|f| (Some(self.cursor), Some(f.prev)));
            let (scanned, prev) = scan.unwrap_or((None, None));
            if !self.caught_up {
                self.caught_up = true;
                return Out::Control(Control::CaughtUp { head, scanned, prev });
            }
            if let Some(f) = self.filtered.as_mut().filter(|f| f.beat_due) {
                f.beat_due = false;
                return Out::Control(Control::Heartbeat { head, scanned, prev });
            }
            let heartbeat_at = self.last_write + shared.config.heartbeat();
            match &mut self.filtered {
                None => tokio::select! {
                    biased;
                    () = self.reg.conn.kill.cancelled() => {}
                    _ = self.head.past(self.cursor) => {}
                    () = sleep_until(heartbeat_at) => {
                        return Out::Control(Control::heartbeat(shared.log.head()));
                    }
                },
                Some(f) => tokio::select! {
                    biased;
                    () = self.reg.conn.kill.cancelled() => {}
                    () = f.interest.wait() => {}
                    // Looked through to the head first, then said.
                    () = sleep_until(heartbeat_at) => f.beat_due = true,
                },
            }
        }
    }

    /// True once the client has stayed more than `max_lag` behind for longer
    /// than the grace period: a burst it drains in time is not slowness.
    fn lagging_too_long(&mut self, head: u64) -> bool {
        let config = &self.stub.0.config;
        // A filtered feed is not woken for what it does not want, so its
        // cursor trails the head while it is idle: it is behind only while
        // its reads come back full.
        let behind = match &self.filtered {
            Some(f) if !f.full => 0,
            _ => head.saturating_sub(self.cursor),
        };
        if behind <= config.max_lag {
            self.behind_since = None;
            return false;
        }
        let since = *self.behind_since.get_or_insert_with(Instant::now);
        since.elapsed() >= config.lag_grace()
    }
}
