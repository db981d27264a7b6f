//! Wire mode: the engine fed by a `transport::Client`, writing the audit log
//! and checkpoints. Generic over the network, so the simulation runs it too.
//!
//! Restart safety: the audit log is flushed and synced before each
//! checkpoint, and on start it is cut back to the checkpoint's last event id
//! (dropping lines a crash left past it, and a torn last line). So a run
//! killed anywhere and restarted writes the same log as one that never
//! stopped.
//!
//! Locks and disk: the metrics handlers lock the engine, so a checkpoint
//! only serializes the state under the lock; the flush, the fsyncs and the
//! file are written after it is released, on tokio's blocking pool, never
//! on an async worker. (Under turmoil's paused clock a blocking task holds
//! simulated time still until it ends, so the simulation stays
//! deterministic.)
//!
//! The configuration is the one given at start, never the checkpoint's: a
//! restored state past a new limit is logged as a warning per violation.
//!
//! Feed health: the client hands over events only in order and with no gap
//! open, so every event the engine sees is `FeedHealth::Live`; the stale-feed
//! guard's other states are for decisions not driven by an event. This keeps
//! the audit log independent of the transport and of the faults on the way.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use decision::{Config, Engine, FeedHealth, checkpoint};
use transport::{Client, ClientConfig, ClientError, Connect, Metrics};
use wire::Cursor;

use crate::Error;

/// What a run writes and when it stops.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub audit_log: Option<PathBuf>,
    /// Holds `checkpoint.json`.
    pub state_dir: Option<PathBuf>,
    /// Stop after this many events in this run.
    pub max_events: Option<u64>,
    /// Stop once this id has been processed (the end of a fixture).
    pub until_id: Option<u64>,
    /// Events between checkpoints.
    pub checkpoint_every: u64,
    /// On the wire's epoch changing (its log recreated), carry the book
    /// over and go on from the new epoch's oldest event, recording the
    /// change in the audit log; false: stop with `EpochChanged`.
    pub accept_new_epoch: bool,
    /// Called with each event's id once the engine has applied it (not for
    /// an id it skipped as repeated), before any checkpoint that covers it.
    /// None in production; the simulation records what was really processed.
    pub on_event: Option<EventHook>,
}

/// An observer of the events the engine applied: see `RunOptions::on_event`.
#[derive(Clone)]
pub struct EventHook(pub Arc<dyn Fn(u64) + Send + Sync>);

impl EventHook {
    pub fn new(f: impl Fn(u64) + Send + Sync + 'static) -> EventHook {
        EventHook(Arc::new(f))
    }
}

impl std::fmt::Debug for EventHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHook(..)")
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `max_events` or `until_id` reached.
    Done,
    /// Asked to stop (Ctrl-C).
    Interrupted,
    /// The wire client stopped for good, for this reason.
    WireStopped(transport::ClientError),
    /// The wire client's task ended without a word (it panicked).
    WireLost,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Done => f.write_str("done"),
            Ended::Interrupted => f.write_str("interrupted"),
            Ended::WireStopped(e) => write!(f, "the wire stopped: {e}"),
            Ended::WireLost => f.write_str("the wire client ended without saying why"),
        }
    }
}

/// The engine and the client's metrics, shared with the metrics endpoint;
/// the latest decisions, for the dashboard.
#[derive(Debug, Clone)]
pub struct Live {
    pub engine: Arc<Mutex<Engine>>,
    pub wire: Arc<Mutex<Option<Arc<Metrics>>>>,
    pub decisions: Arc<Mutex<crate::dashboard::Recent>>,
}

impl Live {
    pub fn new(engine: Engine) -> Live {
        Live {
            engine: Arc::new(Mutex::new(engine)),
            wire: Arc::default(),
            decisions: Arc::default(),
        }
    }

