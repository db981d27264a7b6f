//! `SimDisk`: the stub's journal file in the simulation, a [`stub::Disk`]
//! whose bytes the harness owns, so a bounce or a crash-restart of the stub
//! host reopens the same disk, and whose faults come from the run's seed.
//!
//! The model is deliberately simple. The file is `data` (what reads see);
//! a prefix of it, `durable`, is what survives a crash for sure.
//!
//! - `append` adds to `data` only; `sync` makes all of `data` durable.
//! - `truncate` never fails (shrinking needs no space) and is durable at
//!   once, so `durable` is always a prefix of `data`.
//! - `replace` (a migration) is atomic and durable.
//! - A crash keeps `durable` plus a random prefix of the unsynced bytes: a
//!   torn tail. A third of crashes keep none of them, a third all, a third
//!   a prefix of uniform length (so a whole unsynced record often survives,
//!   and a torn one as often).
//! - Losing the disk drops every byte; the next start makes a new journal
//!   under a new epoch.
//!
//! While the scenario's faults are on ([`DiskPlan`]), each `append` may find
//! the disk full: `ENOSPC` with nothing written, or a short write of a
//! random prefix whose continuation gets `ENOSPC`; each `sync` may fail
//! (the bytes stay unsynced); and an `append` may be the moment the host
//! crashes: half the time all the bytes reach the page cache (the crash
//! is in the `fsync`), else a prefix; none is synced, every later
//! operation does nothing, and the harness crashes the host at the next
//! step.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// How often each fault happens while the scenario's disk faults are on:
/// probabilities per operation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskPlan {
    /// An append finds the disk full.
    pub full: f64,
    /// A full-disk append writes a prefix first (a short write).
    pub short: f64,
    /// A sync fails.
    pub fsync_fail: f64,
    /// The host crashes in the middle of an append.
    pub crash: f64,
}

impl DiskPlan {
    pub fn is_quiet(&self) -> bool {
        *self == DiskPlan::default()
    }
}

/// What the disk did, for the trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCounts {
    pub appends: u64,
    pub enospc: u64,
    pub short_writes: u64,
    pub sync_failures: u64,
    /// Crashes (a mid-append crash or a crash fault) and the torn bytes they
    /// left: unsynced bytes that survived.
    pub crashes: u64,
    pub torn_bytes: u64,
    pub lost: u64,
}

#[derive(Debug)]
struct State {
    data: Vec<u8>,
    durable: usize,
    plan: DiskPlan,
    /// The plan applies only while the scenario's disk faults are on.
    faulty: bool,
    /// A short write happened: the continuation finds the disk full.
    short_pending: bool,
    /// The host is crashing: nothing it does reaches the disk any more.
    crashing: bool,
    rng: ChaCha8Rng,
    counts: DiskCounts,
}

/// The disk; clones share it. The harness keeps one and hands the stub host
/// a [`SimDisk::handle`] at every start.
#[derive(Debug, Clone)]
pub struct SimDisk(Arc<Mutex<State>>);

impl SimDisk {
    /// An empty disk whose faults are drawn from `seed` under `plan`.
    pub fn new(plan: DiskPlan, seed: u64) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(State {
            data: Vec::new(),
            durable: 0,
            plan,
            faulty: false,
            short_pending: false,
            crashing: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
            counts: DiskCounts::default(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal file for one start of the stub.
    pub fn handle(&self) -> Box<dyn stub::Disk> {
        Box::new(Handle {
            disk: self.clone(),
            name: PathBuf::from("simdisk/events.jsonl"),
        })
    }

    /// Turns the plan's faults on or off.
    pub fn set_faulty(&self, on: bool) {
        self.lock().faulty = on;
    }

    /// An append decided the host crashes now: the harness crashes it.
    pub fn crashing(&self) -> bool {
        self.lock().crashing
    }

    /// The host crashed: the durable bytes and a random prefix of the
    /// unsynced ones survive. Returns how many unsynced bytes survived.
    pub fn crash(&self) -> usize {
        let mut s = self.lock();
        let unsynced = s.data.len() - s.durable;
        let kept = match s.rng.random_range(0..3) {
            _ if unsynced == 0 => 0,
            0 => 0,
            1 => unsynced,
            _ => s.rng.random_range(0..=unsynced),
        };
        let keep = s.durable + kept;
        s.data.truncate(keep);
        s.durable = keep;
        s.crashing = false;
        s.short_pending = false;
        s.counts.crashes += 1;
        s.counts.torn_bytes += kept as u64;
        kept
    }

    /// Every byte is gone.
    pub fn lose(&self) {
        let mut s = self.lock();
        s.data.clear();
        s.durable = 0;
        s.crashing = false;
        s.short_pending = false;
        s.counts.lost += 1;
    }

    /// The bytes a reader sees now.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().data.clone()
    }

    /// A fault-free disk holding `bytes` (durable): for reading a copy.
    pub fn holding(bytes: Vec<u8>) -> SimDisk {
        let disk = SimDisk::new(DiskPlan::default(), 0);
        {
            let mut s = disk.lock();
            s.durable = bytes.len();
            s.data = bytes;
        }
        disk
    }

    pub fn counts(&self) -> DiskCounts {
        self.lock().counts
    }
}

fn enospc() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "no space left on device (simulated)")
}

