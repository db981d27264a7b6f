//! Building and stepping turmoil the same way for every run: one stub or
//! several nodes.

use std::time::{Duration, SystemTime};

use super::SIM_DURATION;
use crate::report::Broke;
use crate::{Fault, Scenario};

/// The simulation for `scenario` and `seed`: turmoil seeded, on the
/// scenario's tick, 1 to 5 ms per message.
pub(crate) fn sim_for(scenario: &Scenario, seed: u64) -> turmoil::Sim<'static> {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_461_800))
        .tick_duration(scenario.tick)
        .simulation_duration(SIM_DURATION)
        // Room for every client's connection in the accept queue.
        .tcp_capacity(64.max(scenario.clients.len() * 4))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5));
    if scenario.random_order {
        builder.enable_random_order();
    }
    builder.build()
}

/// Applies a fault to the links between the stub (node 0) and the client
/// hosts: `hosts[i]` is client `i`'s, `all` every client host once. False
/// when `fault` is not about links.
pub(crate) fn link_fault(
    sim: &mut turmoil::Sim<'static>,
    fault: &Fault,
    hosts: &[String],
    all: &[String],
) -> bool {
    let targets = |c: &Option<usize>| match c {
        Some(i) => vec![hosts[*i].clone()],
        None => all.to_vec(),
    };
    match fault {
        Fault::Partition(c) => targets(c).iter().for_each(|n| sim.partition("stub", n.as_str())),
        Fault::Silence(c) => targets(c)
            .iter()
            .for_each(|n| sim.partition_oneway("stub", n.as_str())),
        Fault::Repair(c) => targets(c).iter().for_each(|n| sim.repair("stub", n.as_str())),
        Fault::Hold => all.iter().for_each(|n| sim.hold("stub", n.as_str())),
        Fault::Release => all.iter().for_each(|n| sim.release("stub", n.as_str())),
        Fault::Latency(max) => sim.set_max_message_latency((*max).max(Duration::from_millis(5))),
        _ => return false,
    }
    true
}

/// One step of the simulation: `Ok(true)` when every client is done; how
/// it broke otherwise (a panic in a host is caught and named; still running
/// at `give_up`, long past the liveness deadline, is out of time).
pub(crate) fn step(sim: &mut turmoil::Sim<'static>, give_up: Duration) -> Result<bool, Broke> {
    if sim.elapsed() >= give_up {
        return Err(Broke::OutOfTime(sim.elapsed()));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step())) {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(_)) if sim.elapsed() >= SIM_DURATION => Err(Broke::OutOfTime(sim.elapsed())),
        Ok(Err(e)) => Err(Broke::Error(e.to_string())),
        Err(p) => Err(Broke::Panic(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        )),
    }
}
