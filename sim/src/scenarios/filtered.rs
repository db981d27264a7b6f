//! Scenarios of subscriptions: filtered clients beside unfiltered ones
//! through faults, and through a stub that drops events.

use transport::Transport;

use super::s;
use crate::{Fault, Scenario, Sometimes};

/// Filtered and unfiltered clients on every transport through a
/// partition and a server crash: each filtered one must get exactly the
/// events its filter matches, in order, once each.
pub fn filtered() -> Scenario {
    let mut sc = Scenario::new(
        "filtered",
        vec![
            Transport::Sse,
            Transport::Ws,
            Transport::Poll,
            Transport::Sse,
            Transport::Ws,
        ],
    );
    sc.events = 800;
    sc.rate = 40.0;
    sc.faults = vec![
        (s(5), Fault::Partition(None)),
        (s(9), Fault::Repair(None)),
        (s(12), Fault::Crash),
        (s(16), Fault::Restart),
    ];
    let f = |symbols: &str, kinds: &str| wire::Filter::from_query(Some(symbols), Some(kinds)).ok();
    sc.filters = [
        (0, f("NVDA", "")),
        (1, f("AAPL,TSLA", "tick")),
        (2, f("MSFT,SPY", "news")),
    ]
    .into_iter()
    .filter_map(|(i, f)| Some((i, f?)))
    .collect();
    sc.sometimes = Some(Sometimes::Reconnect);
    sc
}

/// Fault injection: the stub's streams skip every 11th event. A filtered
/// client cannot see that in the ids (they have holes by design), only in
/// the `prev` chain: it must notice, and repair from filtered polling.
pub fn filtered_lossy() -> Scenario {
    let mut sc = Scenario::new(
        "filtered_lossy",
        vec![Transport::Sse, Transport::Ws, Transport::Sse],
    );
    sc.stub.drop_every = 11;
    let f = |symbols: &str, kinds: &str| wire::Filter::from_query(Some(symbols), Some(kinds)).ok();
    sc.filters = [(0, f("NVDA,MSFT", "")), (1, f("AAPL", "tick"))]
        .into_iter()
        .filter_map(|(i, f)| Some((i, f?)))
        .collect();
    sc.sometimes = Some(Sometimes::FilteredGapRepair);
    sc
}
