//! The journal (`--data-dir`): what was published survives a restart with
//! the same ids, bytes and epoch; a torn last line is cut; a corrupt record
//! refuses to start, named; a failed write (short, `ENOSPC`, failed `fsync`)
//! leaves the file as it was; idempotency keys survive a restart; the
//! fixture replay resumes after what the journal holds, and waits out a
//! full disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use stub::{
    Batch, Config, Disk, EventLog, FileDisk, IdempotencyKey, KeyWindow, Log, LogError, Pace, Source, Stub,
};
use wire::{Epoch, Payload};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn epoch(n: u64) -> Epoch {
    Epoch::from_random(n)
}

fn open(d: &Path, retention: usize, fresh: u64) -> Result<Log, LogError> {
    Log::open(d, retention, epoch(fresh), KeyWindow::default())
}

fn payloads(n: usize) -> Vec<Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .take(n)
        .collect()
}

async fn append(
    log: &dyn EventLog,
    source: Source,
    payloads: Vec<Payload>,
    pub_us: u64,
) -> Result<std::ops::RangeInclusive<u64>, LogError> {
    let batch = Batch {
        source,
        key: None,
        payloads,
        pub_us,
        fixture_at: None,
    };
    log.append(batch).await.map(|a| a.ids)
}

fn page(log: &dyn EventLog, after: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    log.read_with(after, usize::MAX, &mut |e| out.push((e.id, e.json.clone())))
        .unwrap();
    out
}

#[tokio::test]
async fn published_events_survive_a_restart_with_their_ids_bytes_and_epoch() {
    let d = dir("survive");
    let log = open(&d, 100, 1).unwrap();
    assert_eq!(log.epoch(), epoch(1), "a new journal takes the fresh epoch");
    append(&log, Source::Fixture, payloads(3), 111).await.unwrap();
    append(&log, Source::Ingest, payloads(2), 222).await.unwrap();
    let before = page(&log, 0);
    drop(log);

    let log = open(&d, 100, 2).unwrap();
    assert_eq!(
        log.epoch(),
        epoch(1),
        "a journal keeps the epoch it was made with"
    );
    assert_eq!(log.head(), 5);
    assert_eq!(log.fixture_done(), 3);
    assert_eq!(
        page(&log, 0),
        before,
        "same ids, same bytes (publish times included)"
    );
    assert_eq!(
        append(&log, Source::Ingest, payloads(1), 333).await.unwrap(),
        6..=6
    );
    // Retention applies to what is loaded too.
    drop(log);
    let log = open(&d, 2, 3).unwrap();
    assert_eq!((log.oldest(), log.head()), (5, 6));
}

#[tokio::test]
async fn a_torn_last_line_is_cut_and_the_log_goes_on() {
    let d = dir("torn");
    let log = open(&d, 100, 1).unwrap();
    append(&log, Source::Ingest, payloads(2), 1).await.unwrap();
    drop(log);
    let file = d.join("events.jsonl");
    let good = std::fs::read(&file).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(b"0badc0de {\"src\":\"i\",\"at\":2,\"events\":[{\"id\":3,\"ki");
    std::fs::write(&file, &torn).unwrap();

    let log = open(&d, 100, 2).unwrap();
    assert_eq!(log.head(), 2);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "the torn bytes are cut at start"
    );
    assert_eq!(append(&log, Source::Ingest, payloads(1), 2).await.unwrap(), 3..=3);
    drop(log);
    let log = open(&d, 100, 3).unwrap();
    assert_eq!(log.head(), 3);
}

#[tokio::test]
async fn a_corrupt_gapped_or_foreign_journal_refuses_to_start_naming_the_line() {
    let d = dir("corrupt");
    let log = open(&d, 100, 1).unwrap();
    for i in 0..3 {
        append(&log, Source::Ingest, payloads(1), i).await.unwrap();
    }
    drop(log);
    let file = d.join("events.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three batches");

    // One flipped byte in the middle record: found by its checksum, named.
    let flipped = lines[2].replacen("\"at\":1", "\"at\":7", 1);
    std::fs::write(
        &file,
        format!("{}\n{}\n{flipped}\n{}\n", lines[0], lines[1], lines[3]),
    )
    .unwrap();
    let err = open(&d, 100, 2).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");

    std::fs::write(&file, format!("{}\n{}\n{}\n", lines[0], lines[1], lines[3])).unwrap();
    let err = open(&d, 100, 2).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("gap-free"), "{err}");

    std::fs::write(&file, "hello\n").unwrap();
    let err = open(&d, 100, 2).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 1, .. }), "{err}");
}

