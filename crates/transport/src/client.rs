//! The client handle: its configuration, the one ordered subscription, and
//! the driver task it owns (aborted on `close` or when dropped, so no task
//! and no socket outlives the handle). The work is in `driver`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use wire::Event;

use crate::driver::Driver;
use crate::epoch::Held;
use crate::error::ClientError;
use crate::http::Timeouts;
use crate::metrics::{Metrics, State};
use crate::net::{Connect, Endpoint, Link};
use crate::policy::{PolicyConfig, UrlOrder};
use crate::timeline::{Timeline, TimelineEntry};
use crate::tls::Tls;

/// Microseconds since the Unix epoch, for latency (the binary passes the
/// system clock; the simulation its own).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Clone)]
pub struct ClientConfig {
    /// The wire's base URLs, such as `http://127.0.0.1:8091`: at least one;
    /// several are nodes serving the same stream (same epoch, same ids). The
    /// client works on one at a time and fails over to the next (wrapping)
    /// when an attempt or a connection fails for a reason of the node's
    /// (refused, reset, a timeout, the idle deadline, a 5xx), resuming with
    /// the same cursor; see [`crate::policy`] for when it waits. TLS and
    /// plain URLs may be mixed.
    pub urls: Vec<String>,
    /// The order `urls` are tried in: as given, or a shuffle seeded by
    /// `seed`, once at start.
    pub url_order: UrlOrder,
    pub policy: PolicyConfig,
    /// No whole message for this long (an event, a heartbeat, an SSE
    /// comment, a WebSocket ping; bytes of an unfinished one do not count)
    /// and the connection is deemed dead and replaced. The config's
    /// `health_check_interval_s`.
    pub idle_timeout: Duration,
    pub timeouts: Timeouts,
    /// Long-poll wait on `GET /events`; zero polls without waiting.
    pub poll_wait: Duration,
    /// The least time between two polls that found nothing.
    pub poll_interval: Duration,
    pub poll_limit: usize,
    /// Deliver events after this cursor. Bare (`Cursor::bare(0)`: from the
    /// first), it means "in whatever epoch the wire has", learnt from its
    /// first answer; with an epoch, an answer from another one stops the
    /// client with [`ClientError::EpochChanged`].
    pub start_after: wire::Cursor,
    /// The symbols and kinds to receive (all by default). The server sends
    /// only those, each with the id of the previous match (`prev`), and the
    /// client checks that chain instead of id contiguity: a break is
    /// repaired from the polling endpoint with the same filter. Events the
    /// filter leaves out never cross the network, so no metric counts them.
    pub filter: wire::Filter,
    /// Bearer token, if the wire wants one.
    pub token: Option<String>,
    /// Whom to trust on `https://` and `wss://`: the platform's roots by
    /// default, or a private CA ([`Tls::from_ca_file`]).
    pub tls: Tls,
    /// Seeds the jitter and a [`UrlOrder::Random`] shuffle.
    pub seed: u64,
    /// Events buffered for a slow subscriber before the client stops reading.
    pub buffer: usize,
    pub clock: Clock,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("urls", &self.urls)
            .field("url_order", &self.url_order)
            .field("policy", &self.policy)
            .field("start_after", &self.start_after)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// One URL, the defaults for the rest.
    pub fn new(url: &str, clock: Clock) -> ClientConfig {
        ClientConfig {
            urls: vec![url.to_owned()],
            url_order: UrlOrder::InOrder,
            policy: PolicyConfig::default(),
            idle_timeout: Duration::from_secs(30),
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                headers: Duration::from_secs(10),
            },
            poll_wait: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            poll_limit: 1000,
            start_after: wire::Cursor::bare(0),
            filter: wire::Filter::all(),
            token: None,
            tls: Tls::platform(),
            seed: 0,
            buffer: 1024,
            clock,
        }
    }

    /// These URLs instead (at least one, or `Client::connect` refuses).
    pub fn with_urls(mut self, urls: Vec<String>) -> ClientConfig {
        self.urls = urls;
        self
    }

    /// Every URL parsed, in the order given; a bad one (or none) is
    /// [`ClientError::BadUrl`] naming it.
    pub(crate) fn endpoints(&self) -> Result<Vec<Endpoint>, ClientError> {
        if self.urls.is_empty() {
            return Err(ClientError::BadUrl("no wire URL given".into()));
        }
        self.urls
            .iter()
            .map(|u| Endpoint::parse(u).map_err(ClientError::BadUrl))
            .collect()
    }
}

