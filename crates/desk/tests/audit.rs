//! The audit log and the checkpoint are checked against each other at
//! start: a log that lost records (deleted, cut, replaced) is an error
//! naming both files, never a run that carries on with a log that lies.

use std::path::{Path, PathBuf};

use decision::{Config, Engine, FeedHealth, checkpoint};
use desk::{Error, RunOptions, restore};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-desk-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("state")).unwrap();
    d
}

/// What a run over the first `events` of the day leaves: its checkpoint and
/// its audit log, plus `extra` lines a crash left past the checkpoint.
fn leave(dir: &Path, events: usize) -> (RunOptions, Vec<String>) {
    let mut engine = Engine::new(Config::default()).unwrap();
    let mut lines = Vec::new();
    let day = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    for (i, payload) in day.into_iter().take(events).enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            prev: None,
            payload,
        };
        for r in engine.on_event(&event, FeedHealth::Live) {
            lines.push(r.to_json_line());
        }
    }
    assert!(lines.len() >= 2, "the fixture decides by then: {}", lines.len());
    checkpoint::save(&dir.join("state/checkpoint.json"), &engine).unwrap();
    let options = RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        checkpoint_every: 100,
        ..RunOptions::default()
    };
    (options, lines)
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_audit_log_that_lost_records_is_an_error_naming_both_files() {
    let dir = temp("lost");
    let (options, lines) = leave(&dir, 4000);
    let audit = options.audit_log.clone().unwrap();
    for (what, kept) in [
        ("deleted", None),
        ("emptied", Some(&lines[..0])),
        ("cut", Some(&lines[..lines.len() - 1])),
    ] {
        let _ = std::fs::remove_file(&audit);
        if let Some(kept) = kept {
            write_lines(&audit, kept);
        }
        match restore(Config::default(), &options) {
            Err(e @ Error::AuditMismatch { .. }) => {
                let text = e.to_string();
                assert!(text.contains("audit.jsonl"), "{what}: {text}");
                assert!(text.contains("checkpoint.json"), "{what}: {text}");
                assert!(
                    text.contains(&format!("counts {}", lines.len())),
                    "{what}: {text}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn an_intact_log_and_one_a_crash_ran_past_the_checkpoint_restore() {
    let dir = temp("intact");
    let (options, lines) = leave(&dir, 4000);
    let audit = options.audit_log.clone().unwrap();
    write_lines(&audit, &lines);
    let engine = restore(Config::default(), &options).unwrap();
    assert_eq!(engine.last_event_id(), Some(4000));

    // A crash after the audit lines of later events but before their
    // checkpoint: those lines are cut, and the count matches.
    let mut past = lines.clone();
    past.push(r#"{"event_id":4001,"past":"the checkpoint"}"#.to_owned());
    write_lines(&audit, &past);
    restore(Config::default(), &options).unwrap();
    assert_eq!(
        std::fs::read_to_string(&audit).unwrap().lines().count(),
        lines.len()
    );

    // No checkpoint: whatever the log holds is cut, and the run starts over.
    std::fs::remove_file(dir.join("state/checkpoint.json")).unwrap();
    let engine = restore(Config::default(), &options).unwrap();
    assert_eq!(engine.last_event_id(), None);
    assert_eq!(std::fs::read_to_string(&audit).unwrap(), "");
}

/// The check comes before any cut: a wrong log given by mistake (another
/// day's, a longer one) is refused untouched, byte for byte.
#[test]
fn a_refused_audit_log_is_left_untouched() {
    let dir = temp("untouched");
    let (options, lines) = leave(&dir, 4000);
    let audit = options.audit_log.clone().unwrap();
    let mut other: Vec<String> = lines[..1].to_vec();
    other.push(r#"{"event_id":5000,"another":"day"}"#.to_owned());
    other.push(r#"{"event_id":5001,"another":"day"}"#.to_owned());
    write_lines(&audit, &other);
    let before = std::fs::read(&audit).unwrap();
    assert!(matches!(
        restore(Config::default(), &options),
        Err(Error::AuditMismatch { .. })
    ));
    assert_eq!(std::fs::read(&audit).unwrap(), before);
}
