//! The `decision` binary restarted on the same `--state-dir` runs under the
//! configuration given at that restart, not the checkpoint's, and says on
//! stderr which limits the restored state breaks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-restart-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The binary on the embedded wire, the built-in day all at once.
fn decision(dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("TICKWIRE_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

fn audit(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("audit.jsonl")).unwrap()
}

#[test]
fn a_restart_with_a_lower_limit_warns_and_applies_it() {
    // Uninterrupted, default limits: no max_position denial all day.
    let whole = temp("whole");
    decision(&whole, &[]);
    assert!(!audit(&whole).contains("\"code\":\"max_position\""));

    // 1,500 events in: 10 NVDA held (bought at event 1,299).
    let dir = temp("lower");
    decision(&dir, &["--max-events", "1500"]);
    // As an older build wrote it: version 1, the config then in force inside.
    let path = dir.join("state/checkpoint.json");
    let v2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v2["version"], 3);
    let mut engine = v2["state"].clone();
    engine["config"] = serde_json::json!({"risk": {"max_position": 500}});
    std::fs::write(
        &path,
        serde_json::json!({"version": 1, "engine": engine}).to_string(),
    )
    .unwrap();

    let config = dir.join("low.yaml");
    std::fs::write(&config, "risk:\n  max_position: 5\n").unwrap();
    let out = decision(&dir, &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("risk.max_position: NVDA holds 10 shares, above the limit of 5"),
        "{stderr}"
    );
    assert!(stderr.contains("checkpoint version 1"), "{stderr}");
    assert!(stderr.contains("resuming after event 1500"), "{stderr}");

    // Applied: the NVDA close still goes through; the TSLA short (52) is denied.
    let log = audit(&dir);
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in\n{log}"))
    };
    assert!(line("\"event_id\":1794,").contains("\"verdict\":\"accept\""));
    assert!(line("\"event_id\":3591,").contains("\"code\":\"max_position\""));
    // Up to the restart, and on to the NVDA close, the log is the
    // uninterrupted one: the first four decisions.
    let first = |l: &str| l.lines().take(4).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(first(&log), first(&audit(&whole)));
}
