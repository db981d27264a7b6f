//! What the transport's tests share: for the sans-IO policy, an origin
//! instant, a config without jitter and a retryable failure; over real
//! sockets, a client tuned to reconnect fast, and reading a number of
//! events with a stall deadline.
#![allow(dead_code)] // each test binary uses a part

use std::sync::Arc;
use std::time::{Duration, Instant};

use transport::{ClientConfig, Failure, PolicyConfig, Subscription, Transport};
use wire::Event;

/// A client on `urls` and `kind`, retrying from 50 ms up to 400 ms,
/// polling with short waits; seed 42.
pub fn config(urls: Vec<String>, kind: Transport) -> ClientConfig {
    let mut c = ClientConfig::new("unused", Arc::new(|| 2)).with_urls(urls);
    c.policy = PolicyConfig {
        transport: kind,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        ..PolicyConfig::default()
    };
    c.poll_wait = Duration::from_millis(500);
    c.poll_interval = Duration::from_millis(20);
    c.seed = 42;
    c
}

/// `n` more events, failing the test on an error or a stall of 20 s.
pub async fn collect(sub: &mut Subscription, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
            Ok(Some(Ok(e))) => out.push(e),
            Ok(Some(Err(e))) => panic!("client stopped after {} events: {e}", out.len()),
            Ok(None) => panic!("subscription ended after {} events", out.len()),
            Err(_) => panic!("no event for 20 s after {} events", out.len()),
        }
    }
    out
}

/// An origin for the policy's time (it never reads the clock itself).
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    Instant::now()
}

pub fn no_jitter() -> PolicyConfig {
    PolicyConfig {
        jitter: 0.0,
        ..PolicyConfig::default()
    }
}

/// A failure the policy retries.
pub fn fail(reason: &str) -> Failure {
    Failure::Retry {
        reason: reason.into(),
        retry_after: None,
    }
}

pub fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}
