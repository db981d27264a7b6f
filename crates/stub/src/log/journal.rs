//! The journal: the log's bytes on a [`Disk`], written all or nothing.
//!
//! The file opens with a header naming the log's epoch, then one line per
//! appended batch: `<crc32 of the JSON, 8 hex digits> <JSON>`, the JSON
//! holding the batch's source, its idempotency key and its events (each the
//! exact bytes every reader is served). A batch is one line, so a crash
//! leaves either all of it or a torn last line, which is cut at the next
//! start; a line whose checksum fails anywhere else is corruption, named
//! and refused. A write that fails (short, `ENOSPC`, a failed `fsync`) is
//! cut back to the last complete record before the error is answered.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use wire::{Epoch, Event};

use super::keys::IdempotencyKey;
use super::{Entry, LogError, Source};

/// What the journal needs of a file. [`FileDisk`] is the real one; the
/// simulation's disk injects short writes, `ENOSPC`, failed syncs and torn
/// tails at a crash.
pub trait Disk: Send + 'static {
    /// Names the file in errors and logs.
    fn name(&self) -> &Path;
    /// The file's bytes from the start.
    fn reader(&mut self) -> io::Result<Box<dyn BufRead + '_>>;
    /// Appends at the end; may write only a prefix (a short write).
    fn append(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (durable after the next `sync`).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Replaces the whole file atomically and durably (a migration).
    fn replace(&mut self, contents: &[u8]) -> io::Result<()>;
}

/// The journal file `events.jsonl` in a directory.
#[derive(Debug)]
pub struct FileDisk {
    path: PathBuf,
    file: File,
}

impl FileDisk {
    /// Opens (creating when missing) `dir/events.jsonl`.
    pub fn open(dir: &Path) -> Result<FileDisk, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let path = dir.join("events.jsonl");
        let file = open_append(&path).map_err(|e| LogError::io(&path, e))?;
        Ok(FileDisk { path, file })
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).read(true).append(true).open(path)
}

impl Disk for FileDisk {
    fn name(&self) -> &Path {
        &self.path
    }

    fn reader(&mut self) -> io::Result<Box<dyn BufRead + '_>> {
        let mut file = self.file.try_clone()?;
        file.seek(io::SeekFrom::Start(0))?;
        Ok(Box::new(BufReader::new(file)))
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

const MAGIC: &str = "tickwire-journal 2 ";

/// One appended batch, as the journal holds it.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) source: Source,
    pub(crate) key: Option<(IdempotencyKey, u32)>,
    pub(crate) at_us: u64,
    pub(crate) entries: Vec<Entry>,
}

/// The journal's line for a batch.
pub(crate) fn encode(
    source: Source,
    key: Option<(&IdempotencyKey, u32)>,
    at_us: u64,
    entries: &[Entry],
) -> Vec<u8> {
    let mut json = String::with_capacity(64 + entries.iter().map(|e| e.json.len() + 1).sum::<usize>());
    json.push_str(match source {
        Source::Fixture => "{\"src\":\"f\"",
        Source::Ingest => "{\"src\":\"i\"",
    });
    if let Some((key, digest)) = key {
        // A key is visible ASCII: its JSON string cannot fail.
        json.push_str(",\"key\":");
        json.push_str(&serde_json::to_string(key.as_str()).unwrap_or_default());
        json.push_str(&format!(",\"digest\":{digest}"));
    }
    json.push_str(&format!(",\"at\":{at_us},\"events\":["));
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&e.json);
    }
    json.push_str("]}");
    let mut line = format!("{:08x} ", crc32fast::hash(json.as_bytes())).into_bytes();
    line.extend_from_slice(json.as_bytes());
    line.push(b'\n');
    line
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    src: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    digest: Option<u32>,
    at: u64,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// Reads one complete line (without its `\n`); `Err` names what is wrong.
