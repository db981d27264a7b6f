//! The invariants of several wire nodes on one shared log: the log holds
//! each fixture line once, in order, however many nodes replayed it and
//! however often they restarted; every node serves the log's one epoch; a
//! client delivers every event exactly once, in order, across its moves
//! from node to node.

use super::{Class, Invariant, Violation, class_of, exactly_once_in_order, reached_head, violation};
use crate::{Report, Scenario};

pub(super) fn check(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    stored_once(report)?;
    if let Some(start) = report
        .starts
        .iter()
        .find(|s| Some(s.epoch) != report.final_log.epoch)
    {
        return Err(Violation {
            invariant: Some(Invariant::EpochIdentity),
            ..violation(
                Class::Safety,
                Some(start.at),
                format!(
                    "a node served epoch {} of a log whose epoch is another",
                    start.epoch
                ),
            )
        });
    }
    for (i, c) in report.clients.iter().enumerate() {
        exactly_once_in_order(i, c).map_err(|v| Violation {
            invariant: Some(Invariant::ExactlyOnceAcrossNodes),
            ..v
        })?;
        if c.duplicates > 0 {
            return Err(Violation {
                invariant: Some(Invariant::ExactlyOnceAcrossNodes),
                ..violation(
                    Class::Safety,
                    c.done_at,
                    format!(
                        "client {i} dropped {} duplicates: it resumed on a node before its cursor",
                        c.duplicates
                    ),
                )
            });
        }
        if let Some(e) = &c.error {
            return Err(violation(
                Class::Safety,
                c.done_at,
                format!("client {i} stopped: {e}"),
            ));
        }
    }
    if let Some(c) = &report.crashed {
        let class = class_of(c);
        let stuck: Vec<String> = report
            .clients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.ids.len() < scenario.events)
            .map(|(i, r)| format!("client {i} has {} of {} events", r.ids.len(), scenario.events))
            .collect();
        return Err(violation(
            class,
            Some(report.elapsed),
            format!("{c} ({})", stuck.join("; ")),
        ));
    }
    for (i, c) in report.clients.iter().enumerate() {
        reached_head(scenario, report, i, c)?;
    }
    Ok(())
}

/// Record `k` (from 1) of the shared log is fixture line `k - 1`: no line
/// stored twice (two replayers, a retried batch), none skipped, none out
/// of order.
fn stored_once(report: &Report) -> Result<(), Violation> {
    for (k, line) in report.stored_lines.iter().enumerate() {
        if *line != Some(k as u64) {
            return Err(Violation {
                invariant: Some(Invariant::FixtureStoredOnce),
                ..violation(
                    Class::Safety,
                    None,
                    format!(
                        "the shared log's record {} is fixture line {line:?}, not {k}: a line stored twice or out of order",
                        k + 1
                    ),
                )
            });
        }
    }
    Ok(())
}
