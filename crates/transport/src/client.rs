//! The client: one driver task runs sessions on the transport the policy
//! picks, and hands the subscriber one ordered stream of events, each id
//! exactly once. Duplicates are dropped; a gap is repaired from the polling
//! endpoint before any later event is delivered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::header;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use wire::{Control, Event, Message};

use crate::http::{self, Reply, Timeouts, retry};
use crate::metrics::{Metrics, State};
use crate::net::{Connect, Endpoint};
use crate::policy::{Failure, Next, Note, Policy, PolicyConfig, Transport};

/// Microseconds since the Unix epoch, for latency (the binary passes the
/// system clock; the simulation its own).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Clone)]
pub struct ClientConfig {
    /// The wire's base URL, such as `http://127.0.0.1:8091`.
    pub url: String,
    pub policy: PolicyConfig,
    /// No byte for this long (heartbeats included) and the connection is
    /// deemed dead and replaced. The config's `health_check_interval_s`.
    pub idle_timeout: Duration,
    pub timeouts: Timeouts,
    /// Long-poll wait on `GET /events`; zero polls without waiting.
    pub poll_wait: Duration,
    /// The least time between two polls that found nothing.
    pub poll_interval: Duration,
    pub poll_limit: usize,
    /// Deliver events after this id (0: from the first).
    pub start_after: u64,
    /// Bearer token, if the wire wants one.
    pub token: Option<String>,
    /// Seeds the jitter.
    pub seed: u64,
    /// Events buffered for a slow subscriber before the client stops reading.
    pub buffer: usize,
    pub clock: Clock,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("policy", &self.policy)
            .field("start_after", &self.start_after)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(url: &str, clock: Clock) -> ClientConfig {
        ClientConfig {
            url: url.to_owned(),
            policy: PolicyConfig::default(),
            idle_timeout: Duration::from_secs(30),
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                headers: Duration::from_secs(10),
            },
            poll_wait: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            poll_limit: 1000,
            start_after: 0,
            token: None,
            seed: 0,
            buffer: 1024,
            clock,
        }
    }
}

/// Why the client stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError(pub String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClientError {}

/// One line of the client's lifecycle, for logs and simulation timelines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimelineEntry {
    /// Since the client started, by tokio's clock.
    pub at_ms: u64,
    pub what: String,
    pub why: String,
}

type Item = Result<Event, ClientError>;

/// A running client.
#[derive(Debug)]
pub struct Client {
    events: Option<mpsc::Receiver<Item>>,
    metrics: Arc<Metrics>,
    reconnect: Arc<Notify>,
    timeline: Arc<Mutex<Vec<TimelineEntry>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The ordered events; an `Err` is the last item.
#[derive(Debug)]
pub struct Subscription(mpsc::Receiver<Item>);

impl Subscription {
    pub async fn next(&mut self) -> Option<Item> {
        self.0.recv().await
    }
}

impl Client {
    /// Starts the client's task. Fails only on a bad URL.
    pub fn connect<C: Connect>(connector: C, config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(&config.url).map_err(ClientError)?;
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let metrics = Arc::new(Metrics::default());
        let reconnect = Arc::new(Notify::new());
        let timeline = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        let driver = Driver {
            connector,
            endpoint,
            policy: Policy::new(config.policy.clone(), config.seed, now.into_std()),
            last: config.start_after,
            tx,
            metrics: metrics.clone(),
            reconnect: reconnect.clone(),
            timeline: timeline.clone(),
            started: now,
            first_attempt: true,
            config,
        };
        let task = tokio::spawn(driver.run());
        Ok(Client {
            events: Some(rx),
            metrics,
            reconnect,
            timeline,
            task,
        })
    }

    /// The ordered stream of events. There is one: a second call gets `None`.
    pub fn subscribe(&mut self) -> Option<Subscription> {
        self.events.take().map(Subscription)
    }