fn decode(line: &str) -> Result<Record, String> {
    let (crc, json) = line.split_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field {crc:?}"))?;
    let actual = crc32fast::hash(json.as_bytes());
    if crc != actual {
        return Err(format!(
            "checksum mismatch: the line says {crc:08x}, its bytes give {actual:08x}"
        ));
    }
    let raw: RawRecord<'_> = serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))?;
    let source = match raw.src.as_str() {
        "f" => Source::Fixture,
        "i" => Source::Ingest,
        other => return Err(format!("unknown source {other:?}")),
    };
    let key = match (raw.key, raw.digest) {
        (Some(k), Some(d)) => Some((IdempotencyKey::new(&k).map_err(|e| e.to_string())?, d)),
        (None, None) => None,
        _ => return Err("a key without its digest".into()),
    };
    let entries = raw
        .events
        .iter()
        .map(|ev| {
            let event = Event::from_json(ev.get()).map_err(|e| format!("bad event: {e}"))?;
            Ok(Entry::of(&event, ev.get().to_owned()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if entries.is_empty() {
        return Err("a batch without events".into());
    }
    Ok(Record {
        source,
        key,
        at_us: raw.at,
        entries,
    })
}

/// The journal the log appends to.
pub(crate) struct Journal {
    disk: Box<dyn Disk>,
    /// The length of the complete records: where a failed write is cut to.
    len: u64,
    /// A failed write left bytes past `len` that could not be cut yet.
    dirty: bool,
}

impl Journal {
    /// Opens the journal on `disk`: its records go to `on_record` in order
    /// (ids checked gap-free), a torn last line is cut, and a new journal is
    /// started under `fresh` (an old headerless one is rewritten in the new
    /// form under `fresh`). Returns the journal and its epoch.
    pub(crate) fn open(
        mut disk: Box<dyn Disk>,
        fresh: Epoch,
        mut on_record: impl FnMut(Record),
    ) -> Result<(Journal, Epoch), LogError> {
        let name = disk.name().to_owned();
        let io = |e| LogError::io(&name, e);
        let mut first = String::new();
        let mut reader = disk.reader().map_err(io)?;
        reader.read_line(&mut first).map_err(io)?;
        let epoch = if let Some(rest) = first.strip_prefix(MAGIC).and_then(|r| r.strip_suffix('\n')) {
            rest.parse::<Epoch>().map_err(|_| LogError::Corrupt {
                path: name.clone(),
                line: 1,
                reason: format!("bad epoch {rest:?} in the header"),
            })?
        } else if first.starts_with("f ") || first.starts_with("i ") {
            drop(reader);
            migrate_v1(disk.as_mut(), fresh)?;
            tracing::warn!(path = %name.display(), epoch = %fresh, "rewrote a journal without epoch in the checksummed form");
            return Journal::open(disk, fresh, on_record);
        } else if first.is_empty() || (!first.ends_with('\n') && MAGIC.starts_with(first.as_str())) {
            // New, or a header torn by a crash while creating it.
            drop(reader);
            // A torn header is cut first; an empty file needs no cut.
            let dirty = !first.is_empty();
            let mut journal = Journal { disk, len: 0, dirty };
            journal.write(format!("{MAGIC}{fresh}\n").as_bytes())?;
            return Ok((journal, fresh));
        } else {
            return Err(LogError::Corrupt {
                path: name,
                line: 1,
                reason: "not a tickwire journal (no header)".into(),
            });
        };
        let mut len = first.len() as u64;
        let mut head = 0u64;
        let mut line_no = 1;
        let mut line = String::new();
        let mut torn = false;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            line_no += 1;
            let Some(complete) = line.strip_suffix('\n') else {
                torn = true;
                break;
            };
            let corrupt = |reason: String| LogError::Corrupt {
                path: name.clone(),
                line: line_no,
                reason,
            };
            let record = decode(complete).map_err(corrupt)?;
            for e in &record.entries {
                if e.id != head + 1 {
                    return Err(corrupt(format!("id {} after {head}: ids must be gap-free", e.id)));
                }
                head = e.id;
            }
            len += read as u64;
            on_record(record);
        }
        drop(reader);
        let mut journal = Journal {
            disk,
            len,
            dirty: torn,
        };
        if torn {
            tracing::warn!(path = %name.display(), keep = len, "cutting a torn last journal line");
            journal.cut_back().map_err(io)?;
        }
        Ok((journal, epoch))
    }

    /// Appends `bytes` durably, or leaves the journal as it was and errs.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        let name = self.disk.name().to_owned();
        if self.dirty {
            self.cut_back().map_err(|e| LogError::io(&name, e))?;
        }
        match self.append_all(bytes).and_then(|()| self.disk.sync()) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(error) => {
                self.dirty = true;
                match self.cut_back() {
                    Ok(()) => {
                        tracing::warn!(path = %name.display(), %error, keep = self.len, "journal write failed: cut back to the last complete record")
                    }
                    Err(cut) => {
                        tracing::error!(path = %name.display(), %error, %cut, "journal write failed and could not be cut back: appends are refused until it can")
                    }
                }
                Err(LogError::io(&name, error))
            }
        }
    }

    fn append_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.disk.append(bytes) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the disk took no bytes")),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn cut_back(&mut self) -> io::Result<()> {
        self.disk.truncate(self.len)?;
        self.disk.sync()?;
        self.dirty = false;
        Ok(())
    }
}

