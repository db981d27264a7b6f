//! The decision engine as client 0: wire mode through `desk::run` under
//! the simulated network, killed and restarted from its checkpoint where a
//! scenario says; and the fault-free oracle its audit log must equal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use transport::ClientConfig;

use crate::net;
use crate::report::{ClientRun, EngineRun, Entry, Harness};

/// The engine settings of the simulation: the defaults, with a daily loss
/// limit small enough that the default day trips the kill switch.
pub fn engine_config() -> decision::Config {
    let mut c = decision::Config::default();
    c.risk.daily_loss_limit = 50.0;
    c
}

/// The fault-free oracle: the audit log of the engine run straight over the
/// first `events` fixture events. Computed once per event count per process
/// (a sweep asks for the same one every seed).
pub fn offline_audit(events: usize) -> String {
    static CACHE: OnceLock<Mutex<BTreeMap<usize, Arc<String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&events) {
        return hit.as_str().to_owned();
    }
    // Computed outside the lock: two threads may both compute it once.
    let audit = Arc::new(compute_offline_audit(events));
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(events)
        .or_insert(audit)
        .as_str()
        .to_owned()
}

/// The default day's payloads, parsed once per process: event `i + 1` is
/// `day()[i]` on a wire without publishing.
pub(crate) fn day() -> &'static [wire::Payload] {
    static DAY: OnceLock<Vec<wire::Payload>> = OnceLock::new();
    DAY.get_or_init(|| wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap_or_default())
}

fn compute_offline_audit(events: usize) -> String {
    decision::offline_audit(engine_config(), day().iter().take(events))
        .unwrap_or_else(|e| panic!("engine config: {e}"))
}

/// Where the engine's audit log and checkpoints go: `dir`'s name under
/// /dev/shm when there is one (tmpfs: its fsyncs cost nothing, and the
/// engine scenarios sync at every checkpoint), else `dir` itself; with a
/// number of this process's, so two runs of one seed at once (two test
/// threads) never share a directory.
fn scratch(dir: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let shm = Path::new("/dev/shm");
    let base = match dir.file_name() {
        Some(name) if shm.is_dir() => shm.join(name),
        _ => dir.to_path_buf(),
    };
    let mut name = base.into_os_string();
    name.push(format!("-{n}"));
    PathBuf::from(name)
}

/// Client 0 with the engine: wire mode through `desk::run`, its audit
/// log and checkpoints in [`scratch`]`(dir)`; killed at `kill_at` (the run
/// future is dropped mid-flight, as a crash would) and restarted from the
/// checkpoint. Each incarnation's restored id and processed ids are kept in
/// `engine_runs`, and `ids` is the stream they add up to.
pub(crate) async fn engine_client(
    connect: net::Observed,
    config: ClientConfig,
    total: u64,
    kill_at: Option<Duration>,
    dir: &Path,
) -> Result<ClientRun, Box<dyn std::error::Error>> {
    let dir = scratch(dir);
    let run = engine_client_in(connect, config, total, kill_at, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    run
}

async fn engine_client_in(
    connect: net::Observed,
    config: ClientConfig,
    total: u64,
    kill_at: Option<Duration>,
    dir: &Path,
) -> Result<ClientRun, Box<dyn std::error::Error>> {
    use desk::{EventHook, Live, RunOptions};
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let processed: Arc<Mutex<Vec<u64>>> = Arc::default();
    let options = RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        max_events: None,
        until_id: Some(total),
        checkpoint_every: 50,
        accept_new_epoch: false,
        on_event: Some(EventHook::new({
            let processed = processed.clone();
            move |id| processed.lock().unwrap_or_else(|p| p.into_inner()).push(id)
        })),
    };
    let take_processed = || std::mem::take(&mut *processed.lock().unwrap_or_else(|p| p.into_inner()));
    let kind = config.policy.transport;
    let mut run = ClientRun {
        kind: Some(kind),
        ..ClientRun::default()
    };
    let mut timeline = Vec::new();
    let mut kill_at = kill_at;
    loop {
        let engine = desk::restore(engine_config(), &options)?;
        let restored = engine.last_event_id().unwrap_or(0);
        take_processed();
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
        run.engine_runs.push(EngineRun {
            restored,
            ids: take_processed(),
            killed: outcome.is_none(),
        });
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
                run.engine_state = Some(engine.state());
                run.ids = effective_ids(&run.engine_runs);
                run.done_at = turmoil::sim_elapsed();
                run.audit = Some(std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default());
                run.timeline = timeline;
                return Ok(run);
            }
        }
    }
}

/// The stream the incarnations add up to: each one's ids up to the
/// checkpoint the next one restored from (what a crash did not lose), then
/// all of the last one's.
pub(crate) fn effective_ids(runs: &[EngineRun]) -> Vec<u64> {
    let mut ids = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        match runs.get(k + 1) {
            Some(next) => ids.extend(r.ids.iter().copied().filter(|&id| id <= next.restored)),
            None => ids.extend_from_slice(&r.ids),
        }
    }
    ids
}
