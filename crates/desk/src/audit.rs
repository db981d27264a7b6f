//! The audit log read back against a checkpoint at start: how many
//! decisions and epoch changes it holds up to the checkpoint, and where it
//! is cut so that a restart writes exactly the uninterrupted log. The log
//! is read as epochs separated by `epoch_change` lines.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use decision::EpochChange;

/// What the audit log holds up to a checkpoint.
pub(crate) struct AuditLog {
    /// Complete decision lines up to the checkpoint: every one of the
    /// epochs it left, and those for events at or before its last one.
    pub(crate) lines: u64,
    /// Epoch change lines up to the checkpoint.
    pub(crate) changes: u64,
    /// Their length: where the log is cut.
    pub(crate) keep: u64,
    /// The file's length.
    pub(crate) len: u64,
}

/// Reads the audit log, changing nothing: the complete lines up to the
/// checkpoint, which is after `last_id` in the epoch reached by its
/// `changes`-th epoch change (none, when there is no checkpoint): the lines
/// of every epoch before, each change up to that one, and that epoch's
/// lines for events at or before `last_id`. A missing file is an empty
/// log; any other error is an error.
pub(crate) fn read(path: &Path, last_id: Option<u64>, changes: u64) -> io::Result<AuditLog> {
    let mut log = AuditLog {
        lines: 0,
        changes: 0,
        keep: 0,
        len: 0,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(log),
        Err(e) => return Err(e),
    };
    log.len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || !line.ends_with('\n') {
            break;
        }
        if EpochChange::from_json_line(&line).is_some() {
            // A change past the checkpoint's last one is past the checkpoint.
            if log.changes == changes {
                break;
            }
            log.changes += 1;
            log.keep += line.len() as u64;
            continue;
        }
        let id = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["event_id"].as_u64());
        let earlier_epoch = log.changes < changes;
        match (id, last_id) {
            (Some(id), Some(last)) if earlier_epoch || id <= last => {
                log.keep += line.len() as u64;
                log.lines += 1;
            }
            _ => break,
        }
    }
    Ok(log)
}

/// Cuts the audit log to `keep` bytes, durably.
pub(crate) fn cut(path: &Path, keep: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(keep)?;
    file.sync_all()
}
