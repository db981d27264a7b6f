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

#[test]
fn published_events_survive_a_restart_with_their_ids() {
    let d = dir("survive");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Fixture, &payloads(3), 111).unwrap();
    log.append(Source::Ingest, &payloads(2), 222).unwrap();
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
    assert_eq!(log.append(Source::Ingest, &payloads(1), 333).unwrap(), 6..=6);
    // Retention applies to what is loaded too.
    drop(log);
    let log = Log::open(&d, 2).unwrap();
    assert_eq!((log.oldest(), log.head()), (5, 6));
}

#[test]
fn a_torn_last_line_is_dropped_and_the_log_goes_on() {
    let d = dir("torn");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Ingest, &payloads(2), 1).unwrap();
    drop(log);
    let file = d.join("events.jsonl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("i {\"id\":3,\"kind\":\"ti");
    std::fs::write(&file, &text).unwrap();

    let log = Log::open(&d, 100).unwrap();
    assert_eq!(log.head(), 2);
    assert_eq!(log.append(Source::Ingest, &payloads(1), 2).unwrap(), 3..=3);
    drop(log);
    let log = Log::open(&d, 100).unwrap();
    assert_eq!(log.head(), 3, "the torn bytes were cut before appending");
}

#[test]
fn a_corrupt_or_gapped_journal_refuses_to_start_naming_the_line() {
    let d = dir("corrupt");
    let log = Log::open(&d, 100).unwrap();
    log.append(Source::Ingest, &payloads(3), 1).unwrap();
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
    stub.publish(Source::Fixture, &fixture[..4]).unwrap();
    stub.publish(Source::Ingest, &payloads(1)).unwrap();
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
        let stub = Stub::new(Config::default(), Log::new(1000), Arc::new(|| 0));
        stub::replay(stub.clone(), fixture.clone(), pace).await;
        runs.push(page(stub.log(), 0));
    }
    assert_eq!(runs[0].len(), 50);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_paces_publishing() {
    let stub = Stub::new(Config::default(), Log::new(1000), Arc::new(|| 0));
    let started = tokio::time::Instant::now();
    stub::replay(stub.clone(), payloads(101), Pace::Rate(50.0)).await;
    assert_eq!(
        started.elapsed(),
        std::time::Duration::from_secs(2),
        "100 gaps at 50/s"
    );
}
