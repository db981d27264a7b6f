//! The wire stub: an append-only event log served to HTTP polling
//! (`/events`), Server-Sent Events (`/stream`) and WebSocket (`/ws`).
//!
//! Generic over the network: [`serve`] takes an already-bound
//! [`axum::serve::Listener`], so the same code runs on tokio sockets and
//! under turmoil. It reads no real clock: publish times come from the
//! [`Clock`] it is given, and waiting uses tokio's clock.

mod config;
mod conns;
mod feed;
mod http;
mod log;
mod metrics;
mod replay;
mod serve;
mod tls;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use conns::{ConnView, Transport};
pub use http::{app, dashboard};
pub use log::{
    Ack, Appended, BadKey, Batch, Disk, Entry, EventLog, Expired, FileDisk, FixtureAt, HeadWatch,
    IdempotencyKey, Interest, JetStream, JetStreamOptions, KeyWindow, Log, LogError, LogService, LogStatus,
    MAX_KEY_LEN, MemoryService, Miss, NodeLog, NodeOptions, Record, Scan, ServiceInfo, Source, Stored, Tag,
    Topic,
};
pub use replay::{Pace, replay};
pub use serve::{nodelay, serve, serve_tls};
pub use tls::ServerTls;

/// Microseconds since the Unix epoch. The binary passes the system clock;
/// the simulation passes its own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The stub's shared state; cheap to clone.
#[derive(Clone)]
pub struct Stub(Arc<Shared>);

struct Shared {
    config: Config,
    log: Arc<dyn EventLog>,
    conns: Arc<conns::Conns>,
    metrics: metrics::Metrics,
    clock: Clock,
    /// Cancelled when the server shuts down; every connection's kill token
    /// is a child of it, so one wait covers both.
    shutdown: CancellationToken,
    /// `/stream` and `/ws` answer 404 while false (maintenance, tests).
    streaming: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("epoch", &self.0.log.epoch())
            .field("head", &self.0.log.head())
            .finish()
    }
}

impl Stub {
    pub fn new(config: Config, log: impl EventLog, clock: Clock) -> Stub {
        Stub::on(config, Arc::new(log), clock)
    }

    /// [`Stub::new`] on a log chosen at run time (the binary's).
    pub fn on(config: Config, log: Arc<dyn EventLog>, clock: Clock) -> Stub {
        Stub(Arc::new(Shared {
            config,
            log,
            conns: Arc::default(),
            metrics: metrics::Metrics::default(),
            clock,
            shutdown: CancellationToken::new(),
            streaming: std::sync::atomic::AtomicBool::new(true),
        }))
    }

    pub fn log(&self) -> &dyn EventLog {
        &*self.0.log
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Publishes payloads under the next ids, stamped with the clock's time
    /// (see [`EventLog::append`]: with a journal, the write and fsync run on
    /// a blocking thread).
    pub async fn publish(
        &self,
        source: Source,
        payloads: &[wire::Payload],
    ) -> Result<std::ops::RangeInclusive<u64>, LogError> {
        self.publish_keyed(source, None, payloads.to_vec())
            .await
            .map(|a| a.ids)
    }

    /// [`publish`](Stub::publish) under an idempotency key: a retry with the
    /// same key and payloads answers the first attempt's ids
    /// (`replayed: true`) and appends nothing.
    pub async fn publish_keyed(
        &self,
        source: Source,
        key: Option<IdempotencyKey>,
        payloads: Vec<wire::Payload>,
    ) -> Result<Appended, LogError> {
        self.append(Batch {
            source,
            key,
            payloads,
            pub_us: (self.0.clock)(),
            fixture_at: None,
        })
        .await
    }

    /// Publishes fixture payloads that sit at `at` in their fixture (a
    /// shared log knows each line by its place, so a second node replaying
    /// the same fixture publishes nothing twice).
    pub async fn publish_fixture(
        &self,
        at: FixtureAt,
        payloads: &[wire::Payload],
    ) -> Result<Appended, LogError> {
        self.append(Batch {
            source: Source::Fixture,
            key: None,
            payloads: payloads.to_vec(),
            pub_us: (self.0.clock)(),
            fixture_at: Some(at),
        })
        .await
    }

    async fn append(&self, batch: Batch) -> Result<Appended, LogError> {
        let n = batch.payloads.len() as u64;
        let appended = self.0.log.append(batch).await?;
        if !appended.replayed {
            self.0.metrics.published.inc_by(n);
        }
        Ok(appended)
    }

    /// Every live client, by id.
    pub fn connections(&self) -> Vec<ConnView> {
        let head = self.0.log.head();
        self.0.conns.all().iter().map(|c| c.view(head)).collect()
    }

    /// The figures of `/metrics.json`.
    pub fn metrics_json(&self) -> serde_json::Value {
        self.0.metrics.json(&*self.0.log, &self.0.conns)
    }

    /// Clients disconnected for falling too far behind (`overflow`, or cut by
    /// the sweeper).
    pub fn slow_consumer_drops(&self) -> u64 {
        self.0.metrics.overflow_drops.get()
    }

    /// Turns the streaming endpoints off (404, so clients fall back to
    /// polling) or back on. Open streams are not affected.
    pub fn set_streaming(&self, on: bool) {
        self.0.streaming.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn streaming(&self) -> bool {
        self.0.streaming.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cancelled when the server shuts down: every stream ends. Cancel it to
    /// shut down; `serve` also cancels it when its shutdown future resolves.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }
}
