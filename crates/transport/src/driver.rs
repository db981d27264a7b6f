//! The driver task: it loops and routes. The policy says what to do next;
//! an attempt opens a session on one transport (`sse`, `ws`, `poll`); each
//! event a session yields goes through the gate, which alone decides
//! deliver, duplicate or gap; a gap is filled from the polling endpoint
//! before any later event. Every answer's epoch is checked against the one
//! held before anything after it is delivered (`epoch`). Metrics and the
//! timeline are recorded on the way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use wire::{Control, Event, Message};

use crate::client::{ClientConfig, Item};
use crate::epoch::{self, Held};
use crate::error::ClientError;
use crate::gate::{Gate, Offer, Repaired};
use crate::http::retry;
use crate::metrics::{Metrics, State};
use crate::net::{Connect, Endpoint, Link};
use crate::policy::{Failure, Next, Policy, Transport};
use crate::poll;
use crate::stream::{self, Frame, Stream};
use crate::timeline::{Lifecycle, Timeline};

/// How a session ended besides a failure.
enum End {
    Failed(Failure),
    /// The subscriber went away.
    Gone,
}

impl From<Failure> for End {
    fn from(f: Failure) -> End {
        End::Failed(f)
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Attempt(Transport),
    Wait(std::time::Instant),
    Stop(ClientError),
}

/// The policy's answer, made total for a driver that runs one attempt at a
/// time. `Busy` means the policy counts an attempt in flight that this
/// driver no longer has (it only asks between attempts): that attempt was
/// abandoned, so it is reported failed, which schedules the next one with
/// backoff rather than panicking or spinning.
fn step(policy: &mut Policy, now: std::time::Instant) -> Step {
    loop {
        match policy.next(now) {
            Next::Attempt(kind) => return Step::Attempt(kind),
            Next::WaitUntil(at) => return Step::Wait(at),
            Next::Stop(error) => return Step::Stop(error),
            // `failed` always leaves the in-flight phase, so this loops once.
            Next::Busy => policy.failed(now, retry("the attempt in flight was abandoned")),
        }
    }
}

mod notes;

pub(crate) fn idle_failure(idle: Duration) -> Failure {
    Failure::Silent { idle }
}

pub(crate) struct Driver<C: Connect> {
    /// On the current URL: `endpoints[policy.current_url()]`.
    link: Link<C>,
    /// Every URL's, as configured.
    endpoints: Vec<Endpoint>,
    config: ClientConfig,
    policy: Policy,
    gate: Gate,
    epoch: Held,
    tx: mpsc::Sender<Item>,
    metrics: Arc<Metrics>,
    reconnect: Arc<Notify>,
    timeline: Timeline,
    /// This session's state; the heartbeat rule reads it.
    state: State,
}

impl<C: Connect> Driver<C> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        (link, endpoints): (Link<C>, Vec<Endpoint>),
        config: ClientConfig,
        (now, epoch): (Instant, Held),
        tx: mpsc::Sender<Item>,
        metrics: Arc<Metrics>,
        reconnect: Arc<Notify>,
        timeline: Timeline,
    ) -> Driver<C> {
        let policy = Policy::with_urls(
            config.policy.clone(),
            config.seed,
            now.into_std(),
            endpoints.len(),
            config.url_order,
        );
        let mut driver = Driver {
            link,
            endpoints,
            policy,
            gate: Gate::new(config.start_after.id),
            epoch,
            config,
            tx,
            metrics,
            reconnect,
            timeline,
            state: State::Connecting,
        };
        driver.use_current_url();
        driver
    }

    pub(crate) async fn run(mut self) {
        loop {
            match step(&mut self.policy, Instant::now().into_std()) {
                Step::Stop(error) => {
                    self.timeline.record(Lifecycle::Stopped { error: error.clone() });
                    tracing::error!(reason = %error, "wire client stopped");
                    self.set_state(State::Stopped);
                    let _ = self.tx.send(Err(error)).await;
                    return;
                }
                Step::Wait(at) => {
                    self.set_state(State::Backoff);
                    let reconnect = self.reconnect.clone();
                    tokio::select! {
                        biased;
                        () = reconnect.notified() => self.policy.restart(Instant::now().into_std()),
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                Step::Attempt(kind) => {
                    self.use_current_url();
                    self.attempting(kind);
                    let reconnect = self.reconnect.clone();
                    let end = tokio::select! {
                        biased;
                        () = reconnect.notified() => End::Failed(retry("reconnect requested")),
                        end = self.session(kind) => end,
                    };
                    // A repair belongs to its session, however it ended
                    // (an error, or cancelled by a reconnect).
                    self.gate.repair_failed();
                    self.metrics.set_repairing(false);
                    match end {
                        End::Gone => return,
                        End::Failed(failure) => {
                            tracing::warn!(transport = kind.as_str(), cause = %failure, last_id = self.gate.last(), "disconnected");
                            self.timeline.record(Lifecycle::Disconnected {
                                cause: failure.clone(),
                            });
                            self.policy.failed(Instant::now().into_std(), failure);
                        }
                    }
                }
            }
            self.flush_notes();
        }
    }

    fn set_state(&mut self, state: State) {
        self.state = state;
        self.metrics.set_state(state);
    }

    fn attempting(&mut self, kind: Transport) {
        self.metrics.attempting();
        self.metrics.set_transport(kind);
        self.set_state(State::Connecting);
        let after = self.gate.last();
        self.timeline.record(Lifecycle::Connecting {
            transport: kind,
            after,
        });
        tracing::info!(transport = kind.as_str(), last_id = after, "connecting");
    }

    fn connected(&mut self, kind: Transport) {
        self.policy.connected(Instant::now().into_std());
        self.metrics.connected((self.config.clock)());
        self.set_state(State::Replaying);
        self.timeline.record(Lifecycle::Connected { transport: kind });
        tracing::info!(transport = kind.as_str(), last_id = self.gate.last(), "connected");
    }

    /// Opens `kind` at the client's cursor; an answer naming another epoch
    /// than the one held fails here, before anything is read from it.
    async fn open(&self, kind: Transport) -> Result<Stream<C::Stream>, Failure> {
        let at = self.at();
        let s = stream::open(
            &self.link,
            kind,
            at,
            self.config.idle_timeout,
            self.poll_settings(),
        )
        .await?;
        match self.learn(s.epoch()) {
            Ok(()) => Ok(s),
            Err(refused) => Err(stream::refused(s, &self.link, at, refused).await),
        }
    }

    /// Where the client stands: the last id delivered, in the epoch held.
    fn at(&self) -> wire::Cursor {
        self.epoch.cursor(self.gate.last())
    }

    fn learn(&self, seen: Option<wire::Epoch>) -> Result<(), Failure> {
        if let Some(epoch) = self.epoch.learn(seen)? {
            tracing::info!(%epoch, "the wire's epoch");
            self.timeline.record(Lifecycle::Epoch { epoch });
        }
        Ok(())
    }

    fn poll_settings(&self) -> poll::Settings {
        poll::Settings {
            wait: self.config.poll_wait,
            interval: self.config.poll_interval,
            limit: self.config.poll_limit,
            body_timeout: self.config.idle_timeout,
        }
    }

    /// One session: open, then route what it yields until it fails. While
    /// polling, a due streaming probe that connects carries the session on.
    async fn session(&mut self, kind: Transport) -> End {
        let mut stream = match self.open(kind).await {
            Ok(s) => s,
            Err(f) => return End::Failed(f),
        };
        self.connected(kind);
        if kind == Transport::Poll {
            self.set_state(State::Live);
        }
        loop {
            let frame = match stream.next(&self.link, self.at()).await {
                Ok(frame) => frame,
                Err(f) => return End::Failed(f),
            };
            let routed = match frame {
                Frame::PageEnd => self.probe().await.map(|upgraded| {
                    if let Some(upgraded) = upgraded {
                        stream = upgraded;
                    }
                }),
                Frame::RetryHint(ms) => {
                    self.policy.retry_hint(ms);
                    Ok(())
                }
                Frame::Epoch(seen) => self.learn(Some(seen)).map_err(End::Failed),
                Frame::Message(m) => self.on_message(m).await,
            };
            if let Err(end) = routed {
                return end;
            }
        }
    }

    /// A streaming attempt while polling, if the policy says one is due. A
    /// probe whose answer refuses the cursor ends the session: it is fatal.
    async fn probe(&mut self) -> Result<Option<Stream<C::Stream>>, End> {
        let Some(kind) = self.policy.probe(Instant::now().into_std()) else {
            return Ok(None);
        };
        self.timeline.record(Lifecycle::Probe { transport: kind });
        match self.open(kind).await {
            Ok(stream) => {
                self.policy.probe_succeeded(Instant::now().into_std());
                self.flush_notes();
                self.metrics.set_transport(kind);
                self.set_state(State::Replaying);
                Ok(Some(stream))
            }
            Err(f) if epoch::refuses_cursor(&f) => Err(End::Failed(f)),
            Err(f) => {
                self.policy.probe_failed(&f);
                self.timeline.record(Lifecycle::ProbeFailed { cause: f });
                Ok(None)
            }
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        match message {
            Message::Event(event) => self.deliver(event).await,
            Message::Control(Control::CaughtUp { .. }) => {
                self.set_state(State::Live);
                Ok(())
            }
            Message::Control(Control::Heartbeat { head, prev, .. }) => {
                self.metrics.heartbeat();
                // A quiet stream whose head (a filtered one's last match)
                // moved past us lost something.
                if self.state == State::Live
                    && let Some(missing) = self.gate.behind(prev.unwrap_or(head))
                {
                    self.repair(*missing.end()).await?;
                }
                Ok(())
            }
            // Only in answer to a `subscribe`, which this client does not send.
            Message::Control(Control::Subscribed { .. }) => Ok(()),
            Message::Control(Control::Overflow { last_id }) => Err(End::Failed(retry(&format!(
                "the server dropped us as a slow consumer after id {last_id}"
            )))),
            Message::Control(Control::CursorExpired { cursor, oldest, .. }) => {
                Err(End::Failed(Failure::Fatal(ClientError::CursorExpired {
                    cursor,
                    oldest: Some(oldest),
                })))
            }
            Message::Control(Control::Reset {
                from,
                epoch,
                oldest,
                head,
            }) => Err(End::Failed(Failure::Fatal(ClientError::EpochChanged {
                from,
                epoch,
                oldest: Some(oldest),
                head: Some(head),
            }))),
        }
    }

    /// Through the gate: delivered, dropped, or delivered after its gap is
    /// repaired.
    ///
    /// The subscriber's slot is reserved before the gate is asked: a session
    /// cancelled while it waits for a slow subscriber (a reconnect) has then
    /// moved nothing, and resumes before this event instead of after it.
    async fn deliver(&mut self, event: Event) -> Result<(), End> {
        loop {
            let slot = self.tx.reserve().await.map_err(|_| End::Gone)?;
            match self.gate.offer(event.id, event.prev_id()) {
                Offer::Deliver => {
                    self.metrics.delivered(event.pub_us, (self.config.clock)());
                    slot.send(Ok(event));
                    return Ok(());
                }
                Offer::Duplicate => {
                    self.metrics.duplicate();
                    return Ok(());
                }
                // Once repaired, the same event is offered again; the
                // repair needs the slot itself.
                Offer::Gap(missing) => {
                    drop(slot);
                    self.repair(*missing.end()).await?;
                }
            }
        }
    }

    /// Repairs every id up to `upto` from the polling endpoint.
    async fn repair(&mut self, upto: u64) -> Result<(), End> {
        let Some(missing) = self.gate.start_repair(upto) else {
            return Ok(());
        };
        self.metrics.set_repairing(true);
        tracing::warn!(
            from = missing.start(),
            upto,
            "gap in ids: repairing from the polling endpoint"
        );
        self.timeline.record(Lifecycle::Gap { missing });
        let result = self.fill().await;
        if result.is_err() {
            self.gate.repair_failed();
        } else {
            self.metrics.gap_repaired();
        }
        self.metrics.set_repairing(self.gate.repairing().is_some());
        result
    }

    async fn fill(&mut self) -> Result<(), End> {
        while let Some(page) = self.gate.next_page(self.config.poll_limit as u64) {
            // The stream is not read meanwhile: a repair that outlasts the
            // idle deadline ends the session, so a stream that died during
            // it is replaced in time.
            let idle = self.config.idle_timeout;
            let fetch = poll::fetch(
                &self.link,
                self.epoch.cursor(page.after),
                page.limit as usize,
                Duration::ZERO,
                idle,
            );
            let got = tokio::time::timeout(idle, fetch).await.map_err(|_| {
                retry(&format!(
                    "gap repair took longer than the idle deadline ({} ms)",
                    idle.as_millis()
                ))
            })??;
            self.learn(got.epoch)?;
            for event in got.events {
                let slot = self.tx.reserve().await.map_err(|_| End::Gone)?;
                if self.gate.feed(event.id, event.prev_id()) == Repaired::Deliver {
                    self.metrics.delivered(event.pub_us, (self.config.clock)());
                    slot.send(Ok(event));
                }
            }
            self.gate
                .page_done()
                .map_err(|s| retry(&format!("gap repair found nothing after id {}", s.after)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn a_busy_policy_ends_the_abandoned_attempt_instead_of_panicking() {
        // Only an origin: the policy never reads the clock itself.
        let t = std::time::Instant::now();
        let config = PolicyConfig {
            jitter: 0.0,
            ..PolicyConfig::default()
        };
        let mut p = Policy::new(config, 1, t);
        assert_eq!(step(&mut p, t), Step::Attempt(Transport::Sse));
        // The attempt is never reported: the policy is busy.
        assert_eq!(p.next(t), Next::Busy);
        assert_eq!(
            step(&mut p, t),
            Step::Wait(t + Duration::from_secs(1)),
            "the abandoned attempt counts as a failure, with backoff"
        );
        assert_eq!(p.failures(), 1);
        assert!(matches!(
            step(&mut p, t + Duration::from_secs(1)),
            Step::Attempt(_)
        ));
    }
}