    pub fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn wire_metrics(&self) -> Option<Arc<Metrics>> {
        self.wire.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub fn checkpoint_path(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoint.json")
}

/// The engine to start with, under `config`: the state of the checkpoint
/// in `state_dir` if there is one, else a fresh engine. Each limit the
/// restored state is past is logged as a warning. The audit log is cut back
/// to match.
pub fn restore(config: Config, options: &RunOptions) -> Result<Engine, Error> {
    let engine = match &options.state_dir {
        Some(dir) if checkpoint_path(dir).exists() => {
            let path = checkpoint_path(dir);
            let loaded = checkpoint::load(&path)?;
            if loaded.config_ignored() {
                tracing::warn!(
                    path = %path.display(),
                    "checkpoint version 1 holds a configuration too: ignored, the one given now applies"
                );
            }
            Engine::restore(config, loaded.state)?
        }
        _ => Engine::new(config)?,
    };
    for v in engine.violations() {
        tracing::warn!(
            key = v.key,
            symbol = v.symbol.as_deref().unwrap_or("-"),
            value = v.value,
            limit = v.limit,
            "the restored state breaks the configuration: {v}"
        );
    }
    if let Some(path) = &options.audit_log {
        let audit_err = |source| Error::Audit {
            path: path.clone(),
            source,
        };
        // Read first, cut only once the log is known to be this checkpoint's:
        // a wrong file given by mistake must not lose a byte.
        let changes = engine.summary().counts.epoch_changes;
        let log = crate::audit::read(path, engine.last_event_id(), changes).map_err(audit_err)?;
        // One line per decision: a log holding fewer (or more) than the
        // checkpoint counts lost (or gained) records, and carrying on would
        // leave a log that lies.
        let decisions = engine.summary().counts.decisions;
        if log.lines != decisions
            && let Some(dir) = &options.state_dir
        {
            return Err(Error::AuditMismatch {
                audit: path.clone(),
                checkpoint: checkpoint_path(dir),
                lines: log.lines,
                decisions,
            });
        }
        if log.changes != changes
            && let Some(dir) = &options.state_dir
        {
            return Err(Error::AuditEpochs {
                audit: path.clone(),
                checkpoint: checkpoint_path(dir),
                found: log.changes,
                expected: changes,
            });
        }
        if log.len != log.keep {
            tracing::warn!(
                path = %path.display(),
                keep = log.keep,
                cut = log.len - log.keep,
                "cutting the audit log back to the checkpoint (everything, without one)"
            );
            crate::audit::cut(path, log.keep).map_err(audit_err)?;
        }
    }
    Ok(engine)
}

/// Runs the engine on the wire until done, interrupted or the wire stops.
pub async fn run<C: Connect>(
    connector: C,
    mut client_config: ClientConfig,
    live: &Live,
    options: &RunOptions,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<Ended, Error> {
    // A checkpoint decides (in its epoch, if it knows it); without one,
    // where the caller said.
    let (last, epoch) = {
        let engine = live.engine();
        (engine.last_event_id(), engine.epoch())
    };
    if let Some(id) = last {
        client_config.start_after = Cursor { epoch, id };
    }
    if let Some(until) = options.until_id {
        let at = client_config.start_after;
        // Past the end of the fixture: the checkpoint is another wire's.
        if at.id > until {
            return Ok(Ended::WireStopped(ClientError::CursorAhead {
                cursor: at,
                head: Some(until),
            }));
        }
        if at.id == until {
            return Ok(Ended::Done);
        }
    }
    let mut audit = match &options.audit_log {
        Some(path) => Some(Audit {
            path: path.clone(),
            pending: Vec::new(),
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| Error::Audit {
                    path: path.clone(),
                    source,
                })?,
        }),
        None => None,
    };
    let mut interrupt = std::pin::pin!(interrupt);
    let mut processed = 0u64;
    // One client per epoch: a change accepted starts the next.
    loop {
        let mut client = Client::connect(connector.clone(), client_config.clone()).map_err(Error::Wire)?;
        *live.wire.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.metrics());
        let Some(mut events) = client.subscribe() else {
            return Err(Error::NoSubscription);
        };
        let (ended, back) = feed(
            &client,
            &mut events,
            live,
            options,
            audit,
            &mut interrupt,
            &mut processed,
        )
        .await?;
        audit = back;
        // The epoch of the events applied, if the engine did not know it.
        if let Some(epoch) = client.epoch() {
            live.engine().adopt_epoch(epoch);
        }
        client.close().await;
        match ended {
            Ended::WireStopped(ClientError::EpochChanged {
                from, epoch, oldest, ..
            }) if options.accept_new_epoch => {
                let resume_after = oldest.map_or(0, |o| o.saturating_sub(1));
                let change = live.engine().change_epoch(from, epoch, resume_after);
                tracing::warn!(%from, to = %epoch, last_event_id = ?change.last_event_id, resume_after, "the wire's epoch changed: going on in the new one (accept_new_epoch)");
                if let Some(a) = audit.as_mut() {
                    a.pending.extend_from_slice(change.to_json_line().as_bytes());
                    a.pending.push(b'\n');
                }
                // Recorded and checkpointed before anything of the new epoch.
                audit = save(live, audit, options).await?;
                client_config.start_after = Cursor::new(epoch, resume_after);
            }
            ended => {
                save(live, audit, options).await?;
                return Ok(ended);
            }
        }
    }
}

/// Feeds the engine from one client until done, interrupted or the client
/// stops; hands the audit log back.
async fn feed(
    client: &Client,
    events: &mut transport::Subscription,
    live: &Live,
    options: &RunOptions,
    mut audit: Option<Audit>,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    processed: &mut u64,
) -> Result<(Ended, Option<Audit>), Error> {
    let every = options.checkpoint_every.max(1);
    // Decisions reach the file within a second, so `tail -f` keeps up on
    // a quiet day; checkpoints also sync it, this only flushes.
    let mut flush_at = tokio::time::Instant::now() + AUDIT_FLUSH;
    let mut unflushed = false;
    let ended = loop {
        let item = tokio::select! {
            biased;
            () = &mut *interrupt => break Ended::Interrupted,
            () = tokio::time::sleep_until(flush_at), if unflushed => {
                audit = flush(audit).await?;
                unflushed = false;
                continue;
            }
            item = events.next() => item,
        };
        let event = match item {
            Some(Ok(event)) => event,
            Some(Err(e)) => break Ended::WireStopped(e),
            None => break Ended::WireLost,
        };
        let (records, applied) = {
            let mut engine = live.engine();
            if let (None, Some(epoch)) = (engine.epoch(), client.epoch()) {
                engine.adopt_epoch(epoch);
            }
            let before = engine.last_event_id();
            let records = engine.on_event(&event, FeedHealth::Live);
            (records, engine.last_event_id() != before)
        };
        live.decided(&records);
        if applied && let Some(hook) = &options.on_event {
            (hook.0)(event.id);
        }
        if let Some(a) = audit.as_mut() {
            // Into memory only: the file is written by `flush` and `save`,
            // on the blocking pool, never on this async thread.
            for r in &records {
                a.pending.extend_from_slice(r.to_json_line().as_bytes());
                a.pending.push(b'\n');
            }
            if !records.is_empty() && !unflushed {
                unflushed = true;
                flush_at = tokio::time::Instant::now() + AUDIT_FLUSH;
            }
        }
        *processed += 1;
        if processed.is_multiple_of(every) {
            audit = save(live, audit, options).await?;
        }
        if options.max_events.is_some_and(|m| *processed >= m)
            || options.until_id.is_some_and(|u| event.id >= u)
        {
            break Ended::Done;
        }
    };
    Ok((ended, audit))
}

/// How long a decision may sit in the audit log's buffer.
const AUDIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands the buffered audit lines to the OS (no fsync: a checkpoint does
/// that), on the blocking pool.
async fn flush(audit: Option<Audit>) -> Result<Option<Audit>, Error> {
    match audit {
        Some(mut a) => Ok(Some(
            blocking(move || match a.write_pending() {
                Ok(()) => Ok(a),
                Err(source) => Err(Error::Audit { path: a.path, source }),
            })
            .await?,
        )),
        None => Ok(None),
    }
}

/// The audit log being appended to.
#[derive(Debug)]
struct Audit {
    path: PathBuf,
    /// Lines not yet written: at most a second's (or a checkpoint's) worth.
    pending: Vec<u8>,
    file: File,
}

impl Audit {
    /// Writes the pending lines (blocking: call it on the blocking pool).
    fn write_pending(&mut self) -> io::Result<()> {
        self.file.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

/// Audit log first (flushed, synced), then the checkpoint; both on the
/// blocking pool, the engine locked only to serialize its state. Hands the
/// audit log back.
async fn save(live: &Live, audit: Option<Audit>, options: &RunOptions) -> Result<Option<Audit>, Error> {
    let audit = match audit {
        Some(mut a) => Some(
            blocking(
                move || match a.write_pending().and_then(|()| a.file.sync_data()) {
                    Ok(()) => Ok(a),
                    Err(source) => Err(Error::Audit { path: a.path, source }),
                },
            )
            .await?,
        ),
        None => None,
    };
    if let Some(dir) = &options.state_dir {
        let json = checkpoint::to_json(&live.engine());
        let dir = dir.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|source| Error::StateDir {
                path: dir.clone(),
                source,
            })?;
            Ok(checkpoint::write(&checkpoint_path(&dir), &json)?)
        })
        .await?;
    }
    Ok(audit)
}

/// Runs disk work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(Error::Blocking)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::mpsc;
    use std::time::Duration;

