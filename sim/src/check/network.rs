//! The oracles that observe: rules checked against the network's record of
//! what happened ([`crate::net::Record`]: every connection with its
//! simulated times, requests, cursor, status, `retry:` hint and who ended
//! it) and against the ids each subscriber was really handed, never against
//! the client's account of itself (its timeline, its metrics).
//!
//! The client's rules are restated here from the design, not taken from its
//! code: a mutation of the client's backoff function is a mutation of what
//! it is checked against only if the oracle calls it, so it does not.

use std::time::Duration;

use super::{Class, Invariant, Violation};
use crate::net::{Closer, Conn, Path};
use crate::{Fault, Report, Scenario};

mod backoff;

use backoff::Rules;
pub(crate) use backoff::backoff_windows;

/// The interesting paths the record shows a run took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// A strict streaming client waited at attempt 5 or later (the cap).
    pub backoff_cap: bool,
    /// A wait the server's `retry:` made longer than the backoff step.
    pub retry_above_base: bool,
    /// A stream replaced after nothing was read for the idle deadline.
    pub idle_deadline: bool,
    /// A stream that stayed up through a quiet spell longer than the idle
    /// deadline.
    pub quiet_kept: bool,
    /// A gap filled from the polling endpoint while the stub was skipping.
    pub repaired_skip: bool,
}

fn violation(invariant: Invariant, at: Duration, what: String) -> Violation {
    Violation {
        class: Class::Safety,
        at: Some(at),
        what,
        invariant: Some(invariant),
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// A client's stream sessions (`/stream`, `/ws`), and the connects that
/// never got to a request while no stream of the client was open: the
/// attempts its reconnection policy made, in order.
fn attempts<'a>(conns: &[&'a Conn]) -> Vec<&'a Conn> {
    let open_at = |t: Duration| {
        conns.iter().any(|c| {
            matches!(c.path(), Path::Stream | Path::Ws)
                && c.opened <= t
                && c.closed_at().is_none_or(|end| end > t)
        })
    };
    conns
        .iter()
        .copied()
        .filter(|c| match c.path() {
            Path::Stream | Path::Ws => true,
            Path::Other => c.requests.is_empty() && !open_at(c.opened),
            Path::Events => false,
        })
        .collect()
}

fn streamed(c: &Conn) -> bool {
    matches!(c.status, Some(200 | 101))
}

/// Every observing rule; the first broken one.
pub fn check(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    walk(scenario, report, &mut Seen::default())
}

/// What the record shows (see [`Seen`]).
pub fn seen(scenario: &Scenario, report: &Report) -> Seen {
    let mut seen = Seen::default();
    let _ = walk(scenario, report, &mut seen);
    seen
}

