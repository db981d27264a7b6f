//! The backoff rules, restated from the design and checked on the
//! connects the network saw.

use std::time::Duration;

use super::{Conn, Invariant, Seen, Violation, ms, streamed, violation};
use crate::{Scenario, client_config};
use transport::Transport;

/// The client's rules, as the design states them (ARCHITECTURE.md): 1 s
/// doubling to a 16 s cap, jitter only adds (20%), the top band [12.8 s,
/// 16 s] where it would cross the cap, `retry:` a floor (above the cap it
/// is waited as is), a connection up for 10 s resets the count, 100 ms the
/// least wait.
pub(super) struct Rules {
    pub(super) base: Duration,
    pub(super) cap: Duration,
    pub(super) jitter: f64,
    pub(super) healthy_after: Duration,
    pub(super) floor: Duration,
    pub(super) idle: Duration,
    /// turmoil's step: every time on the record is a multiple of it.
    pub(super) slack: Duration,
}

impl Rules {
    pub(super) fn new(scenario: &Scenario) -> Rules {
        // Only the settings the simulation chose (the idle deadline); the
        // backoff constants are the design's, written out.
        let config = client_config(Transport::Sse, false, 0);
        Rules {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(16),
            jitter: 0.2,
            healthy_after: Duration::from_secs(10),
            floor: Duration::from_millis(100),
            idle: config.idle_timeout,
            slack: scenario.tick * 2,
        }
    }

    /// The wait allowed after `k` consecutive failures with the server's
    /// hint `hint`: `[lo, hi]`.
    pub(super) fn window(&self, k: u32, hint: Option<Duration>) -> (Duration, Duration) {
        let hint = hint.unwrap_or_default().max(self.floor);
        if hint >= self.cap {
            return (hint, hint);
        }
        let step = self
            .base
            .saturating_mul(1 << (k.saturating_sub(1)).min(20))
            .min(self.cap);
        let b = step.max(hint);
        let top = b.mul_f64(1.0 + self.jitter);
        if top <= self.cap {
            (b, top)
        } else {
            (self.cap.mul_f64(1.0 - self.jitter).max(hint), self.cap)
        }
    }

    pub(super) fn step(&self, k: u32) -> Duration {
        self.base
            .saturating_mul(1 << (k.saturating_sub(1)).min(20))
            .min(self.cap)
    }
}

/// The waits the design allows after `k` consecutive failures, with the
/// server's `retry:` hint or without it: `[lo, hi]` each.
pub(crate) fn backoff_windows(scenario: &Scenario, k: u32) -> [(Duration, Duration); 2] {
    let rules = Rules::new(scenario);
    let hint = Duration::from_millis(scenario.stub.retry_ms);
    [rules.window(k, None), rules.window(k, Some(hint))]
}

/// The backoff rules from the connects the network saw: one attempt at a
/// time; each wait from the end of one attempt to the next connect within
/// the window of its failure count and the server's `retry:` (once one was
/// read on any earlier connection).
pub(super) fn check(
    i: usize,
    sessions: &[&Conn],
    conns: &[&Conn],
    kills: &[Duration],
    rules: &Rules,
    seen: &mut Seen,
) -> Result<(), Violation> {
    // The failure counts the record allows: a connection that lasted about
    // `healthy_after` may or may not have reset it.
    let mut ks: Vec<u32> = vec![0];
    for pair in sessions.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if kills.iter().any(|k| a.opened < *k && *k <= b.opened) {
            ks = vec![0];
            continue;
        }
        let Some(end) = a.closed_at() else {
            return Err(violation(
                Invariant::OneAttemptAtATime,
                b.opened,
                format!(
                    "client {i} connected again while its connection from {} ms was still open",
                    ms(a.opened)
                ),
            ));
        };
        if b.opened < end {
            return Err(violation(
                Invariant::OneAttemptAtATime,
                b.opened,
                format!(
                    "client {i} connected again before its attempt from {} ms ended",
                    ms(a.opened)
                ),
            ));
        }
        let wait = b.opened - end;
        // What this process read: an engine started again knows no hint.
        let since = kills
            .iter()
            .copied()
            .filter(|k| *k <= end)
            .max()
            .unwrap_or_default();
        let hint = conns
            .iter()
            .rev()
            .filter(|c| c.opened <= end && c.opened >= since)
            .find_map(|c| c.retry_ms)
            .map(Duration::from_millis);
        let up = match (streamed(a), a.connected) {
            (true, Some(t)) => end.saturating_sub(t),
            _ => Duration::ZERO,
        };
        let mut next: Vec<u32> = Vec::new();
        if up + rules.slack >= rules.healthy_after {
            next.push(1);
        }
        if up < rules.healthy_after + rules.slack {
            next.extend(ks.iter().map(|k| k + 1));
        }
        next.sort_unstable();
        next.dedup();
        let fits = |k: &u32| {
            let (lo, hi) = rules.window(*k, hint);
            wait + rules.slack >= lo && wait <= hi + rules.slack
        };
        let kept: Vec<u32> = next.iter().copied().filter(fits).collect();
        if kept.is_empty() {
            let windows: Vec<String> = next
                .iter()
                .map(|k| {
                    let (lo, hi) = rules.window(*k, hint);
                    format!("attempt {k}: [{}, {}]", ms(lo), ms(hi))
                })
                .collect();
            return Err(violation(
                Invariant::BackoffObserved,
                b.opened,
                format!(
                    "client {i} waited {} ms between the end of an attempt and its next connect, outside {} (retry: {})",
                    ms(wait),
                    windows.join(" or "),
                    hint.map_or("none".into(), |h| format!("{} ms", ms(h)))
                ),
            ));
        }
        if kept.iter().all(|k| *k >= 5) {
            seen.backoff_cap = true;
        }
        if let Some(h) = hint
            && kept.iter().all(|k| h > rules.step(*k))
            && wait + rules.slack >= h
        {
            seen.retry_above_base = true;
        }
        ks = kept;
    }
    Ok(())
}
