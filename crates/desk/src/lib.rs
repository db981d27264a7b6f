//! The desk: the decision engine on the wire. `decision` decides; this
//! crate feeds it and keeps its records.
//!
//! - `run`: wire mode, generic over `transport::Connect` (the simulation
//!   runs it under turmoil): a client feeds the engine, the audit log and
//!   checkpoints are written, a restart resumes exactly.
//! - `audit`: the audit log read back against the checkpoint at start
//!   (decisions and epoch changes up to it), and cut back to it.
//! - `embedded`: the stub in-process on the built-in day, when no wire URL
//!   is given.
//! - `metrics`: `app(live)`, the `/metrics`, `/metrics.json`, `/healthz` and `/readyz`
//!   router.
//! - `dashboard`: the live page at `/` and its `/dashboard/stream`.
//! - `options`: the binary's options resolved, flags over environment over
//!   file, as one pure function.
//! - `config`: the YAML file's shape (`wire`, `strategy`, `risk`, `broker`).
//! - `report`: the summary (text and JSON) and the 10 s status line.
//! - `session`: all of it put together for the `decision` binary, which
//!   only parses options, sets up logs and binds.

use std::path::PathBuf;

mod audit;
pub mod config;
pub mod dashboard;
pub mod embedded;
pub mod metrics;
pub mod options;
pub mod report;
pub mod run;
pub mod session;

pub use config::FileConfig;
pub use run::{Ended, EventHook, Live, RunOptions, restore, run};
pub use session::{Options, Session, start};

/// Everything that can stop the desk, each naming what it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] decision::ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] decision::CheckpointError),
    #[error("audit log {path}: {source}")]
    Audit { path: PathBuf, source: std::io::Error },
    #[error(
        "audit log {audit} holds {lines} decisions up to the checkpoint's last event, but checkpoint {checkpoint} counts {decisions}: the audit log was deleted, cut or replaced. Put the right one back, or move the state dir away to start over"
    )]
    AuditMismatch {
        audit: PathBuf,
        checkpoint: PathBuf,
        lines: u64,
        decisions: u64,
    },
    #[error(
        "audit log {audit} records {found} epoch changes up to the checkpoint's last event, but checkpoint {checkpoint} counts {expected}: the audit log was deleted, cut or replaced. Put the right one back, or move the state dir away to start over"
    )]
    AuditEpochs {
        audit: PathBuf,
        checkpoint: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("state dir {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("the wire: {0}")]
    Wire(#[source] transport::ClientError),
    /// An option (a flag or a variable, named) that cannot be used.
    #[error("{name}: {reason}")]
    Option { name: String, reason: String },
    /// `--from` that disagrees with the checkpoint a restart resumes from.
    #[error(
        "--from {from} with a checkpoint at event {last} in {}: the checkpoint decides where to resume; drop --from (or give --from {last}), or move the state dir away to start elsewhere",
        dir.display()
    )]
    FromWithCheckpoint {
        from: transport::Start,
        last: wire::Cursor,
        dir: PathBuf,
    },
    #[error("the wire client gave no subscription")]
    NoSubscription,
    #[error("the embedded wire: {0}")]
    Embedded(#[source] std::io::Error),
    #[error("the metrics listener: {0}")]
    Metrics(#[source] std::io::Error),
    #[error(transparent)]
    Fixture(#[from] wire::fixture::FixtureError),
    #[error("disk work on the blocking pool did not finish: {0}")]
    Blocking(#[source] tokio::task::JoinError),
}
