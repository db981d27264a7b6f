//! The publisher host: POSTs batches of news to the stub under an
//! `Idempotency-Key`, retrying the same key and the same body on a 503, a
//! connection error or a timeout (backoff on tokio's clock, jitter from
//! the seed) until a 200, and records what each batch was acknowledged as.
//!
//! Every item's headline is a marker, `pub-<batch>-<item>`, unique in the
//! run, so the final log shows where (and whether) each item landed.

use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// What the publisher does in a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Publishing {
    pub batches: usize,
    /// Batch `b` holds `1 + b % max_items` items.
    pub max_items: usize,
    /// The first batch goes out then; the next one this long after the
    /// previous was acknowledged.
    pub start: Duration,
    pub every: Duration,
}

/// One batch and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRun {
    pub key: String,
    pub items: usize,
    pub attempts: u32,
    /// Answers other than 200 (status, code), in order.
    pub refusals: Vec<String>,
    pub acked: Option<Ack>,
}

/// A 200's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub ids: RangeInclusive<u64>,
    /// The epoch the ids belong to (absent from an older stub's answer).
    pub epoch: Option<wire::Epoch>,
    pub replayed: bool,
    pub at: Duration,
}

impl Publishing {
    pub fn items(&self, batch: usize) -> usize {
        1 + batch % self.max_items.max(1)
    }

    /// Items over all batches.
    pub fn total(&self) -> usize {
        (0..self.batches).map(|b| self.items(b)).sum()
    }
}

/// The marker in item `item` of batch `batch`.
pub fn marker(batch: usize, item: usize) -> String {
    format!("pub-{batch}-{item}")
}

/// `(batch, item)` from a headline that is a marker.
pub fn parse_marker(headline: &str) -> Option<(usize, usize)> {
    let (b, i) = headline.strip_prefix("pub-")?.split_once('-')?;
    Some((b.parse().ok()?, i.parse().ok()?))
}

fn body(batch: usize, items: usize) -> String {
    let items: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"kind":"news","symbol":"{SYMBOL}","score":0.25,"provider":"publisher","headline":"{}","ts_utc":"2026-03-02T14:30:00Z"}}"#,
                marker(batch, i)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// How long one attempt may take, connect to answer.
/// The symbol of every item the publisher sends (news).
pub const SYMBOL: &str = "SIM";

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes every batch, each until acknowledged; `record` sees each batch
/// as it finishes (so a run cut short still shows what was acknowledged).
pub(crate) async fn publish(plan: Publishing, seed: u64, mut record: impl FnMut(usize, BatchRun)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    tokio::time::sleep(plan.start).await;
    for b in 0..plan.batches {
        let items = plan.items(b);
        let body = body(b, items);
        let mut run = BatchRun {
            key: format!("sim-{seed:x}-{b}"),
            items,
            ..BatchRun::default()
        };
        let mut wait = Duration::from_millis(100);
        loop {
            run.attempts += 1;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, post(&run.key, &body)).await {
                Ok(Ok((200, text))) => {
                    run.acked = parse_ack(&text);
                    if run.acked.is_some() {
                        break;
                    }
                    run.refusals.push(format!("200 unreadable: {text}"));
                }
                Ok(Ok((status, text))) => {
                    let code = wire::Problem::from_body(&text)
                        .map(|p| p.code)
                        .unwrap_or_default();
                    run.refusals.push(format!("{status} {code}"));
                    if status != 503 {
                        // Not a storage fault: a retry would get the same answer.
                        break;
                    }
                }
                Ok(Err(e)) => run.refusals.push(format!("error: {e}")),
                Err(_) => run.refusals.push("timeout".into()),
            }
            let jitter = rng.random_range(0..=wait.as_millis() as u64 / 5);
            tokio::time::sleep(wait + Duration::from_millis(jitter)).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        record(b, run);
        tokio::time::sleep(plan.every).await;
    }
}

fn parse_ack(text: &str) -> Option<Ack> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let first = v.get("first_id")?.as_u64()?;
    let last = v.get("last_id")?.as_u64()?;
    Some(Ack {
        ids: first..=last,
        epoch: v
            .get("epoch")
            .and_then(|e| e.as_str())
            .and_then(|e| e.parse().ok()),
        replayed: v
            .get("replayed")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        at: turmoil::sim_elapsed().unwrap_or_default(),
    })
}

/// One `POST /events` on a new connection: the status and the body.
async fn post(key: &str, body: &str) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let stream = turmoil::net::TcpStream::connect(("stub", 8091)).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::post("/events")
        .header("host", "stub:8091")
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error>>((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
    .await;
    conn.abort();
    result
}
