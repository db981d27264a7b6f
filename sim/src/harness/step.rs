//! Building and stepping turmoil the same way for every run: one stub or
//! several nodes.

use std::time::{Duration, SystemTime};

use super::SIM_DURATION;
use crate::Scenario;
use crate::report::Broke;

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

/// One step of the simulation: `Ok(true)` when every client is done; how
/// it broke otherwise (a panic in a host is caught and named).
pub(crate) fn step(sim: &mut turmoil::Sim<'static>) -> Result<bool, Broke> {
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
