//! proptest: random fault schedules (partitions of one client or all, holds,
//! bounces, crashes with a restart, latency spikes) keep every invariant.

use std::time::Duration;

use proptest::prelude::*;
use sim::check::check;
use sim::{Fault, Scenario, run};
use transport::Transport;

fn fault_window() -> impl Strategy<Value = Vec<(Duration, Fault)>> {
    let start = 1_000u64..25_000;
    let length = 200u64..12_000;
    let kind = 0u8..6;
    (start, length, kind, 0usize..3).prop_map(|(at, len, kind, client)| {
        let (at, end) = (Duration::from_millis(at), Duration::from_millis(at + len));
        match kind {
            0 => vec![(at, Fault::Partition(None)), (end, Fault::Repair(None))],
            1 => vec![
                (at, Fault::Partition(Some(client))),
                (end, Fault::Repair(Some(client))),
            ],
            2 => vec![(at, Fault::Hold), (end, Fault::Release)],
            3 => vec![(at, Fault::Bounce)],
            4 => vec![(at, Fault::Crash), (end, Fault::Restart)],
            _ => vec![
                (at, Fault::Latency(Duration::from_millis(len.min(3_000)))),
                (end, Fault::Latency(Duration::ZERO)),
            ],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_keep_every_invariant(
        windows in prop::collection::vec(fault_window(), 1..4),
        seed in any::<u64>(),
    ) {
        let mut faults: Vec<(Duration, Fault)> = windows.into_iter().flatten().collect();
        // Overlapping windows: make sure everything is healed at the end.
        let end = faults.iter().map(|(t, _)| *t).max().unwrap_or_default() + Duration::from_millis(10);
        faults.extend([
            (end, Fault::Repair(None)),
            (end, Fault::Release),
            (end, Fault::Latency(Duration::ZERO)),
        ]);
        if faults.iter().any(|(_, f)| *f == Fault::Crash) {
            faults.push((end, Fault::Restart));
        }
        let sc = Scenario {
            faults,
            liveness: Duration::from_secs(60),
            ..Scenario::new("random_faults", vec![Transport::Sse, Transport::Ws, Transport::Poll])
        };
        let report = run(&sc, seed);
        if let Err(v) = check(&sc, &report) {
            prop_assert!(false, "seed {seed}: {v}\n{}", report.trace());
        }
    }
}
