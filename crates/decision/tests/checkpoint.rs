//! Restart safety: an engine checkpointed part-way through the default day,
//! loaded into a new process's engine and run on, writes exactly the audit
//! log (byte for byte) and ends in exactly the state of one that never stopped.

use std::path::{Path, PathBuf};

use decision::checkpoint::{self, CheckpointError};
use decision::{Config, Engine, FeedHealth};

fn events() -> Vec<wire::Event> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, payload)| wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            payload,
        })
        .collect()
}

/// Applies events; returns the audit log as JSONL text.
fn feed(engine: &mut Engine, events: &[wire::Event]) -> String {
    let mut out = String::new();
    for e in events {
        for r in engine.on_event(e, FeedHealth::Live) {
            out.push_str(&r.to_json_line());
            out.push('\n');
        }
    }
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_restart_from_a_checkpoint_writes_the_same_audit_log() {
    let events = events();
    let mut whole = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut whole, &events);
    assert!(expected.lines().count() >= 4);

    let half = events.len() / 2;
    let mut first = Engine::new(Config::default()).unwrap();
    let mut log = feed(&mut first, &events[..half]);
    let dir = scratch("half");
    let path = dir.join("engine.json");
    checkpoint::save(&path, &first).unwrap();
    drop(first);

    let mut second = checkpoint::load(&path).unwrap();
    assert_eq!(second.last_event_id(), Some(half as u64));
    // The wire resumes after the checkpoint's last id.
    let resume = second.last_event_id().unwrap() as usize;
    log.push_str(&feed(&mut second, &events[resume..]));

    assert_eq!(log, expected);
    assert_eq!(second, whole);
    assert_eq!(second.summary(), whole.summary());
    // Only the checkpoint is left: no temporary file.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["engine.json"]);
}

#[test]
fn any_split_point_gives_the_same_log() {
    let events = events();
    let mut whole = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut whole, &events);
    // Every 250 events, including inside the NVDA and TSLA positions
    // (opened at events 1299 and 3591).
    for split in (0..=events.len()).step_by(250).chain([1299, 1300, 3591, 3592]) {
        let mut first = Engine::new(Config::default()).unwrap();
        let mut log = feed(&mut first, &events[..split]);
        let text = checkpoint::to_json(&first);
        let mut second = checkpoint::from_json(Path::new("mem"), &text).unwrap();
        log.push_str(&feed(&mut second, &events[split..]));
        assert_eq!(log, expected, "split at {split}");
        assert_eq!(
            checkpoint::to_json(&second),
            checkpoint::to_json(&whole),
            "split at {split}"
        );
    }
}

#[test]
fn replaying_events_already_applied_repeats_nothing() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut engine, &events[..2000]);
    let mut restored = checkpoint::from_json(Path::new("mem"), &checkpoint::to_json(&engine)).unwrap();
    // A transport that resumes too early: the overlap is skipped.
    assert_eq!(feed(&mut restored, &events[1000..2000]), "");
    assert_eq!(restored.summary().counts.repeated, 1000);
    assert!(!expected.is_empty());
}

#[test]
fn save_replaces_an_older_checkpoint() {
    let events = events();
    let dir = scratch("replace");
    let path = dir.join("engine.json");
    let mut engine = Engine::new(Config::default()).unwrap();
    feed(&mut engine, &events[..10]);
    checkpoint::save(&path, &engine).unwrap();
    feed(&mut engine, &events[10..20]);
    checkpoint::save(&path, &engine).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap().last_event_id(), Some(20));
}

#[test]
fn load_errors_name_the_file_and_the_fault() {
    let dir = scratch("errors");
    let missing = dir.join("missing.json");
    let err = checkpoint::load(&missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"version\":1,\"engine\":{\"config\":{}}}").unwrap();
    let err = checkpoint::load(&garbage).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
    assert!(err.to_string().contains("not a checkpoint"), "{err}");

    let engine = Engine::new(Config::default()).unwrap();
    let newer = checkpoint::to_json(&engine).replacen("\"version\":1", "\"version\":2", 1);
    let err = checkpoint::from_json(Path::new("x.json"), &newer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.json: checkpoint version 2, this build reads version 1"
    );

    // A checkpoint whose directory does not exist: an IO error naming the temp file.
    let err = checkpoint::save(&dir.join("nope/engine.json"), &engine).unwrap_err();
    assert!(err.to_string().contains("nope/engine.json.tmp"), "{err}");
}
