//! `decision` as a service: the summary reports live delivery latency and
//! counts replayed events apart (on the built-in day, and against a wire
//! with a backlog), `--summary-json` writes the summary for machines, and
//! `--log-json` makes every line JSON, the banner and the summary included.

mod common;

use std::process::Command;
use std::time::Duration;

use desk::{Ended, Options, RunOptions};
use transport::Preference;

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-desk-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn decision(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("TICKWIRE_CONFIG")
        .env_remove("TICKWIRE_WIRE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The built-in day is published as a wire would (2,000 events/s): the
/// engine reads it live, and the summary's latency is that live figure.
/// (The few events published before the client connects, if any, are
/// counted as replayed, apart.)
#[test]
fn the_built_in_days_summary_reports_live_latency() {
    let out = decision(&["--max-events", "2000"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let latency = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("latency"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let number_before = |text: &str, tail: &str| -> Option<u64> {
        let end = text.find(tail)?;
        text[..end].rsplit([' ', '(']).next()?.parse().ok()
    };
    assert!(latency.contains("live avg "), "{latency}");
    let live = number_before(latency, " events);").unwrap_or_else(|| panic!("{latency}"));
    let replayed = if latency.ends_with("none replayed") {
        0
    } else {
        number_before(latency, " replayed").unwrap_or_else(|| panic!("{latency}"))
    };
    // The client may read ahead of the engine's 2,000.
    assert!(live + replayed >= 2000, "{latency}");
    assert!(live > 4 * replayed, "mostly live: {latency}");
    assert!(
        stdout.starts_with("tickwire decision: http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .ends_with(" over sse (--transport auto)"),
        "{stdout}"
    );
}

/// Against a wire that published everything before the engine connected,
/// every event is catch-up: counted as replayed, none passed off as live.
#[tokio::test]
async fn a_backlog_is_counted_as_replayed_not_as_latency() {
    let (_stub, addr, clock) = common::wire_with_day(40).await;
    let url = format!("http://{addr}");
    let options = Options {
        file: desk::FileConfig::default(),
        wire_urls: vec![url],
        transport: Preference::Sse,
        token: None,
        from: None,
        ca_cert: None,
        run: RunOptions {
            max_events: Some(40),
            checkpoint_every: 500,
            ..RunOptions::default()
        },
        fixture_rate: None,
        clock,
    };
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session = desk::start(options, metrics).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), session.run(std::future::pending()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, Ended::Done);
    let text = session.summary(&ended);
    assert!(
        text.contains("latency       live none; 40 replayed (catch-up, age avg "),
        "{text}"
    );
    assert!(text.contains(" over sse\n"), "{text}");
    let json = session.summary_json(&ended);
    let wire = json.wire.unwrap();
    assert_eq!((wire.messages_received, wire.messages_replayed), (40, 40));
    assert_eq!(json.transports_used, ["sse"]);
}

#[test]
fn log_json_makes_every_line_json_and_summary_json_writes_the_summary() {
    let dir = temp("json");
    let file = dir.join("summary.json");
    let out = decision(&[
        "--max-events",
        "50",
        "--log-json",
        "--summary-json",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
    // At least the banner and the summary.
    assert!(lines.len() >= 2, "{stderr}\n{stdout}");
    for line in &lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    assert!(
        stderr.contains("embedded wire, built-in day"),
        "the banner: {stderr}"
    );
    let printed: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(written["ended"], "done");
    assert_eq!(written["exit_code"], 0);
    assert_eq!(written["engine"]["events"], 50);
    assert_eq!(written["transports_used"], serde_json::json!(["sse"]));
    // The client may have read ahead of the engine.
    assert!(
        written["wire"]["messages_received"].as_u64() >= Some(50),
        "{written}"
    );
    // Replayed events are counted (those published before the client
    // connected, if any), never more than were received.
    let replayed = written["wire"]["messages_replayed"].as_u64().unwrap();
    assert!(
        replayed <= written["wire"]["messages_received"].as_u64().unwrap(),
        "{written}"
    );
}

#[test]
fn a_busy_metrics_port_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", &addr])
        .env_remove("TICKWIRE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("decision: binding the metrics address {addr}: ")),
        "{stderr}"
    );
    let out = decision(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "decision: unexpected argument '--no-such-flag' found (see --help)\n"
    );
}
