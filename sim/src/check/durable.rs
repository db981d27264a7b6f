//! The log's guarantees under storage faults, checked against what was
//! observed: what the publisher was told (its 200s), what the stub's disk
//! holds at the end (the harness opens a copy of the journal, as a restart
//! would), which log each start opened, and what each client delivered.

use std::collections::BTreeMap;

use super::{Class, Invariant, Violation};
use crate::{Report, Scenario};

fn broke(class: Class, invariant: Invariant, at: Option<std::time::Duration>, what: String) -> Violation {
    Violation {
        class,
        at,
        what,
        invariant: Some(invariant),
    }
}

pub(super) fn check(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    clients_across_logs(report)?;
    epochs(report)?;
    final_log(scenario, report)
}

/// A start on an empty disk opens a new log under an epoch never seen
/// before; a start on a journal keeps its epoch.
fn epochs(report: &Report) -> Result<(), Violation> {
    let mut seen: BTreeMap<u32, wire::Epoch> = BTreeMap::new();
    for start in &report.starts {
        match seen.get(&start.incarnation) {
            Some(e) if *e != start.epoch => {
                return Err(broke(
                    Class::Safety,
                    Invariant::EpochIdentity,
                    Some(start.at),
                    format!(
                        "a restart on the same journal changed the epoch from {e} to {}",
                        start.epoch
                    ),
                ));
            }
            Some(_) => {}
            None => {
                if let Some((n, _)) = seen.iter().find(|(_, e)| **e == start.epoch) {
                    return Err(broke(
                        Class::Safety,
                        Invariant::EpochIdentity,
                        Some(start.at),
                        format!(
                            "log {} (a new, empty journal) reuses epoch {} of log {n}",
                            start.incarnation, start.epoch
                        ),
                    ));
                }
                seen.insert(start.incarnation, start.epoch);
            }
        }
    }
    Ok(())
}

/// Which log an event published at `pub_us` belongs to: the last one begun
/// by then.
fn log_of(report: &Report, pub_us: u64) -> u32 {
    report
        .starts
        .iter()
        .take_while(|s| s.at_us <= pub_us)
        .last()
        .map_or(0, |s| s.incarnation)
}

/// The reset is fatal for a client, so a client that delivered events of
/// one log must deliver none of another: that would be a silent skip.
fn clients_across_logs(report: &Report) -> Result<(), Violation> {
    for (i, c) in report.clients.iter().enumerate() {
        let Some(&first) = c.pub_us.first() else { continue };
        let log = log_of(report, first);
        if let Some((k, &us)) = c
            .pub_us
            .iter()
            .enumerate()
            .find(|(_, us)| log_of(report, **us) != log)
        {
            return Err(broke(
                Class::Safety,
                Invariant::ResetNotSkip,
                c.done_at,
                format!(
                    "client {i} delivered id {} of log {} after ids of log {log}: it crossed the epoch change without a reset ({:?})",
                    c.ids.get(k).copied().unwrap_or_default(),
                    log_of(report, us),
                    c.error
                ),
            ));
        }
    }
    Ok(())
}

/// The publisher's batches against the final log.
fn final_log(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    let log = &report.final_log;
    if let Some(e) = &log.error {
        return Err(broke(Class::Safety, Invariant::JournalOpens, None, e.clone()));
    }
    let Some(plan) = scenario.publishing else {
        return Ok(());
    };
    let mut at: BTreeMap<(usize, usize), Vec<u64>> = BTreeMap::new();
    for &(id, batch, item) in &log.markers {
        at.entry((batch, item)).or_default().push(id);
    }
    for (&(b, i), ids) in &at {
        let run = report.publisher.get(b);
        if ids.len() > 1 {
            return Err(broke(
                Class::Safety,
                Invariant::RetryNeverDoubles,
                None,
                format!(
                    "item {i} of batch {b} is in the log {} times, at ids {ids:?} ({} attempts under one key)",
                    ids.len(),
                    run.map_or(0, |r| r.attempts)
                ),
            ));
        }
        let id = ids[0];
        let wrong = match run.and_then(|r| r.acked.as_ref()) {
            None => Some(format!("batch {b} was never acknowledged")),
            Some(ack) if ack.epoch.is_some() && ack.epoch != log.epoch => Some(format!(
                "it was acknowledged in epoch {:?}, not this log's",
                ack.epoch
            )),
            Some(ack) if ack.ids.start() + i as u64 != id => Some(format!(
                "it was acknowledged as id {}",
                ack.ids.start() + i as u64
            )),
            Some(_) => None,
        };
        if let Some(why) = wrong {
            return Err(broke(
                Class::Safety,
                Invariant::NothingRefusedAppears,
                None,
                format!("item {i} of batch {b} is in the log at id {id}, but {why}"),
            ));
        }
    }
    for (b, run) in report.publisher.iter().enumerate() {
        let Some(ack) = &run.acked else {
            return Err(broke(
                Class::Safety,
                Invariant::PublisherSettles,
                None,
                format!("batch {b} was refused for good: {:?}", run.refusals),
            ));
        };
        if ack.epoch.is_some() && ack.epoch != log.epoch {
            if report.disk.lost == 0 {
                return Err(broke(
                    Class::Safety,
                    Invariant::AckedKept,
                    Some(ack.at),
                    format!(
                        "batch {b} was acknowledged in epoch {:?}, the log is {:?}, and no disk was lost",
                        ack.epoch, log.epoch
                    ),
                ));
            }
            continue;
        }
        let n = ack.ids.end() + 1 - ack.ids.start();
        if n != run.items as u64 {
            return Err(broke(
                Class::Safety,
                Invariant::AckedKept,
                Some(ack.at),
                format!(
                    "batch {b} of {} items was acknowledged as {} ids ({:?})",
                    run.items, n, ack.ids
                ),
            ));
        }
        for i in 0..run.items {
            let want = ack.ids.start() + i as u64;
            if at.get(&(b, i)).and_then(|ids| ids.first()) != Some(&want) {
                return Err(broke(
                    Class::Safety,
                    Invariant::AckedKept,
                    Some(ack.at),
                    format!("item {i} of batch {b} was acknowledged as id {want} and is not there"),
                ));
            }
        }
        if ack.at > scenario.deadline() {
            return Err(broke(
                Class::Liveness,
                Invariant::PublisherSettles,
                Some(ack.at),
                format!(
                    "batch {b} was acknowledged at {} ms, later than {} ms",
                    ack.at.as_millis(),
                    scenario.deadline().as_millis()
                ),
            ));
        }
    }
    if report.publisher.len() < plan.batches {
        return Err(broke(
            Class::Liveness,
            Invariant::PublisherSettles,
            Some(report.elapsed),
            format!(
                "the publisher finished {} of {} batches",
                report.publisher.len(),
                plan.batches
            ),
        ));
    }
    Ok(())
}
