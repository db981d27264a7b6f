//! The stub as a turmoil host on a durable log: every start opens the
//! harness's [`SimDisk`] with `Log::open_inline` (a fresh epoch drawn from the
//! run's seeded RNG, used only when the disk holds no journal), resumes the
//! fixture replay after what the journal holds, and serves.
//!
//! `Log::open_on` would write each journaled batch on tokio's blocking
//! pool. That thread would run beside the host's tasks in real time, and
//! readers would see the batch (the head's watch moves on that thread) at a
//! moment that depends on the machine's load: the same seed gave two traces
//! of `slow_consumer` under load. `open_inline` appends on the host's own
//! thread instead: nothing else on the host runs meanwhile, and an append
//! takes no simulated time, as with a memory log.
//!
//! A disk that fails while opening is opened again after a pause (as a
//! supervisor would restart the process); a journal that is corrupt stops
//! the host with the error, which the run reports as a crash.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use stub::{Appended, Batch, Entry, EventLog, Expired, Log, LogError, Pace, Stub};
use wire::Epoch;

use crate::disk::SimDisk;
use crate::harness::{Shared, sim_clock_us};
use crate::net;
use crate::report::Start;

/// The stub's log in the simulation: the real [`Log`] (opened inline, so
/// an append completes on the host's thread), and an append during which the disk decided the host
/// crashes never answers (the process is dead; the harness crashes the
/// host at the next step), so no answer escapes a crash.
struct HostLog {
    log: Log,
    disk: SimDisk,
}

impl EventLog for HostLog {
    fn epoch(&self) -> Epoch {
        self.log.epoch()
    }

    fn head(&self) -> u64 {
        self.log.head()
    }

    fn oldest(&self) -> u64 {
        self.log.oldest()
    }

    fn fixture_done(&self) -> usize {
        self.log.fixture_done()
    }

    fn watch(&self) -> stub::HeadWatch {
        self.log.watch()
    }

    fn read_with(&self, after: u64, max: usize, f: &mut dyn FnMut(&Entry)) -> Result<u64, Expired> {
        self.log.read_with(after, max, f)
    }

    fn read_filtered(
        &self,
        after: u64,
        filter: &wire::Filter,
        max: usize,
        f: &mut dyn FnMut(&Entry, u64),
    ) -> Result<stub::Scan, Expired> {
        self.log.read_filtered(after, filter, max, f)
    }

    fn append(&self, batch: Batch) -> Pin<Box<dyn Future<Output = Result<Appended, LogError>> + Send + '_>> {
        Box::pin(async move {
            let result = self.log.append(batch).await;
            if self.disk.crashing() {
                std::future::pending::<()>().await;
            }
            result
        })
    }
}

/// How the stub host publishes the fixture.
#[derive(Debug, Clone)]
pub(crate) enum Publish {
    /// `stub::replay` at this rate (each start replays the rest at it).
    Rate(f64),
    /// Event `i` at simulated time `due[i]` from the run's start, whatever
    /// the restarts: bursts and quiet spells.
    Due(Arc<[Duration]>),
}

/// Publishes each fixture event at its due time (simulated, from the run's
/// start), resuming after what the log holds; everything due goes out in
/// one batch; a failed append is retried a second later.
async fn publish_due(stub: Stub, payloads: Arc<[wire::Payload]>, due: Arc<[Duration]>) {
    let now = || turmoil::sim_elapsed().unwrap_or_default();
    let mut i = stub.log().fixture_done();
    while i < payloads.len() {
        let wait = due[i].saturating_sub(now());
        if !wait.is_zero() {
            tokio::select! {
                biased;
                () = stub.shutdown_token().cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let at = now();
        let j = (i + 1..payloads.len())
            .find(|&j| due[j] > at)
            .unwrap_or(payloads.len());
        match stub.publish(stub::Source::Fixture, &payloads[i..j]).await {
            Ok(_) => i = j,
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// How long a start waits before opening a disk that failed again.
const REOPEN_AFTER: Duration = Duration::from_millis(500);

/// One start of the stub host.
pub(crate) async fn run(
    shared: Rc<RefCell<Shared>>,
    config: stub::Config,
    payloads: Arc<[wire::Payload]>,
    publishing: Publish,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = turmoil::net::TcpListener::bind("0.0.0.0:8091").await?;
    let disk = shared.borrow().disk.clone();
    let mut failures = 0;
    let log = loop {
        let fresh = Epoch::from_random(shared.borrow_mut().rng.random());
        let new = disk.bytes().is_empty();
        match Log::open_inline(disk.handle(), config.retention, fresh, config.key_window()) {
            Ok(log) => {
                let mut s = shared.borrow_mut();
                let incarnation = s.starts.last().map_or(0, |l| l.incarnation + u32::from(new));
                s.starts.push(Start {
                    at: turmoil::sim_elapsed().unwrap_or_default(),
                    at_us: sim_clock_us(),
                    epoch: log.epoch(),
                    incarnation,
                    head: log.head(),
                    fixture_done: log.fixture_done(),
                    open_failures: failures,
                });
                break log;
            }
            Err(LogError::Io { .. }) => {
                failures += 1;
                tokio::time::sleep(REOPEN_AFTER).await;
            }
            Err(e) => return Err(format!("the stub cannot open its journal: {e}").into()),
        }
    };
    let stub = Stub::new(config, HostLog { log, disk }, Arc::new(sim_clock_us));
    {
        let mut s = shared.borrow_mut();
        if let Some(old) = s.stub.take() {
            s.drops_before += old.slow_consumer_drops();
        }
        stub.set_streaming(s.streaming);
        s.stub = Some(stub.clone());
    }
    match publishing {
        Publish::Rate(rate) => {
            tokio::spawn(stub::replay(stub.clone(), payloads.to_vec(), Pace::Rate(rate)));
        }
        Publish::Due(due) => {
            tokio::spawn(publish_due(stub.clone(), payloads, due));
        }
    }
    stub::serve(net::Listener(listener), stub, std::future::pending()).await;
    Ok(())
}
