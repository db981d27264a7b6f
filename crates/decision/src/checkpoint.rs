//! Checkpoints: the engine's whole state (its last processed event id
//! included) as one JSON file, written atomically, so a restart continues
//! exactly where it stopped, neither losing nor repeating a decision.
//!
//! `save` writes a temporary file in the same directory, syncs it, renames
//! it over the target and syncs the directory: after a crash the file holds
//! either the old checkpoint or the new one, never a mix. Floats round-trip
//! exactly (`serde_json`'s `float_roundtrip`), so a restored engine makes
//! the same decisions, byte for byte, as one that never stopped.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;

/// The checkpoint format's version; `load` refuses any other.
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a checkpoint: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: checkpoint version {found}, this build reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    engine: &'a Engine,
}

#[derive(Deserialize)]
struct In {
    version: u32,
    engine: serde_json::Value,
}

/// The engine's state as checkpoint JSON.
pub fn to_json(engine: &Engine) -> String {
    serde_json::to_string(&Out {
        version: VERSION,
        engine,
    })
    .expect("the engine's state always serializes")
}

/// An engine from checkpoint JSON; `path` only names it in errors.
pub fn from_json(path: &Path, text: &str) -> Result<Engine, CheckpointError> {
    let format = |source| CheckpointError::Format {
        path: path.to_owned(),
        source,
    };
    let file: In = serde_json::from_str(text).map_err(format)?;
    if file.version != VERSION {
        return Err(CheckpointError::Version {
            path: path.to_owned(),
            found: file.version,
        });
    }
    serde_json::from_value(file.engine).map_err(format)
}

/// Writes the engine's state to `path`, atomically.
pub fn save(path: &Path, engine: &Engine) -> Result<(), CheckpointError> {
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
        file.write_all(to_json(engine).as_bytes())?;
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

/// Reads an engine back from `path`.
pub fn load(path: &Path) -> Result<Engine, CheckpointError> {
    let text = fs::read_to_string(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    from_json(path, &text)
}
