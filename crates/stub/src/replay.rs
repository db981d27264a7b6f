//! Publishing a fixture at a pace. Replaying the same fixture always gives
//! the same ids, and with a journal the replay resumes where it stopped.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use wire::Payload;

use crate::Stub;
use crate::log::{FixtureAt, digest};

/// How fast a fixture is published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Fixture time (`ts_utc` gaps) divided by this factor.
    Speed(f64),
    /// A fixed number of events per second.
    Rate(f64),
    /// Everything at once.
    NoPace,
}

/// Events published in one go, at most: bounds each journal write.
const BATCH: usize = 4096;

/// Publishes `payloads` (skipping those a journal says are already out) and
/// returns when done or at shutdown.
pub async fn replay(stub: Stub, payloads: Vec<Payload>, pace: Pace) {
    let done = stub.log().fixture_done().min(payloads.len());
    let rest = &payloads[done..];
    let fixture = digest(&payloads);
    if done > 0 {
        tracing::info!(done, left = rest.len(), "resuming the fixture replay");
    }
    // Due times from the replay's start, never going backwards (fixture
    // timestamps may).
    let first_ts = rest.first().and_then(ts_ms);
    let mut latest = Duration::ZERO;
    let due: Vec<Duration> = rest
        .iter()
        .enumerate()
        .map(|(i, p)| {
            latest = latest.max(due(pace, i, ts_ms(p), first_ts));
            latest
        })
        .collect();
    let start = Instant::now();
    let mut i = 0;
    while i < rest.len() {
        if start + due[i] > Instant::now() {
            tokio::select! {
                biased;
                () = stub.shutdown_token().cancelled() => return,
                () = sleep_until(start + due[i]) => {}
            }
        }
        // Everything due by now goes out in one batch.
        let now = Instant::now();
        let mut j = i + 1;
        while j < rest.len() && j - i < BATCH && start + due[j] <= now {
            j += 1;
        }
        let at = FixtureAt {
            fixture,
            first: (done + i) as u64,
        };
        if !publish_until_stored(&stub, at, &rest[i..j]).await {
            return;
        }
        i = j;
    }
    tracing::info!(
        events = payloads.len(),
        head = stub.log().head(),
        "fixture replay finished"
    );
}

/// The first wait after a failed journal write, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(16);

/// Publishes one batch, retrying a failed journal write (a full disk) with
/// a doubling wait until it is stored: the log is unchanged by a failure,
/// so the retry appends the same events under the same ids (a shared log's
/// service knows each line by its place, and stores none twice). False at
/// shutdown.
async fn publish_until_stored(stub: &Stub, at: FixtureAt, batch: &[Payload]) -> bool {
    let mut wait = RETRY_FIRST;
    loop {
        match stub.publish_fixture(at, batch).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "fixture replay waiting: the log did not store the batch");
            }
        }
        tokio::select! {
            biased;
            () = stub.shutdown_token().cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// When the `index`-th remaining event is due, from the replay's start.
fn due(pace: Pace, index: usize, ts: Option<i64>, first_ts: Option<i64>) -> Duration {
    match pace {
        Pace::NoPace => Duration::ZERO,
        Pace::Rate(per_s) => Duration::from_secs_f64(index as f64 / per_s.max(1e-9)),
        Pace::Speed(x) => match (ts, first_ts) {
            (Some(t), Some(t0)) if t > t0 => Duration::from_secs_f64((t - t0) as f64 / 1000.0 / x.max(1e-9)),
            _ => Duration::ZERO,
        },
    }
}

fn ts_ms(p: &Payload) -> Option<i64> {
    match p {
        Payload::Tick(t) => Some(t.ts_utc.as_millisecond()),
        Payload::News(n) => Some(n.ts_utc.as_millisecond()),
        Payload::Other { .. } => None,
    }
}