#[tokio::test]
async fn a_journal_of_the_first_form_is_rewritten_under_a_new_epoch_with_its_ids() {
    let d = dir("v1");
    std::fs::create_dir_all(&d).unwrap();
    let mut v1 = String::new();
    for (i, p) in payloads(3).into_iter().enumerate() {
        let e = wire::Event {
            id: i as u64 + 1,
            pub_us: Some(10),
            prev: None,
            payload: p,
        };
        v1.push_str(if i == 0 { "f " } else { "i " });
        v1.push_str(&e.to_json());
        v1.push('\n');
    }
    std::fs::write(d.join("events.jsonl"), &v1).unwrap();
    let log = open(&d, 100, 9).unwrap();
    assert_eq!((log.epoch(), log.head(), log.fixture_done()), (epoch(9), 3, 1));
    let expected: Vec<(u64, String)> = v1
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l[2..].to_owned()))
        .collect();
    assert_eq!(page(&log, 0), expected);
    drop(log);
    let log = open(&d, 100, 10).unwrap();
    assert_eq!(log.epoch(), epoch(9), "rewritten once, then kept");
}

/// A real journal file on a disk with a byte quota: a write past it is
/// short and then fails with `ENOSPC`, as on a full filesystem; `sync` can
/// be made to fail. Raising the quota is freeing space.
struct FullDisk {
    file: FileDisk,
    left: Arc<AtomicU64>,
    fail_sync: Arc<AtomicBool>,
    refused: Arc<tokio::sync::Notify>,
}

impl Disk for FullDisk {
    fn name(&self) -> &Path {
        self.file.name()
    }
    fn reader(&mut self) -> io::Result<Box<dyn io::BufRead + '_>> {
        self.file.reader()
    }
    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left.load(Ordering::SeqCst) as usize;
        if left == 0 {
            self.refused.notify_one();
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = self.file.append(&buf[..buf.len().min(left)])?;
        self.left.fetch_sub(n as u64, Ordering::SeqCst);
        Ok(n)
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        self.file.sync()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.truncate(len)
    }
    fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        self.file.replace(contents)
    }
}

struct Space {
    left: Arc<AtomicU64>,
    fail_sync: Arc<AtomicBool>,
    /// Notified when a write meets the full disk.
    refused: Arc<tokio::sync::Notify>,
}

fn full_disk_log(d: &Path, left: u64) -> (Log, Space) {
    let space = Space {
        left: Arc::new(AtomicU64::new(left)),
        fail_sync: Arc::new(AtomicBool::new(false)),
        refused: Arc::default(),
    };
    let disk = FullDisk {
        file: FileDisk::open(d).unwrap(),
        left: space.left.clone(),
        fail_sync: space.fail_sync.clone(),
        refused: space.refused.clone(),
    };
    let log = Log::open_on(Box::new(disk), 100, epoch(1), KeyWindow::default()).unwrap();
    (log, space)
}

