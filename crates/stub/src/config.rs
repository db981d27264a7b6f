//! Server settings. Every one has a default that works; a YAML file or flags
//! override them, and an unknown key is an error that names it.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Events kept in memory; older cursors get `cursor_expired`.
    pub retention: usize,
    /// Silence after which a stream sends a heartbeat carrying the head id.
    pub heartbeat_ms: u64,
    /// The `retry:` hint sent to SSE clients, in ms.
    pub retry_ms: u64,
    /// Events a stream sends per write at most: the bound on each
    /// connection's buffer (with the socket's own buffers).
    pub batch_events: usize,
    /// hyper's per-connection buffer (read and write), in bytes: with
    /// `batch_events` and the socket's buffers, what one connection can hold.
    pub conn_buffer_bytes: usize,
    /// A live client further behind the head than this ...
    pub max_lag: u64,
    /// ... for longer than this is told `overflow` and disconnected.
    pub lag_grace_ms: u64,
    /// The least time between two writes of events to one live connection,
    /// in ms (0: write as soon as an event is in). Everything that arrives
    /// meanwhile goes out in the next write: fewer, larger writes, for at
    /// most this much more latency. A write (a TCP segment) costs the
    /// server far more than the bytes in it, so with thousands of clients
    /// this trades a few ms of latency for most of the CPU.
    pub write_delay_ms: u64,
    /// When set, every endpoint but `/healthz` needs `Authorization: Bearer
    /// <token>` (or `?access_token=<token>`, for browsers' `EventSource`).
    pub token: Option<String>,
    /// Origins allowed to call the stub from a browser page (CORS).
    pub cors_origins: Vec<String>,
    /// Host names (besides IP addresses and `localhost`) that requests may
    /// name in `Host`; others get 421, against DNS rebinding. `*`: any.
    pub allowed_hosts: Vec<String>,
    /// Largest request body (`POST /events`), in bytes.
    pub max_body_bytes: usize,
    /// Largest `limit` on `GET /events`.
    pub max_page: usize,
    /// Longest `wait_ms` on `GET /events`.
    pub max_wait_ms: u64,
    /// With TLS: offer HTTP/2 in ALPN (false: HTTP/1.1 only).
    pub http2: bool,
    /// With TLS: a client that has not finished its handshake after this
    /// many ms is dropped (the handshake runs in the connection's own task,
    /// so a silent client never stalls accepting others).
    pub tls_handshake_timeout_ms: u64,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace_ms: u64,
    /// How long a publisher's `Idempotency-Key` is remembered, in seconds of
    /// publish time: a retry within it answers the first attempt's ids.
    pub idempotency_window_s: u64,
    /// Keys remembered at most (the oldest is forgotten first): the bound
    /// on their memory, about 600 bytes each at most (a key is held twice).
    pub idempotency_keys: usize,
    /// Fault injection for tests: streams silently skip every event whose
    /// id is a multiple of this (0: never). Clients must repair the gaps.
    /// Never set it in production.
    pub drop_every: u64,
    /// Fault injection for tests: streams send every event whose id is a
    /// multiple of this twice (0: never). Clients must drop the copy.
    pub dup_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retention: 100_000,
            heartbeat_ms: 15_000,
            retry_ms: 1_000,
            batch_events: 256,
            conn_buffer_bytes: 64 << 10,
            max_lag: 50_000,
            write_delay_ms: 0,
            lag_grace_ms: 5_000,
            token: None,
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: 4 << 20,
            max_page: 10_000,
            max_wait_ms: 30_000,
            http2: true,
            tls_handshake_timeout_ms: 10_000,
            shutdown_grace_ms: 2_000,
            idempotency_window_s: 86_400,
            idempotency_keys: 100_000,
            drop_every: 0,
            dup_every: 0,
        }
    }
}

impl Config {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(1))
    }

    pub fn write_delay(&self) -> Duration {
        Duration::from_millis(self.write_delay_ms)
    }

    pub fn lag_grace(&self) -> Duration {
        Duration::from_millis(self.lag_grace_ms)
    }

    /// The idempotency window the log keeps keys for.
    pub fn key_window(&self) -> crate::KeyWindow {
        crate::KeyWindow {
            window_us: self.idempotency_window_s.saturating_mul(1_000_000),
            max_keys: self.idempotency_keys,
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