    /// An engine whose checkpoint is far bigger than a pipe's buffer.
    fn big_engine() -> Engine {
        let mut engine = Engine::new(Config::default()).unwrap();
        for id in 1..=20_000u64 {
            let event = wire::Event {
                id,
                pub_us: None,
                prev: None,
                payload: wire::Payload::Tick(wire::Tick {
                    symbol: format!("S{id}"),
                    last: 100.0,
                    bid: None,
                    ask: None,
                    size: None,
                    ts_utc: jiff::Timestamp::from_second(1_772_460_000).unwrap(),
                }),
            };
            engine.on_event(&event, FeedHealth::Live);
        }
        engine
    }

    /// The checkpoint's temporary file is a FIFO that nobody reads until
    /// the test says so: the write blocks in the middle. Meanwhile the
    /// engine must be unlocked and the runtime's one thread free.
    #[cfg(unix)]
    #[test]
    fn a_checkpoint_is_written_off_the_runtime_and_outside_the_engine_lock() {
        let dir = std::env::temp_dir().join(format!("tickwire-desk-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("checkpoint.json.tmp");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let live = Live::new(big_engine());
        let expected = checkpoint::to_json(&live.engine());
        assert!(expected.len() > 1 << 20, "{} bytes", expected.len());
        let options = RunOptions {
            state_dir: Some(dir.clone()),
            ..RunOptions::default()
        };

        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            // Returns once the writer has opened its end.
            let mut pipe = File::open(&fifo).unwrap();
            let _ = opened_tx.send(());
            // The writer is now blocked on a full pipe; a runtime blocked
            // by it could not say go. Bounded, so a failure is not a hang.
            let went = go_rx.recv_timeout(Duration::from_secs(20)).is_ok();
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            (went, text)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (saved, unlocked) = runtime.block_on(async {
            let check = async {
                opened_rx.await.unwrap();
                let unlocked = live.engine.try_lock().is_ok();
                go_tx.send(()).unwrap();
                unlocked
            };
            tokio::join!(save(&live, None, &options), check)
        });
        let (went, text) = reader.join().unwrap();
        assert!(went, "the runtime's thread was blocked by the checkpoint write");
        assert!(unlocked, "the engine was locked during the checkpoint write");
        assert_eq!(text, expected);
        // A FIFO cannot be synced: the save reports it, naming the file.
        let err = saved.unwrap_err().to_string();
        assert!(err.contains("checkpoint.json.tmp"), "{err}");
    }
}
