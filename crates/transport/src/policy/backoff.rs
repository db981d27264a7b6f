//! The backoff rule as a pure function of the failure count, the
//! server's hints and one uniform draw.

use std::time::Duration;

use super::PolicyConfig;

/// The delay after `failures` consecutive failures, given the server's
/// hints and a uniform draw `r` in [0, 1). Pure, so the rule is testable
/// by itself:
///
/// - `hint` = the larger of `retry:`, `Retry-After` and `retry_floor`;
///   above `max_delay` it is returned as is (the server's explicit request
///   wins over the cap, unjittered: it named a time).
/// - `b` = `initial_delay · 2^(failures−1)`, capped at `max_delay`, and at
///   least `hint`.
/// - below the cap, `b·(1 + r·jitter)`: jitter only adds;
/// - where that could cross the cap, the delay is drawn in the top band
///   `[max(max_delay·(1 − jitter), hint), max_delay]` instead: the cap
///   holds and clients at the cap still spread out.
pub fn backoff_delay(
    config: &PolicyConfig,
    failures: u32,
    server_retry: Option<Duration>,
    retry_after: Option<Duration>,
    r: f64,
) -> Duration {
    let cap = config.max_delay;
    let hint = server_retry
        .unwrap_or(Duration::ZERO)
        .max(retry_after.unwrap_or(Duration::ZERO))
        .max(config.retry_floor);
    if hint >= cap {
        return hint;
    }
    let exp = failures.saturating_sub(1).min(20);
    let b = config
        .initial_delay
        .saturating_mul(1u32 << exp)
        .min(cap)
        .max(hint);
    let jitter = config.jitter.clamp(0.0, 1.0);
    let r = r.clamp(0.0, 1.0);
    let top = b.mul_f64(1.0 + jitter);
    let (lo, hi) = if top <= cap {
        (b, top)
    } else {
        (cap.mul_f64(1.0 - jitter).max(hint), cap)
    };
    (lo + (hi - lo).mul_f64(r)).min(hi)
}