#[tokio::test]
async fn a_failed_write_leaves_the_journal_as_it_was_and_publishes_nothing() {
    let d = dir("full");
    let (log, space) = full_disk_log(&d, 1 << 20);
    append(&log, Source::Ingest, payloads(2), 1).await.unwrap();
    let file = d.join("events.jsonl");
    let stored = std::fs::read(&file).unwrap();

    // A short write, then ENOSPC: part of the batch reached the file.
    space.left.store(100, Ordering::SeqCst);
    let err = append(&log, Source::Ingest, payloads(30), 2).await.unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), stored, "the fragment was cut back");
    assert_eq!((log.head(), page(&log, 0).len()), (2, 2), "nothing published");

    // The whole batch written, the fsync fails: cut back too.
    space.left.store(1 << 20, Ordering::SeqCst);
    space.fail_sync.store(true, Ordering::SeqCst);
    append(&log, Source::Ingest, payloads(3), 3).await.unwrap_err();
    space.fail_sync.store(false, Ordering::SeqCst);
    assert_eq!(std::fs::read(&file).unwrap(), stored);

    // Space again: the next batch takes the next ids, after the last good record.
    assert_eq!(append(&log, Source::Ingest, payloads(1), 4).await.unwrap(), 3..=3);
    let served = page(&log, 0);
    drop(log);
    let log = open(&d, 100, 2).unwrap();
    assert_eq!(
        page(&log, 0),
        served,
        "a restart serves exactly what was acknowledged"
    );
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_ids_even_after_a_restart() {
    let d = dir("keys");
    let key = IdempotencyKey::new("batch-7").unwrap();
    let keyed = |payloads: Vec<Payload>| Batch {
        source: Source::Ingest,
        key: Some(key.clone()),
        payloads,
        pub_us: 5,
        fixture_at: None,
    };
    let log = open(&d, 100, 1).unwrap();
    let first = log.append(keyed(payloads(3))).await.unwrap();
    assert_eq!((first.ids.clone(), first.replayed), (1..=3, false));
    let again = log.append(keyed(payloads(3))).await.unwrap();
    assert_eq!((again.ids, again.replayed), (1..=3, true));
    assert_eq!(log.head(), 3, "nothing appended twice");
    drop(log);

    let log = open(&d, 100, 2).unwrap();
    let after_restart = log.append(keyed(payloads(3))).await.unwrap();
    assert_eq!((after_restart.ids, after_restart.replayed), (1..=3, true));
    let err = log.append(keyed(payloads(2))).await.unwrap_err();
    assert!(matches!(err, LogError::KeyReused { .. }), "{err}");
    assert_eq!(log.head(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_fixture_replay_resumes_after_the_journal() {
    let d = dir("resume");
    let fixture = payloads(10);
    let stub = Stub::new(Config::default(), open(&d, 100, 1).unwrap(), Arc::new(|| 7));
    stub.publish(Source::Fixture, &fixture[..4]).await.unwrap();
    stub.publish(Source::Ingest, &payloads(1)).await.unwrap();
    drop(stub);

    let stub = Stub::new(Config::default(), open(&d, 100, 2).unwrap(), Arc::new(|| 8));
    stub::replay(stub.clone(), fixture.clone(), Pace::NoPace).await;
    assert_eq!(
        stub.log().head(),
        11,
        "4 fixture + 1 ingested + the 6 fixture events left"
    );
    let sixth = page(stub.log(), 5);
    let sixth: wire::Event = wire::Event::from_json(&sixth[0].1).unwrap();
    assert_eq!((sixth.id, &sixth.payload), (6, &fixture[4]));
}

#[tokio::test]
async fn the_fixture_replay_waits_out_a_full_disk_and_then_publishes_everything() {
    let d = dir("replay-full");
    let (log, space) = full_disk_log(&d, 1 << 20);
    space.left.store(0, Ordering::SeqCst);
    let stub = Stub::new(Config::default(), log, Arc::new(|| 1));
    let replay = tokio::spawn(stub::replay(stub.clone(), payloads(20), Pace::NoPace));
    let watch = stub.log().watch();
    space.refused.notified().await;
    assert_eq!(stub.log().head(), 0);
    space.left.store(1 << 20, Ordering::SeqCst);
    let head = tokio::time::timeout(std::time::Duration::from_secs(30), watch.past(19))
        .await
        .expect("the replay went on once there was space");
    assert_eq!(head, 20);
    replay.await.unwrap();
    assert_eq!(stub.log().fixture_done(), 20);
}

#[tokio::test(start_paused = true)]
async fn replaying_the_same_fixture_gives_the_same_ids_at_any_pace() {
    let fixture = payloads(50);
    let mut runs = Vec::new();
    for pace in [Pace::NoPace, Pace::Rate(100.0), Pace::Speed(10.0)] {
        let stub = Stub::new(Config::default(), Log::new(1000, epoch(1)), Arc::new(|| 0));
        stub::replay(stub.clone(), fixture.clone(), pace).await;
        runs.push(page(stub.log(), 0));
    }
    assert_eq!(runs[0].len(), 50);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_paces_publishing() {
    let stub = Stub::new(Config::default(), Log::new(1000, epoch(1)), Arc::new(|| 0));
    let started = tokio::time::Instant::now();
    stub::replay(stub.clone(), payloads(101), Pace::Rate(50.0)).await;
    assert_eq!(
        started.elapsed(),
        std::time::Duration::from_secs(2),
        "100 gaps at 50/s"
    );
}

/// A disk whose `sync` reports each write as it starts and then holds it
/// until the test says how it ends, so a test can act while a write is in
/// progress without guessing at timing.
struct GatedDisk {
    file: FileDisk,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    /// `true`: the sync succeeds; `false`: it fails.
    release: std::sync::mpsc::Receiver<bool>,
}

impl Disk for GatedDisk {
    fn name(&self) -> &Path {
        self.file.name()
    }
    fn reader(&mut self) -> io::Result<Box<dyn io::BufRead + '_>> {
        self.file.reader()
    }
    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.append(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        let _ = self.started.send(());
        match self.release.recv() {
            Ok(true) => self.file.sync(),
            Ok(false) | Err(_) => Err(io::Error::other("disk full")),
        }
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.truncate(len)
    }
    fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        self.file.replace(contents)
    }
}

struct Gate {
    started: tokio::sync::mpsc::UnboundedReceiver<()>,
    release: std::sync::mpsc::Sender<bool>,
}

fn gated_log(name: &str) -> (Log, Gate) {
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let disk = GatedDisk {
        file: FileDisk::open(&dir(name)).unwrap(),
        started: started_tx,
        release: release_rx,
    };
    // Creating the journal syncs its header once.
    release.send(true).unwrap();
    let log = Log::open_on(Box::new(disk), 100, epoch(1), KeyWindow::default()).unwrap();
    started.try_recv().unwrap();
    (log, Gate { started, release })
}

/// Runs a reader on its own thread and waits for it: if the reader blocks
/// on a lock the write holds, the wait ends in a failure, not a hang.
async fn read_off_thread<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(20), tokio::task::spawn_blocking(f))
        .await
        .unwrap_or_else(|_| panic!("{what} blocked behind the journal write"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_streams_are_not_blocked_while_the_journal_writes() {
    let (log, mut gate) = gated_log("gated-readers");
    let reader = log.clone();
    let stub = Stub::new(Config::default(), log, Arc::new(|| 5));
    gate.release.send(true).unwrap();
    stub.publish(Source::Fixture, &payloads(2)).await.unwrap();
    assert_eq!(gate.started.recv().await, Some(()));

    // A third event's write starts and stays in progress.
    let publisher = stub.clone();
    let publishing = tokio::spawn(async move { publisher.publish(Source::Ingest, &payloads(1)).await });
    assert_eq!(gate.started.recv().await, Some(()));

    let (head, oldest, seen) = read_off_thread("a read", move || {
        let mut seen = Vec::new();
        reader.read_with(0, 10, &mut |e| seen.push(e.id)).unwrap();
        (reader.head(), reader.oldest(), seen)
    })
    .await;
    assert_eq!((head, oldest), (2, 1));
    assert_eq!(
        seen,
        [1, 2],
        "the event being written is not visible before it is on disk"
    );

    // A streaming client is served meanwhile: replay, then caught up at 2.
    let app = stub::app(stub.clone());
    let streaming = tokio::spawn(async move {
        use http_body_util::BodyExt;
        let req = axum::http::Request::get("/stream")
            .body(axum::body::Body::empty())
            .unwrap();
        let mut body = tower::ServiceExt::oneshot(app, req).await.unwrap().into_body();
        let mut text = String::new();
        while !text.contains("caught_up") {
            let frame = body.frame().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
        }
        (text, body)
    });
    let (text, mut body) = tokio::time::timeout(std::time::Duration::from_secs(20), streaming)
        .await
        .expect("the stream blocked behind the journal write")
        .unwrap();
    assert!(text.contains("-2\n") && !text.contains("-3\n"), "{text}");
    assert!(text.contains("\"head\":2"), "{text}");

    gate.release.send(true).unwrap();
    assert_eq!(publishing.await.unwrap().unwrap(), 3..=3);
    assert_eq!(stub.log().head(), 3);
    use http_body_util::BodyExt;
    let next = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(std::str::from_utf8(&next).unwrap().contains("-3\n"));
}

#[tokio::test]
async fn a_failed_sync_publishes_nothing_and_uses_no_id() {
    let (log, mut gate) = gated_log("gated-fail");
    gate.release.send(true).unwrap();
    assert_eq!(
        append(&log, Source::Fixture, payloads(2), 1).await.unwrap(),
        1..=2
    );
    gate.release.send(false).unwrap();
    // The failed sync, then the cut-back's own sync.
    gate.release.send(true).unwrap();
    let err = append(&log, Source::Fixture, payloads(3), 2).await.unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err}");
    assert_eq!((log.head(), log.fixture_done()), (2, 2));
    assert_eq!(page(&log, 0).len(), 2);
    gate.release.send(true).unwrap();
    assert_eq!(
        append(&log, Source::Ingest, payloads(1), 3).await.unwrap(),
        3..=3,
        "ids stay gap-free"
    );
    while gate.started.try_recv().is_ok() {}
}

/// The simulation runs the in-memory log under turmoil, where a blocking
/// thread would break determinism: an append must finish on its first poll.
#[test]
fn an_in_memory_append_completes_without_yielding() {
    let log = Log::new(10, epoch(1));
    let batch = Batch {
        source: Source::Ingest,
        key: None,
        payloads: payloads(3),
        pub_us: 1,
        fixture_at: None,
    };
    let mut append = log.append(batch);
    let polled = append
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    assert!(
        matches!(polled, std::task::Poll::Ready(Ok(ref a)) if a.ids == (1..=3)),
        "{polled:?}"
    );
    drop(append);
    assert_eq!(log.head(), 3);
}