    /// Drops the current connection and reconnects now, from the last id.
    pub fn reconnect(&self) {
        self.reconnect.notify_one();
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.timeline.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops everything: the task is cancelled and awaited, so no task and
    /// no socket outlives this call.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
        self.metrics.set_state(State::Closed);
    }
}

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

/// An open streaming connection, checked and ready to read.
enum Stream<S> {
    Sse(Reply),
    Ws(Box<tokio_tungstenite::WebSocketStream<S>>),
}

struct Driver<C: Connect> {
    connector: C,
    endpoint: Endpoint,
    config: ClientConfig,
    policy: Policy,
    /// The last id delivered to the subscriber.
    last: u64,
    tx: mpsc::Sender<Item>,
    metrics: Arc<Metrics>,
    reconnect: Arc<Notify>,
    timeline: Arc<Mutex<Vec<TimelineEntry>>>,
    started: Instant,
    first_attempt: bool,
}

const TIMELINE_CAP: usize = 10_000;

impl<C: Connect> Driver<C> {
    async fn run(mut self) {
        loop {
            let now = Instant::now();
            match self.policy.next(now.into_std()) {
                Next::Stop(reason) => {
                    self.note("stopped", &reason);
                    tracing::error!(reason, "wire client stopped");
                    self.metrics.set_state(State::Stopped);
                    let _ = self.tx.send(Err(ClientError(reason))).await;
                    return;
                }
                Next::Busy => unreachable!("the driver runs one attempt at a time"),
                Next::WaitUntil(at) => {
                    self.metrics.set_state(State::Backoff);
                    let reconnect = self.reconnect.clone();
                    tokio::select! {
                        biased;
                        () = reconnect.notified() => self.policy.restart(Instant::now().into_std()),
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                Next::Attempt(kind) => {
                    self.attempting(kind);
                    let reconnect = self.reconnect.clone();
                    let end = tokio::select! {
                        biased;
                        () = reconnect.notified() => End::Failed(Failure::Retry {
                            reason: "reconnect requested".into(),
                            retry_after: None,
                        }),
                        end = self.session(kind) => end,
                    };
                    match end {
                        End::Gone => return,
                        End::Failed(failure) => {
                            let why = match &failure {
                                Failure::Retry { reason, .. } | Failure::Fatal(reason) => reason.clone(),
                                Failure::StreamMissing => "endpoint missing (404)".into(),
                            };
                            self.note("disconnected", &why);
                            tracing::warn!(transport = kind.as_str(), cause = %why, last_id = self.last, "disconnected");
                            self.policy.failed(Instant::now().into_std(), failure);
                        }
                    }
                }
            }
            self.flush_notes();
        }
    }

    fn attempting(&mut self, kind: Transport) {
        self.metrics
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !std::mem::take(&mut self.first_attempt) {
            self.metrics
                .reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.metrics
                .last_reconnect_us
                .store((self.config.clock)(), std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics.set_transport(kind);
        self.metrics.set_state(State::Connecting);
        self.note("connecting", &format!("{} after id {}", kind.as_str(), self.last));
        tracing::info!(transport = kind.as_str(), last_id = self.last, "connecting");
    }

    fn connected(&mut self, kind: Transport) {
        self.policy.connected(Instant::now().into_std());
        self.metrics.set_state(State::Replaying);
        self.note("connected", kind.as_str());
        tracing::info!(transport = kind.as_str(), last_id = self.last, "connected");
    }

    fn note(&self, what: &str, why: &str) {
        let mut t = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() < TIMELINE_CAP {
            t.push(TimelineEntry {
                at_ms: self.started.elapsed().as_millis() as u64,
                what: what.to_owned(),
                why: why.to_owned(),
            });
        }
    }

    fn flush_notes(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        for n in self.policy.take_notes() {
            match n {
                Note::Backoff {
                    attempt,
                    delay,
                    reason,
                } => {
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, reason, "backoff");
                    self.note(
                        "backoff",
                        &format!("attempt {attempt}, wait {} ms", delay.as_millis()),
                    );
                }
                Note::Fallback { reason } => {
                    self.metrics.fallbacks.fetch_add(1, Relaxed);
                    tracing::warn!(reason, "falling back to polling");
                    self.note("fallback", &reason);
                }
                Note::Upgrade { to } => {
                    self.metrics.upgrades.fetch_add(1, Relaxed);
                    tracing::info!(to = to.as_str(), "upgraded back to streaming");
                    self.note("upgrade", to.as_str());
                }
                Note::Reset => self.note("backoff reset", "the connection stayed healthy"),
            }
        }
    }

    fn auth_headers(&self) -> Vec<(header::HeaderName, String)> {
        self.config
            .token
            .iter()
            .map(|t| (header::AUTHORIZATION, format!("Bearer {t}")))
            .collect()
    }

    async fn session(&mut self, kind: Transport) -> End {
        if kind == Transport::Poll {
            return self.poll_session().await;
        }
        match self.open(kind).await {
            Ok(stream) => {
                self.connected(kind);
                self.run_stream(stream).await
            }
            Err(f) => End::Failed(f),
        }
    }

    /// Opens a streaming connection and checks its answer.
    async fn open(&mut self, kind: Transport) -> Result<Stream<C::Stream>, Failure> {
        match kind {
            Transport::Sse => {
                let mut headers = self.auth_headers();
                headers.push((header::ACCEPT, "text/event-stream".into()));
                headers.push((header::CACHE_CONTROL, "no-cache".into()));
                if self.last > 0 {
                    headers.push((
                        header::HeaderName::from_static("last-event-id"),
                        self.last.to_string(),
                    ));
                }
                let path = format!("/stream?cursor={}", self.last);
                let reply = http::get(
                    &self.connector,
                    &self.endpoint,
                    &path,
                    &headers,
                    self.config.timeouts,
                )
                .await?;
                let status = reply.response.status();
                if status == hyper::StatusCode::OK && http::is_event_stream(reply.response.headers()) {
                    return Ok(Stream::Sse(reply));
                }
                if status == hyper::StatusCode::OK {
                    return Err(Failure::Fatal(
                        "the stream's Content-Type is not text/event-stream".into(),
                    ));
                }
                let headers = reply.response.headers().clone();
                let body = reply
                    .text(64 << 10, self.config.timeouts.headers)
                    .await
                    .unwrap_or_default();
                Err(http::classify(status, &headers, &body))
            }
            Transport::Ws => self.open_ws().await.map(|ws| Stream::Ws(Box::new(ws))),
            Transport::Poll => Err(Failure::Fatal("polling is not a stream".into())),
        }
    }

    async fn open_ws(&mut self) -> Result<tokio_tungstenite::WebSocketStream<C::Stream>, Failure> {
        use tungstenite::client::IntoClientRequest;
        let url = format!(
            "ws://{}{}",
            self.endpoint.authority(),
            self.endpoint.path(&format!("/ws?cursor={}", self.last))
        );
        let mut req = url
            .into_client_request()
            .map_err(|e| Failure::Fatal(format!("bad WebSocket URL: {e}")))?;
        for (name, value) in self.auth_headers() {
            if let Ok(v) = value.parse() {
                req.headers_mut().insert(name, v);
            }
        }
        let t = self.config.timeouts;
        let stream = tokio::time::timeout(
            t.connect,
            self.connector.connect(&self.endpoint.host, self.endpoint.port),
        )
        .await
        .map_err(|_| retry("WebSocket connect timed out"))?
        .map_err(|e| retry(&format!("WebSocket connect: {e}")))?;
        let mut config = tungstenite::protocol::WebSocketConfig::default();
        config.max_message_size = Some(16 << 20);
        config.max_frame_size = Some(16 << 20);
        let handshake = tokio_tungstenite::client_async_with_config(req, stream, Some(config));
        match tokio::time::timeout(t.headers, handshake).await {
            Err(_) => Err(retry("WebSocket handshake timed out")),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(res))) => {
                let body = res
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(http::classify(res.status(), res.headers(), &body))
            }
            Ok(Err(e)) => Err(retry(&format!("WebSocket handshake: {e}"))),
        }
    }

    /// Reads a streaming connection until it fails or goes silent.
    async fn run_stream(&mut self, stream: Stream<C::Stream>) -> End {
        match self.read_stream(stream).await {
            Err(end) => end,
            Ok(()) => End::Failed(retry("the stream ended")),
        }
    }

    async fn read_stream(&mut self, stream: Stream<C::Stream>) -> Result<(), End> {
        let idle = self.config.idle_timeout;
        match stream {
            Stream::Sse(reply) => {
                let (response, _conn) = reply.into_parts();
                let mut body = response.into_body();
                let mut decoder = sse::Decoder::default();
                loop {
                    let frame = match tokio::time::timeout(idle, body.frame()).await {
                        Err(_) => return Err(idle_failure(idle)),
                        Ok(None) => return Err(retry("the server ended the stream").into()),
                        Ok(Some(Err(e))) => return Err(retry(&format!("stream read: {e}")).into()),
                        Ok(Some(Ok(frame))) => frame,
                    };
                    let Ok(data) = frame.into_data() else { continue };
                    decoder.push(&data);
                    loop {
                        let message = match decoder.next_frame() {
                            None => break,
                            Some(Err(e)) => return Err(retry(&format!("bad SSE: {e}")).into()),
                            Some(Ok(sse::Frame::Retry(ms))) => {
                                self.policy.retry_hint(ms);
                                continue;
                            }
                            Some(Ok(sse::Frame::Comment(_))) => continue,
                            Some(Ok(sse::Frame::Event(e))) => wire::sse::decode(&e),
                        };
                        let m = message
                            .map_err(|e| retry(&format!("malformed event after id {}: {e}", self.last)))?;
                        self.on_message(m).await?;
                    }
                }
            }
            Stream::Ws(mut ws) => loop {
                let msg = match tokio::time::timeout(idle, ws.next()).await {
                    Err(_) => return Err(idle_failure(idle)),
                    Ok(None) => return Err(retry("the server closed the WebSocket").into()),
                    Ok(Some(Err(e))) => return Err(retry(&format!("WebSocket read: {e}")).into()),
                    Ok(Some(Ok(m))) => m,
                };
                match msg {
                    tungstenite::Message::Text(text) => {
                        let m = wire::ws::decode(&text)
                            .map_err(|e| retry(&format!("malformed message after id {}: {e}", self.last)))?;
                        self.on_message(m).await?;
                    }
                    tungstenite::Message::Close(_) => {
                        return Err(retry("the server closed the WebSocket").into());
                    }
                    _ => {}
                }
            },
        }
    }

    /// Polls until a failure, or until a streaming probe succeeds (then the
    /// stream carries on in this session).
    async fn poll_session(&mut self) -> End {
        match self.poll_loop().await {
            Err(end) => end,
            Ok(()) => End::Failed(retry("polling ended")),
        }
    }

    async fn poll_loop(&mut self) -> Result<(), End> {
        let mut connected = false;
        loop {
            let started = Instant::now();
            let page = self
                .fetch(self.last, self.config.poll_limit, self.config.poll_wait)
                .await?;
            if !connected {
                connected = true;
                self.connected(Transport::Poll);
                self.metrics.set_state(State::Live);
            }
            let empty = page.events.is_empty();
            for event in page.events {
                self.deliver(event).await?;
            }
            if let Some(kind) = self.policy.probe(Instant::now().into_std()) {
                self.note("probe", kind.as_str());
                match self.open(kind).await {
                    Ok(stream) => {
                        self.policy.probe_succeeded(Instant::now().into_std());
                        self.flush_notes();
                        self.metrics.set_transport(kind);
                        self.metrics.set_state(State::Replaying);
                        return self.read_stream(stream).await;
                    }
                    Err(f) => {
                        self.note("probe failed", &format!("{f:?}"));
                        self.policy.probe_failed(&format!("{f:?}"));
                    }
                }
            }
            if empty {
                tokio::time::sleep_until(started + self.config.poll_interval).await;
            }
        }
    }

    /// One polling request.
    async fn fetch(&mut self, after: u64, limit: usize, wait: Duration) -> Result<wire::poll::Page, Failure> {
        let path = format!(
            "/events?cursor={after}&limit={limit}&wait_ms={}",
            wait.as_millis()
        );
        let timeouts = Timeouts {
            connect: self.config.timeouts.connect,
            headers: self.config.timeouts.headers + wait,
        };
        let reply = http::get(
            &self.connector,
            &self.endpoint,
            &path,
            &self.auth_headers(),
            timeouts,
        )
        .await?;
        let status = reply.response.status();
        let headers = reply.response.headers().clone();
        let body = reply.text(64 << 20, self.config.idle_timeout).await?;
        match status.as_u16() {
            200 => serde_json::from_str(&body).map_err(|e| retry(&format!("malformed polling page: {e}"))),
            410 => Err(Failure::Fatal(format!(
                "cursor {after} is older than the server's retention (oldest id {})",
                wire::Problem::from_body(&body)
                    .and_then(|p| p.oldest)
                    .map_or_else(|| "unknown".to_owned(), |o| o.to_string())
            ))),
            _ => Err(match http::classify(status, &headers, &body) {
                // The polling endpoint itself missing is not a stream problem.
                Failure::StreamMissing => Failure::Fatal(format!("{path}: 404 Not Found")),
                f => f,
            }),
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        match message {
            Message::Event(event) => self.deliver(event).await,
            Message::Control(Control::CaughtUp { .. }) => {
                self.metrics.set_state(State::Live);
                Ok(())
            }
            Message::Control(Control::Heartbeat { head }) => {
                self.metrics
                    .heartbeats
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // A quiet stream whose head moved past us lost something.
                if head > self.last && self.metrics.state() == State::Live {
                    self.repair(head).await?;
                }
                Ok(())
            }
            Message::Control(Control::Overflow { last_id }) => Err(End::Failed(retry(&format!(
                "the server dropped us as a slow consumer after id {last_id}"
            )))),
            Message::Control(Control::CursorExpired { cursor, oldest, .. }) => {
                Err(End::Failed(Failure::Fatal(format!(
                    "cursor {cursor} is older than the server's retention (oldest id {oldest})"
                ))))
            }
        }
    }

    /// Delivers in order, exactly once: a duplicate is dropped, a gap is
    /// filled from the polling endpoint first.
    async fn deliver(&mut self, event: Event) -> Result<(), End> {
        if event.id <= self.last {
            self.metrics
                .duplicates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        if event.id > self.last + 1 {
            self.repair(event.id - 1).await?;
        }
        self.send(event).await
    }

    async fn send(&mut self, event: Event) -> Result<(), End> {
        debug_assert_eq!(event.id, self.last + 1);
        self.last = event.id;
        self.metrics.delivered(event.pub_us, (self.config.clock)());
        self.tx.send(Ok(event)).await.map_err(|_| End::Gone)
    }

    /// Fetches and delivers every event up to `upto` from the polling
    /// endpoint.
    async fn repair(&mut self, upto: u64) -> Result<(), End> {
        use std::sync::atomic::Ordering::Relaxed;
        let from = self.last;
        self.metrics.repairing.store(true, Relaxed);
        self.note(
            "gap",
            &format!("ids {}..={upto} missing: repairing by polling", from + 1),
        );
        tracing::warn!(
            from = from + 1,
            upto,
            "gap in ids: repairing from the polling endpoint"
        );
        while self.last < upto {
            let want = ((upto - self.last) as usize).min(self.config.poll_limit);
            let page = self.fetch(self.last, want, Duration::ZERO).await?;
            if page.events.is_empty() {
                return Err(End::Failed(retry(&format!(
                    "gap repair found nothing after id {}",
                    self.last
                ))));
            }
            for event in page.events {
                if event.id > upto {
                    break;
                }
                if event.id == self.last + 1 {
                    self.send(event).await?;
                }
            }
        }
        self.metrics.repairing.store(false, Relaxed);
        self.metrics.gaps_repaired.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn idle_failure(idle: Duration) -> End {
    End::Failed(retry(&format!(
        "no data for {} ms: the connection is silent",
        idle.as_millis()
    )))
}
