//! Deterministic simulation of tickwire: the stub and its clients run under
//! turmoil, in simulated time, through partitions, holds, bounces, crashes,
//! latency spikes and a missing stream endpoint; invariants check the result.
//!
//! A run is a function of a [`Scenario`] and a seed. The same seed gives the
//! same trace, byte for byte.
//!
//! - `scenario`: what to simulate (clients, faults, expectations).
//! - `harness`: `run(&Scenario, seed) -> Report`, the turmoil hosts and the
//!   fault schedule.
//! - `engine`: the decision engine as client 0, and its fault-free oracle.
//! - `report`: what a run produced, and its trace.
//! - `check`: the invariants and the failure classes.
//! - `scenarios`: the named scenarios. `net`: turmoil behind our seams.
//! - `disk`: the stub's simulated disk and its faults; `stub_host`: the
//!   stub on it; `publisher`: a keyed publisher retrying until acknowledged.
//! - `swarm`: a whole configuration drawn from each seed.
//! - `cluster`: several wire nodes on the model of a shared log service.
//! - `html`: a run (or a sweep's failing seeds) as a self-contained page.

pub mod check;
mod cluster;
pub mod disk;
mod engine;
mod harness;
pub mod html;
pub mod net;
pub mod publisher;
mod report;
mod scenario;
pub mod scenarios;
mod stub_host;
pub mod swarm;

pub use engine::{engine_config, offline_audit};
pub use harness::{TICK, run};
pub use report::{Broke, ClientRun, Entry, FaultSpan, FinalLog, Harness, Report, Start, ranges};
pub use scenario::{Expected, Fault, Scenario, Sometimes, client_config};