pub(crate) type Item = Result<Event, ClientError>;

/// A running client. Dropping it stops the driver and its connections.
#[doc = include_str!("client.md")]
#[derive(Debug)]
pub struct Client {
    events: Option<mpsc::Receiver<Item>>,
    metrics: Arc<Metrics>,
    reconnect: Arc<Notify>,
    timeline: Timeline,
    epoch: Held,
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
    /// Starts the client's task. Fails only on a bad URL (any of them, or
    /// none), or on a TLS URL whose trust cannot be set up (no platform
    /// roots).
    pub fn connect<C: Connect>(connector: C, config: ClientConfig) -> Result<Client, ClientError> {
        let endpoints = config.endpoints()?;
        if endpoints.iter().any(Endpoint::is_tls) {
            config.tls.check()?;
        }
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let metrics = Arc::new(Metrics::default());
        let reconnect = Arc::new(Notify::new());
        let now = Instant::now();
        let timeline = Timeline::new(now);
        let epoch = Held::new(config.start_after.epoch);
        let link = Link {
            connector,
            endpoint: endpoints[0].clone(),
            token: config.token.clone(),
            timeouts: config.timeouts,
            tls: config.tls.clone(),
            filter: config.filter.to_query(),
        };
        let driver = Driver::new(
            (link, endpoints),
            config,
            (now, epoch.clone()),
            tx,
            metrics.clone(),
            reconnect.clone(),
            timeline.clone(),
        );
        let task = tokio::spawn(driver.run());
        Ok(Client {
            events: Some(rx),
            metrics,
            reconnect,
            timeline,
            epoch,
            task,
        })
    }

    /// The wire's head (its newest id, in its epoch when it names one),
    /// asked with `config`'s token and timeouts of each URL in the order
    /// given until one answers (a URL that does not answer at all,
    /// [`ClientError::Unreachable`], passes to the next; any other answer,
    /// a refusal included, is the result): to start at the head, set
    /// `start_after` to it.
    pub async fn head<C: Connect>(connector: C, config: &ClientConfig) -> Result<wire::Cursor, ClientError> {
        let endpoints = config.endpoints()?;
        let mut link = Link {
            connector,
            endpoint: endpoints[0].clone(),
            token: config.token.clone(),
            timeouts: config.timeouts,
            tls: config.tls.clone(),
            filter: config.filter.to_query(),
        };
        let mut answer = Err(ClientError::BadUrl("no wire URL given".into()));
        for endpoint in endpoints {
            link.endpoint = endpoint;
            answer = crate::poll::head(&link).await;
            if !matches!(answer, Err(ClientError::Unreachable(_))) {
                break;
            }
        }
        answer
    }

    /// The ordered stream of events. There is one: a second call gets `None`.
    pub fn subscribe(&mut self) -> Option<Subscription> {
        self.events.take().map(Subscription)
    }

    /// The epoch of every event delivered: the start cursor's, or learnt
    /// from the wire's first answer that names one, before its first event
    /// is handed over. It never changes: an answer from another epoch stops
    /// the client ([`ClientError::EpochChanged`]) instead. `None` while no
    /// answer has named one (a server that predates epochs never does).
    pub fn epoch(&self) -> Option<wire::Epoch> {
        self.epoch.get()
    }

    /// Drops the current connection and reconnects now, from the last id.
    pub fn reconnect(&self) {
        self.reconnect.notify_one();
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.timeline.entries()
    }

    /// Stops everything: the task is cancelled and awaited, so no task and
    /// no socket outlives this call.
    pub async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.metrics.set_state(State::Closed);
    }
}

/// A caller that returns early (an error, a `?`) without `close` must not
/// leave the driver reading, nor its socket open: aborting the task drops
/// its session, and with it every connection.
impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
        self.metrics.set_state(State::Closed);
    }
}
