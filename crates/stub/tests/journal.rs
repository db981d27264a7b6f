//! The journal (`--data-dir`): what was published survives a restart with
//! the same ids, a torn last line is dropped, a corrupt one refuses to start,
//! and the fixture replay resumes after what the journal already holds.

use std::path::PathBuf;
use std::sync::Arc;

use stub::{Config, Log, LogError, Pace, Source, Stub};
use wire::Payload;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn payloads(n: usize) -> Vec<Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .take(n)
        .collect()
}

fn page(log: &Log, after: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    log.read_with(after, usize::MAX, |e| out.push((e.id, e.json.clone())))
        .unwrap();
    out
}

#[tokio::test]
async fn published_events_survive_a_restart_with_their_ids() {
    let d = dir("survive");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Fixture, &payloads(3), 111).await.unwrap();
    log.append(Source::Ingest, &payloads(2), 222).await.unwrap();
    let before = page(&log, 0);
    drop(log);

    let log = Log::open(&d, 100).unwrap();
    assert_eq!(log.head(), 5);
    assert_eq!(log.fixture_done(), 3);
    assert_eq!(
        page(&log, 0),
        before,
        "same ids, same payloads, same publish times"
    );
    assert_eq!(
        log.append(Source::Ingest, &payloads(1), 333).await.unwrap(),
        6..=6
    );
    // Retention applies to what is loaded too.
    drop(log);
    let log = Log::open(&d, 2).unwrap();
    assert_eq!((log.oldest(), log.head()), (5, 6));
}

#[tokio::test]
async fn a_torn_last_line_is_dropped_and_the_log_goes_on() {
    let d = dir("torn");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Ingest, &payloads(2), 1).await.unwrap();
    drop(log);
    let file = d.join("events.jsonl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("i {\"id\":3,\"kind\":\"ti");
    std::fs::write(&file, &text).unwrap();

    let log = Log::open(&d, 100).unwrap();
    assert_eq!(log.head(), 2);
    assert_eq!(log.append(Source::Ingest, &payloads(1), 2).await.unwrap(), 3..=3);
    drop(log);
    let log = Log::open(&d, 100).unwrap();
    assert_eq!(log.head(), 3, "the torn bytes were cut before appending");
}

