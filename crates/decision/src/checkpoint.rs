//! Checkpoints: the engine's state (its last processed event id included),
//! not its configuration, as one JSON file, written atomically, so a
//! restart continues exactly where it stopped, neither losing nor repeating
//! a decision, under the configuration given at that restart.
//!
//! `write` writes a temporary file in the same directory, syncs it, renames
//! it over the target and syncs the directory: after a crash the file holds
//! either the old checkpoint or the new one, never a mix. Floats round-trip
//! exactly (`serde_json`'s `float_roundtrip`), so a restored engine makes
//! the same decisions, byte for byte, as one that never stopped.
//!
//! Version 3 adds the wire's epoch beside the last event id (and the count
//! of epoch changes). Version 2 files are read with the epoch unknown (a
//! resume then sends a bare cursor, in whatever epoch the wire has).
//! Version 1 files held the configuration as well; they are still read, and
//! that configuration is ignored ([`Loaded::config_ignored`]).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::engine::{Engine, State};

/// The checkpoint format's version; `load` reads it and versions 1 and 2.
pub const VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a checkpoint: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Well-formed, but no engine could have written it.
    #[error("{path}: refused: `{field}` {reason}")]
    Nonsense {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{path}: checkpoint version {found}, this build reads versions 1 to {VERSION}")]
    Version { path: PathBuf, found: u64 },
}

/// A checkpoint read back: the state, and the version it was written in.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub state: State,
    pub version: u32,
}

impl Loaded {
    /// A version 1 file held a configuration too; it was not used.
    pub fn config_ignored(&self) -> bool {
        self.version == 1
    }
}

/// The engine's state as checkpoint JSON (cheap: no IO).
pub fn to_json(engine: &Engine) -> String {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        version: u32,
        state: &'a State,
    }
    let out = Out {
        version: VERSION,
        state: engine.snapshot(),
    };
    serde_json::to_string(&out).expect("the engine's state always serializes")
}

/// A state from checkpoint JSON; `path` only names it in errors.
pub fn from_json(path: &Path, text: &str) -> Result<Loaded, CheckpointError> {
    let format = |source| CheckpointError::Format {
        path: path.to_owned(),
        source,
    };
    let mut file: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).map_err(format)?;
    let found = file.get("version").and_then(serde_json::Value::as_u64);
    // Version 1: `engine` is the state plus a `config`, dropped here.
    let (version, key) = match found {
        Some(1) => (1, "engine"),
        Some(v @ (2 | 3)) => (v as u32, "state"),
        _ => {
            return Err(CheckpointError::Version {
                path: path.to_owned(),
                found: found.unwrap_or(0),
            });
        }
    };
    let mut state = file.remove(key).unwrap_or_default();
    if let Some(fields) = state.as_object_mut() {
        fields.remove("config");
    }
    let state: State = serde_json::from_value(state).map_err(format)?;
    state
        .check()
        .map_err(|(field, reason)| CheckpointError::Nonsense {
            path: path.to_owned(),
            field,
            reason,
        })?;
    Ok(Loaded { state, version })
}

/// Writes the engine's state to `path`, atomically: [`to_json`] then [`write`].
pub fn save(path: &Path, engine: &Engine) -> Result<(), CheckpointError> {
    write(path, &to_json(engine))
}

/// Writes checkpoint JSON (from [`to_json`]) to `path`, atomically. This is
/// the slow part (two fsyncs): call it without holding the engine.
pub fn write(path: &Path, json: &str) -> Result<(), CheckpointError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| CheckpointError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = dir.join(name);

    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(json.as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir).map_err(io(dir))
}

/// Makes the rename durable. Directories can be opened and synced on Unix
/// only; elsewhere the rename is left to the OS.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

/// Reads a state back from `path`.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let text = fs::read_to_string(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    from_json(path, &text)
}