fn crashed() -> io::Error {
    io::Error::other("the host is crashing (simulated)")
}

struct Handle {
    disk: SimDisk,
    name: PathBuf,
}

impl stub::Disk for Handle {
    fn name(&self) -> &Path {
        &self.name
    }

    fn reader(&mut self) -> io::Result<Box<dyn io::BufRead + '_>> {
        Ok(Box::new(io::Cursor::new(self.disk.bytes())))
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.disk.lock();
        let s = &mut *s;
        if s.crashing {
            return Err(crashed());
        }
        s.counts.appends += 1;
        if s.short_pending {
            s.short_pending = false;
            s.counts.enospc += 1;
            return Err(enospc());
        }
        if s.faulty && !buf.is_empty() {
            let plan = s.plan;
            if plan.crash > 0.0 && s.rng.random_bool(plan.crash.min(1.0)) {
                // All of the bytes reach the page cache, or a prefix; none is synced.
                let n = if s.rng.random_bool(0.5) {
                    buf.len()
                } else {
                    s.rng.random_range(1..=buf.len())
                };
                s.data.extend_from_slice(&buf[..n]);
                s.crashing = true;
                return Err(crashed());
            }
            if plan.full > 0.0 && s.rng.random_bool(plan.full.min(1.0)) {
                if buf.len() > 1 && s.rng.random_bool(plan.short.min(1.0)) {
                    let n = s.rng.random_range(1..buf.len());
                    s.data.extend_from_slice(&buf[..n]);
                    s.short_pending = true;
                    s.counts.short_writes += 1;
                    return Ok(n);
                }
                s.counts.enospc += 1;
                return Err(enospc());
            }
        }
        s.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.disk.lock();
        let s = &mut *s;
        if s.crashing {
            return Err(crashed());
        }
        if s.faulty && s.plan.fsync_fail > 0.0 && s.rng.random_bool(s.plan.fsync_fail.min(1.0)) {
            s.counts.sync_failures += 1;
            return Err(io::Error::other("fsync failed (simulated)"));
        }
        s.durable = s.data.len();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.disk.lock();
        if s.crashing {
            // The process is dying: nothing it does reaches the disk.
            return Ok(());
        }
        let len = (len as usize).min(s.data.len());
        s.data.truncate(len);
        s.durable = s.durable.min(len);
        Ok(())
    }

    fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        let mut s = self.disk.lock();
        if s.crashing {
            return Err(crashed());
        }
        s.data = contents.to_vec();
        s.durable = s.data.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_the_synced_bytes_and_a_prefix_of_the_rest() {
        for seed in 0..32 {
            let disk = SimDisk::new(DiskPlan::default(), seed);
            let mut h = disk.handle();
            assert_eq!(h.append(b"head\n").unwrap(), 5);
            h.sync().unwrap();
            h.append(b"unsynced\n").unwrap();
            let kept = disk.crash();
            let bytes = disk.bytes();
            assert!(bytes.starts_with(b"head\n"));
            assert_eq!(&bytes[5..], &b"unsynced\n"[..kept]);
            h.truncate(2).unwrap();
            assert_eq!(disk.bytes(), b"he");
            disk.lose();
            assert!(disk.bytes().is_empty());
        }
    }

    #[test]
    fn a_full_disk_refuses_or_writes_short_then_refuses() {
        let plan = DiskPlan {
            full: 1.0,
            short: 0.5,
            ..DiskPlan::default()
        };
        let disk = SimDisk::new(plan, 7);
        let mut h = disk.handle();
        h.append(b"ok").unwrap();
        disk.set_faulty(true);
        for _ in 0..20 {
            let before = disk.bytes().len();
            match h.append(b"record\n") {
                Ok(n) => {
                    assert!(n < 7, "a short write");
                    let e = h.append(&b"record\n"[n..]).unwrap_err();
                    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                    assert_eq!(disk.bytes().len(), before, "nothing written");
                }
            }
            h.truncate(2).unwrap();
        }
        let c = disk.counts();
        assert!(c.short_writes > 0 && c.enospc > c.short_writes, "{c:?}");
    }
}