/// Rewrites a journal of the first form (`f <event json>` lines, no header,
/// no checksums) as a new one under `epoch`, one batch per event.
fn migrate_v1(disk: &mut dyn Disk, epoch: Epoch) -> Result<(), LogError> {
    let name = disk.name().to_owned();
    let mut out = format!("{MAGIC}{epoch}\n").into_bytes();
    let mut head = 0;
    let mut line = String::new();
    let mut reader = disk.reader().map_err(|e| LogError::io(&name, e))?;
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| LogError::io(&name, e))? == 0 {
            break;
        }
        n += 1;
        let Some(complete) = line.strip_suffix('\n') else {
            break; // a torn last line
        };
        let corrupt = |reason: String| LogError::Corrupt {
            path: name.clone(),
            line: n,
            reason,
        };
        let (tag, json) = complete
            .split_once(' ')
            .ok_or_else(|| corrupt("no source tag".into()))?;
        let source = match tag {
            "f" => Source::Fixture,
            "i" => Source::Ingest,
            other => return Err(corrupt(format!("unknown source tag {other:?}"))),
        };
        let event = Event::from_json(json).map_err(|e| corrupt(e.to_string()))?;
        if event.id != head + 1 {
            return Err(corrupt(format!(
                "id {} after {head}: ids must be gap-free",
                event.id
            )));
        }
        head = event.id;
        let entry = Entry::of(&event, json.to_owned());
        out.extend(encode(source, None, event.pub_us.unwrap_or(0), &[entry]));
    }
    drop(reader);
    disk.replace(&out).map_err(|e| LogError::io(&name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> Entry {
        Entry::new(
            id,
            "news".into(),
            format!(
                r#"{{"headline":"h","id":{id},"kind":"news","provider":"p","score":0.5,"symbol":"X","ts_utc":"2024-01-01T00:00:00Z"}}"#
            ),
        )
    }

    #[test]
    fn a_record_reads_back_byte_for_byte_and_any_flipped_byte_is_named() {
        let key = IdempotencyKey::new("k-1").unwrap();
        let line = encode(Source::Ingest, Some((&key, 9)), 5, &[entry(1), entry(2)]);
        let text = std::str::from_utf8(&line).unwrap().strip_suffix('\n').unwrap();
        let record = decode(text).unwrap();
        assert_eq!(record.source, Source::Ingest);
        assert_eq!(record.key, Some((key, 9)));
        assert_eq!(record.entries[1].json, entry(2).json);
        for i in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let Ok(flipped) = std::str::from_utf8(&bytes) else {
                continue;
            };
            assert!(decode(flipped).is_err(), "a flip at byte {i} was not noticed");
        }
    }
}
