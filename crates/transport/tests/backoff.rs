//! The backoff cap holds, as a property: over random failure sequences
//! (retryable failures, a missing stream endpoint, connections that stayed
//! up for a while) and random server hints at or below `max_delay`, no
//! delay exceeds `max_delay` and none is below the server's hints or the
//! 100 ms floor.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use transport::{Failure, Next, Policy, PolicyConfig};

#[derive(Debug, Clone)]
enum Step {
    Retry {
        retry_after_ms: Option<u64>,
    },
    StreamMissing,
    /// Connected, stayed up this long, then the stream ended.
    UpFor {
        ms: u64,
        retry_hint_ms: Option<u64>,
    },
}

fn step(max_ms: u64) -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::option::of(0..=max_ms).prop_map(|retry_after_ms| Step::Retry { retry_after_ms }),
        Just(Step::StreamMissing),
        (0..30_000u64, proptest::option::of(0..=max_ms))
            .prop_map(|(ms, retry_hint_ms)| Step::UpFor { ms, retry_hint_ms }),
    ]
}

fn config() -> impl Strategy<Value = PolicyConfig> {
    (1..5_000u64, 0..60_000u64, 0.0..1.0f64).prop_map(|(initial, extra, jitter)| PolicyConfig {
        initial_delay: Duration::from_millis(initial),
        max_delay: Duration::from_millis(initial + extra),
        jitter,
        ..PolicyConfig::default()
    })
}

proptest! {
    #[test]
    fn no_delay_exceeds_the_cap_nor_undercuts_a_hint(
        config in config(),
        seed in any::<u64>(),
        steps in proptest::collection::vec(step(60_000), 1..40),
    ) {
        let max = config.max_delay;
        #[allow(clippy::disallowed_methods)]
        let mut now = Instant::now();
        let mut p = Policy::new(config, seed, now);
        let mut server_retry = Duration::ZERO;
        let mut in_flight = false;
        for step in steps {
            // Hints are at or below the cap.
            let clip = |ms: u64| Duration::from_millis(ms).min(max);
            if !std::mem::take(&mut in_flight) {
                match p.next(now) {
                    Next::Attempt(_) => {}
                    Next::WaitUntil(at) => {
                        now = at;
                        prop_assert!(matches!(p.next(now), Next::Attempt(_)));
                    }
                    Next::Stop(_) | Next::Busy => break,
                }
            }
            let (failure, retry_after) = match step {
                Step::Retry { retry_after_ms } => {
                    let ra = retry_after_ms.map(clip);
                    (Failure::Retry { reason: "x".into(), retry_after: ra }, ra)
                }
                Step::StreamMissing => (Failure::StreamMissing, None),
                Step::UpFor { ms, retry_hint_ms } => {
                    p.connected(now);
                    if let Some(h) = retry_hint_ms.map(clip) {
                        p.retry_hint(h.as_millis() as u64);
                        // The latest hint replaces the earlier one.
                        server_retry = h;
                    }
                    now += Duration::from_millis(ms);
                    (Failure::Retry { reason: "ended".into(), retry_after: None }, None)
                }
            };
            p.failed(now, failure);
            match p.next(now) {
                Next::WaitUntil(at) => {
                    let d = at - now;
                    let floor = server_retry
                        .max(retry_after.unwrap_or_default())
                        .max(Duration::from_millis(100));
                    prop_assert!(d <= max.max(floor), "waited {d:?} over the cap {max:?}");
                    prop_assert!(d >= floor, "waited {d:?} under the hints {floor:?}");
                }
                // A fallback to polling attempts at once.
                Next::Attempt(_) => in_flight = true,
                Next::Stop(_) | Next::Busy => break,
            }
        }
    }
}
