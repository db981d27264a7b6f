//! The faults of a run as spans: each fault that breaks something from
//! when it was applied to the first later fault that heals it, the lane it
//! acts on, and its colour.

use std::time::Duration;

use crate::{Fault, Report};

/// Where a fault acts, for its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every link: the `links` lane.
    Links,
    Host(usize),
    Client(usize),
    /// The shared log service of several nodes.
    Log,
}

/// A fault from when it was applied to when it healed.
#[derive(Debug, Clone)]
pub(crate) struct Span<'a> {
    /// Its index in `Report::applied`.
    pub index: usize,
    pub from: Duration,
    pub to: Duration,
    pub fault: &'a Fault,
    /// False: still on at the end of the run.
    pub healed: bool,
    pub target: Target,
}

/// Every fault that breaks something, paired with the first later fault
/// that heals it (a bounce is a moment).
pub(crate) fn spans(report: &Report) -> Vec<Span<'_>> {
    report
        .fault_spans(Fault::breaks)
        .into_iter()
        .map(|fs| {
            let fault = &report.applied[fs.index].1;
            Span {
                index: fs.index,
                from: fs.from,
                to: fs.to,
                fault,
                healed: fs.healed,
                target: target(fault),
            }
        })
        .collect()
}

fn target(f: &Fault) -> Target {
    match f {
        Fault::Partition(Some(i)) | Fault::Silence(Some(i)) => Target::Client(*i),
        Fault::Partition(None) | Fault::Silence(None) | Fault::Hold | Fault::Latency(_) => Target::Links,
        Fault::NodeCrash(i) | Fault::NodeRestart(i) => Target::Host(*i),
        Fault::LogDown | Fault::LogUp => Target::Log,
        _ => Target::Host(0),
    }
}

/// A fault's colour, by what it breaks.
pub(crate) fn fault_colour(f: &Fault) -> &'static str {
    match f {
        Fault::Partition(_) | Fault::Silence(_) => "#d62728",
        Fault::Hold => "#9467bd",
        Fault::Latency(_) => "#bcbd22",
        Fault::StreamingOff => "#ff7f0e",
        Fault::DiskFaults(_) => "#7f7f7f",
        Fault::LogDown | Fault::LogUp => "#17becf",
        _ => "#8c564b",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_spans_until_its_heal() {
        let s = Duration::from_secs;
        let report = Report {
            applied: vec![
                (s(1), Fault::Partition(Some(1))),
                (s(2), Fault::Repair(None)),
                (s(3), Fault::Bounce),
                (s(4), Fault::Repair(Some(1))),
                (s(5), Fault::Hold),
            ],
            elapsed: s(9),
            ..Report::default()
        };
        let got: Vec<(u64, u64, bool, Target)> = spans(&report)
            .iter()
            .map(|sp| (sp.from.as_secs(), sp.to.as_secs(), sp.healed, sp.target))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 4, true, Target::Client(1)),
                (3, 3, true, Target::Host(0)),
                (5, 9, false, Target::Links),
            ]
        );
    }
}