fn walk(scenario: &Scenario, report: &Report, seen: &mut Seen) -> Result<(), Violation> {
    let rules = Rules::new(scenario);
    let windows = fault_windows(scenario, report);
    let faulty = |t: Duration| windows.iter().any(|(a, b)| *a <= t && t <= *b);
    let links = link_windows(scenario, report);
    let slowed = |t: Duration| links.iter().any(|(a, b)| *a <= t && t <= *b);
    for (i, kind) in scenario.clients.iter().enumerate() {
        let conns: Vec<&Conn> = report.conns.iter().filter(|c| c.client == i).collect();
        let run = &report.clients[i];
        let done = run.done_at.filter(|_| run.ids.len() >= scenario.events_for(i));
        // A client that stopped with an error closed its last connection
        // doing so.
        let stopped = run
            .error
            .as_ref()
            .and_then(|_| conns.iter().filter_map(|c| c.closed_at()).max());
        let before_done = |t: Duration| done.is_none_or(|d| t < d) && stopped.is_none_or(|s| t < s);
        // An engine killed and started again is a new process: its policy
        // starts over.
        let kills: Vec<Duration> = run
            .timeline
            .iter()
            .filter(|e| matches!(e, crate::Entry::Harness { .. }))
            .map(crate::Entry::at)
            .collect();
        let streaming = kind.is_streaming();
        let sessions = attempts(&conns);
        if streaming && !scenario.fallback {
            backoff::check(i, &sessions, &conns, &kills, &rules, seen)?;
        }
        for c in sessions.iter().filter(|c| streamed(c)) {
            // Idle deadline: from the last bytes read to the client's close.
            if let Some((end, Closer::Client)) = c.closed
                && before_done(end)
                && streaming
                && !c.overflow
                && !kills.contains(&end)
            {
                // A gap repair reads pages meanwhile: the client heard from
                // the stub then too.
                let repaired = conns
                    .iter()
                    .filter(|r| r.path() == Path::Events && r.opened >= c.opened && r.opened <= end)
                    .filter_map(|r| r.last_read)
                    .max();
                let last = c.last_read.max(repaired).or(c.connected).unwrap_or(c.opened);
                let silence = end.saturating_sub(last);
                // A slow reader stops reading its socket while its queue is
                // full: silence on the wire is its own, not a dead stream.
                let slow = i == 0 && scenario.slow_reader.is_some();
                if !slow && silence > rules.idle + rules.slack {
                    return Err(violation(
                        Invariant::DeadStreamReplaced,
                        end,
                        format!(
                            "client {i} stayed on a dead stream: nothing read for {} ms before it closed (idle deadline {} ms)",
                            ms(silence),
                            ms(rules.idle)
                        ),
                    ));
                }
                if silence + rules.slack >= rules.idle {
                    seen.idle_deadline = true;
                } else if !scenario.fallback && !faulty(end) {
                    return Err(violation(
                        Invariant::LiveStreamKept,
                        end,
                        format!(
                            "client {i} closed a live stream: it read {} ms before (idle deadline {} ms)",
                            ms(silence),
                            ms(rules.idle)
                        ),
                    ));
                }
            }
            // A stream the stub ended: only in a fault, or a slow reader
            // really behind. (A slow reader sees an end late, after what it
            // has not read yet: only its `overflow` is judged.)
            if let Some((end, closer)) = c.closed
                && (c.overflow || closer != Closer::Client)
                && before_done(end)
            {
                let slow = i == 0 && scenario.slow_reader.is_some();
                // Dropped as a slow consumer: only a slowed link excuses it;
                // any fault excuses an end (a restart ends every stream).
                let excused = if c.overflow { slowed(end) } else { faulty(end) };
                if !slow && !excused {
                    let how = if c.overflow {
                        "dropped as a slow consumer"
                    } else {
                        "ended by the stub"
                    };
                    return Err(violation(
                        Invariant::FastReaderKept,
                        end,
                        format!("client {i} (a fast reader) had its stream {how} with no fault on the way"),
                    ));
                }
                if slow && c.overflow {
                    // Behind at the drop and a grace period before it (what
                    // it was handed trails what it read, so this is never
                    // less than the stub's own measure).
                    let grace = Duration::from_millis(scenario.stub.lag_grace_ms);
                    for at in [end.saturating_sub(grace), end] {
                        let handed = run.at.iter().take_while(|t| **t <= at).count();
                        let last = handed.checked_sub(1).map_or(0, |k| run.ids[k]);
                        let behind = head_at(report, at).saturating_sub(last);
                        if behind <= scenario.stub.max_lag {
                            return Err(violation(
                                Invariant::SlowDropOnlyBehind,
                                end,
                                format!(
                                    "client {i} was dropped as a slow consumer, but {} ms before it was {behind} events behind (max_lag {}, grace {} ms)",
                                    ms(end - at),
                                    scenario.stub.max_lag,
                                    ms(grace)
                                ),
                            ));
                        }
                    }
                }
            }
            // Quiet spells the stream stayed up through.
            if let Some(up) = c.connected {
                let end = c.closed_at().unwrap_or(report.elapsed);
                for (n, d) in &scenario.quiet {
                    let from = scenario.due(*n) + Duration::from_millis(1);
                    let to = from + *d;
                    if *d > rules.idle && up <= from && end >= to && run.ids.len() >= *n {
                        seen.quiet_kept = true;
                    }
                }
            }
        }
        // Resume: a stream asks from no earlier than what was handed over.
        for c in &sessions {
            for r in &c.requests {
                let handed = run.at.iter().take_while(|t| **t < r.at).count();
                let last = handed.checked_sub(1).map_or(0, |k| run.ids[k]);
                if let Some(cursor) = r.cursor
                    && cursor < last
                {
                    return Err(violation(
                        Invariant::ResumeAtCursor,
                        r.at,
                        format!("client {i} resumed after {cursor}, but had been handed up to {last}"),
                    ));
                }
            }
        }
        // Gap repair: a page fetched while a stream is up.
        if streaming {
            for c in conns.iter().filter(|c| c.path() == Path::Events) {
                let during = sessions.iter().any(|s| {
                    streamed(s)
                        && s.connected.is_some_and(|t| t <= c.opened)
                        && s.closed_at().is_none_or(|end| end >= c.opened)
                });
                if !during {
                    continue;
                }
                if scenario.stub.drop_every == 0 {
                    let after = c.requests.first().and_then(|r| r.cursor).unwrap_or(0);
                    return Err(violation(
                        Invariant::RepairOnlyAfterSkip,
                        c.opened,
                        format!(
                            "client {i} repaired a gap (GET /events after {after}) while the stub skipped nothing: an event went missing on the stream"
                        ),
                    ));
                }
                seen.repaired_skip = true;
            }
        }
    }
    Ok(())
}