#[tokio::test]
async fn a_corrupt_or_gapped_journal_refuses_to_start_naming_the_line() {
    let d = dir("corrupt");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Ingest, &payloads(3), 1).await.unwrap();
    drop(log);
    let file = d.join("events.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    std::fs::write(&file, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let err = Log::open(&d, 100).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("gap-free"), "{err}");

    std::fs::write(&file, format!("{}\nx nonsense\n{}\n", lines[0], lines[1])).unwrap();
    let err = Log::open(&d, 100).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 2, .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_fixture_replay_resumes_after_the_journal() {
    let d = dir("resume");
    let fixture = payloads(10);
    let stub = Stub::new(Config::default(), Log::open(&d, 100).unwrap(), Arc::new(|| 7));
    stub.publish(Source::Fixture, &fixture[..4]).await.unwrap();
    stub.publish(Source::Ingest, &payloads(1)).await.unwrap();
    drop(stub);

    let stub = Stub::new(Config::default(), Log::open(&d, 100).unwrap(), Arc::new(|| 8));
    stub::replay(stub.clone(), fixture.clone(), Pace::NoPace).await;
    assert_eq!(
        stub.log().head(),
        11,
        "4 fixture + 1 ingested + the 6 fixture events left"
    );
    let mut kinds = Vec::new();
    stub.log()
        .read_with(5, 100, |e| kinds.push(e.json.clone()))
        .unwrap();
    let sixth: wire::Event = wire::Event::from_json(&kinds[0]).unwrap();
    assert_eq!((sixth.id, &sixth.payload), (6, &fixture[4]));
}

#[tokio::test(start_paused = true)]
async fn replaying_the_same_fixture_gives_the_same_ids_at_any_pace() {
    let fixture = payloads(50);
    let mut runs = Vec::new();
    for pace in [Pace::NoPace, Pace::Rate(100.0), Pace::Speed(10.0)] {
        let stub = Stub::new(Config::default(), Log::new(1000, wire::Epoch::from_random(0x5eed)), Arc::new(|| 0));
        stub::replay(stub.clone(), fixture.clone(), pace).await;
        runs.push(page(stub.log(), 0));
    }
    assert_eq!(runs[0].len(), 50);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_paces_publishing() {
    let stub = Stub::new(Config::default(), Log::new(1000, wire::Epoch::from_random(0x5eed)), Arc::new(|| 0));
    let started = tokio::time::Instant::now();
    stub::replay(stub.clone(), payloads(101), Pace::Rate(50.0)).await;
    assert_eq!(
        started.elapsed(),
        std::time::Duration::from_secs(2),
        "100 gaps at 50/s"
    );
}

/// A journal that reports each write as it starts and then holds it until
/// the test says how it ends, so a test can act while a write is in
/// progress without guessing at timing.
struct GatedJournal {
    started: tokio::sync::mpsc::UnboundedSender<usize>,
    /// `true`: the write succeeds; `false`: it fails.
    release: std::sync::mpsc::Receiver<bool>,
}

impl stub::Journal for GatedJournal {
    fn write(&mut self, _: Source, entries: &[stub::Entry]) -> Result<(), LogError> {
        let _ = self.started.send(entries.len());
        match self.release.recv() {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(LogError::io(
                std::path::Path::new("gated"),
                std::io::Error::other("disk full"),
            )),
        }
    }
}

struct Gate {
    started: tokio::sync::mpsc::UnboundedReceiver<usize>,
    release: std::sync::mpsc::Sender<bool>,
}

fn gated_log() -> (Log, Gate) {
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let journal = GatedJournal {
        started: started_tx,
        release: release_rx,
    };
    (Log::with_journal(100, journal), Gate { started, release })
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
    let (log, mut gate) = gated_log();
    let stub = Stub::new(Config::default(), log, Arc::new(|| 5));
    gate.release.send(true).unwrap();
    stub.publish(Source::Fixture, &payloads(2)).await.unwrap();
    assert_eq!(gate.started.recv().await, Some(2));

    // A third event's write starts and stays in progress.
    let publisher = stub.clone();
    let publishing = tokio::spawn(async move { publisher.publish(Source::Ingest, &payloads(1)).await });
    assert_eq!(gate.started.recv().await, Some(1));

    let log = stub.log().clone();
    let (head, oldest, seen) = read_off_thread("a read", move || {
        let mut seen = Vec::new();
        log.read_with(0, 10, |e| seen.push(e.id)).unwrap();
        (log.head(), log.oldest(), seen)
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
        let req = axum::http::Request::get("/stream?cursor=0")
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
    assert!(text.contains("id: 2\n") && !text.contains("id: 3\n"), "{text}");
    assert!(text.contains("\"head\":2"), "{text}");

    gate.release.send(true).unwrap();
    assert_eq!(publishing.await.unwrap().unwrap(), 3..=3);
    assert_eq!(stub.log().head(), 3);
    use http_body_util::BodyExt;
    let next = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(std::str::from_utf8(&next).unwrap().contains("id: 3\n"));
}

#[tokio::test]
async fn a_failed_journal_write_publishes_nothing_and_uses_no_id() {
    let (log, mut gate) = gated_log();
    gate.release.send(true).unwrap();
    assert_eq!(log.append(Source::Fixture, &payloads(2), 1).await.unwrap(), 1..=2);
    gate.release.send(false).unwrap();
    let err = log.append(Source::Fixture, &payloads(3), 2).await.unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err}");
    assert_eq!((log.head(), log.fixture_done()), (2, 2));
    assert_eq!(page(&log, 0).len(), 2);
    gate.release.send(true).unwrap();
    assert_eq!(
        log.append(Source::Ingest, &payloads(1), 3).await.unwrap(),
        3..=3,
        "ids stay gap-free"
    );
    while gate.started.try_recv().is_ok() {}
}

/// The simulation runs the in-memory log under turmoil, where a blocking
/// thread would break determinism: an append must finish on its first poll.
#[test]
fn an_in_memory_append_completes_without_yielding() {
    let log = Log::new(10, wire::Epoch::from_random(0x5eed));
    let payloads = payloads(3);
    let mut append = std::pin::pin!(log.append(Source::Ingest, &payloads, 1));
    let polled = append
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    assert!(
        matches!(polled, std::task::Poll::Ready(Ok(ref ids)) if *ids == (1..=3)),
        "{polled:?}"
    );
    assert_eq!(log.head(), 3);
}
