//! The decision engine as client 0: wire mode through `desk::run` under
//! the simulated network, killed and restarted from its checkpoint where a
//! scenario says; and the fault-free oracle its audit log must equal.

use std::time::Duration;

use transport::ClientConfig;

use crate::net;
use crate::report::{ClientRun, Entry, Harness};

/// The engine settings of the simulation: the defaults, with a daily loss
/// limit small enough that the default day trips the kill switch.
pub fn engine_config() -> decision::Config {
    let mut c = decision::Config::default();
    c.risk.daily_loss_limit = 50.0;
    c
}

/// The fault-free oracle: the audit log of the engine run straight over the
/// first `events` fixture events.
pub fn offline_audit(events: usize) -> String {
    let mut engine = decision::Engine::new(engine_config()).unwrap_or_else(|e| panic!("engine config: {e}"));
    let mut out = String::new();
    let payloads = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap_or_default();
    for (i, payload) in payloads.into_iter().take(events).enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            payload,
        };
        for r in engine.on_event(&event, decision::FeedHealth::Live) {
            out += &r.to_json_line();
            out.push('\n');
        }
    }
    out
}

/// Client 0 with the engine: wire mode through `desk::run`, its audit
/// log and checkpoints in `dir`; killed at `kill_at` (the run future is
/// dropped mid-flight, as a crash would) and restarted from the checkpoint.
pub(crate) async fn engine_client(
    connect: net::Observed,
    config: ClientConfig,
    total: u64,
    kill_at: Option<Duration>,
    dir: &std::path::Path,
) -> Result<ClientRun, Box<dyn std::error::Error>> {
    use desk::{Live, RunOptions};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let options = RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        max_events: None,
        until_id: Some(total),
        checkpoint_every: 50,
        accept_new_epoch: false,
    };
    let kind = config.policy.transport;
    let mut run = ClientRun {
        kind: Some(kind),
        ..ClientRun::default()
    };
    let mut timeline = Vec::new();
    let mut kill_at = kill_at;
    loop {
        let engine = desk::restore(engine_config(), &options)?;
        let live = Live::new(engine);
        let outcome = match kill_at.take() {
            Some(at) => {
                let remaining = at.saturating_sub(turmoil::sim_elapsed().unwrap_or_default());
                tokio::select! {
                    biased;
                    r = desk::run(connect.clone(), config.clone(), &live, &options, std::future::pending()) => Some(r),
                    () = tokio::time::sleep(remaining) => None,
                }
            }
            None => Some(
                desk::run(
                    connect.clone(),
                    config.clone(),
                    &live,
                    &options,
                    std::future::pending(),
                )
                .await,
            ),
        };
        if let Some(m) = live.wire_metrics() {
            let s = m.snapshot();
            run.reconnects += s.reconnect_attempts;
            run.fallbacks += s.fallbacks;
            run.upgrades += s.upgrades;
        }
        let engine = live.engine().clone();
        match outcome {
            None => {
                run.engine_restarts += 1;
                timeline.push(Entry::Harness {
                    at: turmoil::sim_elapsed().unwrap_or_default(),
                    event: Harness::EngineKilled {
                        after: engine.last_event_id().unwrap_or(0),
                    },
                });
            }
            Some(result) => {
                result?;
                let summary = engine.summary();
                run.kill_switch_trips = summary.counts.kill_switch_trips;
                run.ids = (1..=engine.last_event_id().unwrap_or(0)).collect();
                run.done_at = turmoil::sim_elapsed();
                run.audit = Some(std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default());
                run.timeline = timeline;
                return Ok(run);
            }
        }
    }
}