/// The stub's head at `t`.
fn head_at(report: &Report, t: Duration) -> u64 {
    report
        .heads
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or(0, |(_, h)| *h)
}

/// When faults were on, as `[from, to]` spans in simulated time: a fault
/// until the one that heals it (a second more, for what it set going), an
/// instant fault (a bounce, a crash the disk decided) for a second.
pub(crate) fn fault_windows(scenario: &Scenario, report: &Report) -> Vec<(Duration, Duration)> {
    windows_of(scenario, report, Fault::breaks)
}

/// The spans of the faults that slow a link down (a partition either way,
/// a hold, a latency spike): only these can make a reader that keeps up
/// fall behind.
fn link_windows(scenario: &Scenario, report: &Report) -> Vec<(Duration, Duration)> {
    windows_of(scenario, report, |f| {
        matches!(f, Fault::Partition(_) | Fault::Silence(_) | Fault::Hold)
            || matches!(f, Fault::Latency(d) if !d.is_zero())
    })
}

fn windows_of(
    scenario: &Scenario,
    report: &Report,
    which: impl Fn(&Fault) -> bool,
) -> Vec<(Duration, Duration)> {
    let grace = Duration::from_secs(1) + scenario.tick * 2;
    report
        .fault_spans(which)
        .iter()
        .map(|span| {
            (
                span.from,
                span.to + grace + latency_during(report, span.from, span.to),
            )
        })
        .collect()
}

/// The longest link latency in effect at any moment from `from` to `to`:
/// what a fault sends (a reset, say) in a latency spike arrives that much
/// later, so its effects may be seen that much after it healed.
fn latency_during(report: &Report, from: Duration, to: Duration) -> Duration {
    let mut at_start = Duration::ZERO;
    let mut within = Duration::ZERO;
    for (t, f) in &report.applied {
        if let Fault::Latency(d) = f {
            if *t <= from {
                at_start = *d;
            } else if *t <= to {
                within = within.max(*d);
            }
        }
    }
    at_start.max(within)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_window_is_the_designs() {
        let sc = crate::scenarios::normal(transport::Transport::Sse);
        let r = Rules::new(&sc);
        let s = Duration::from_millis;
        assert_eq!(r.window(1, None), (s(1_000), s(1_200)));
        assert_eq!(r.window(4, None), (s(8_000), s(9_600)));
        assert_eq!(r.window(5, None), (s(12_800), s(16_000)));
        assert_eq!(r.window(9, None), (s(12_800), s(16_000)));
        assert_eq!(r.window(1, Some(s(2_500))), (s(2_500), s(3_000)));
        assert_eq!(r.window(3, Some(s(2_500))), (s(4_000), s(4_800)));
        assert_eq!(r.window(5, Some(s(14_000))), (s(14_000), s(16_000)));
        assert_eq!(r.window(2, Some(s(20_000))), (s(20_000), s(20_000)));
    }
}
