//! Wire mode: the engine fed over real TCP by the real stub writes the same
//! audit log whichever transport carried the events (SSE, WebSocket,
//! polling), when streaming is unavailable and it falls back to polling,
//! and when it is killed and restarted from its checkpoint. Run them all with
//! `cargo test wire_mode`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use decision::{Config, Engine};
use desk::{Ended, Live, RunOptions};
use stub::{Log, Pace, Stub};
use transport::{ClientConfig, TokioConnect, Transport};

fn fixture() -> Vec<wire::Payload> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-wire-mode-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The audit log of the engine run straight over the fixture, no network.
fn offline_audit() -> String {
    decision::offline_audit(Config::default(), &fixture()).unwrap()
}

async fn start_stub(streaming: bool) -> (Stub, String) {
    let config = stub::Config::default();
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    stub.set_streaming(streaming);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(stub::replay(stub.clone(), fixture(), Pace::Rate(20_000.0)));
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
    (stub, url)
}

async fn run_over(kind: Transport, streaming: bool, dir: &Path) -> (String, Live) {
    let (_stub, url) = start_stub(streaming).await;
    let mut client = ClientConfig::new(&url, Arc::new(|| 2));
    client.policy.transport = kind;
    client.poll_wait = Duration::from_millis(200);
    let options = RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        max_events: None,
        until_id: Some(fixture().len() as u64),
        checkpoint_every: 1000,
        accept_new_epoch: false,
        on_event: None,
    };
    let live = Live::new(Engine::new(Config::default()).unwrap());
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        desk::run(TokioConnect, client, &live, &options, std::future::pending()),
    )
    .await
    .expect("the run finishes")
    .unwrap();
    assert_eq!(ended, Ended::Done);
    (std::fs::read_to_string(dir.join("audit.jsonl")).unwrap(), live)
}

#[tokio::test]
async fn wire_mode_sse_ws_and_polling_write_the_same_audit_log() {
    let expected = offline_audit();
    assert!(expected.lines().count() >= 4, "the day has decisions to compare");
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let dir = temp(kind.as_str());
        let (audit, live) = run_over(kind, true, &dir).await;
        assert_eq!(audit, expected, "{kind:?}");
        assert_eq!(live.engine().summary().counts.events, fixture().len() as u64);
        // The dashboard's ring: the audit log's last lines, in order.
        let recent: Vec<String> = live.decisions_after(0).into_iter().map(|(_, l)| l).collect();
        let lines: Vec<&str> = expected.lines().collect();
        assert_eq!(
            recent,
            lines[lines.len().saturating_sub(desk::dashboard::RECENT)..],
            "{kind:?}"
        );
        assert_eq!(
            live.wire_metrics().unwrap().snapshot().wire_transport,
            kind.as_str()
        );
    }
}

#[tokio::test]
async fn wire_mode_falls_back_to_polling_and_writes_the_same_audit_log() {
    let dir = temp("fallback");
    let (audit, live) = run_over(Transport::Sse, false, &dir).await;
    assert_eq!(audit, offline_audit());
    let m = live.wire_metrics().unwrap().snapshot();
    assert_eq!((m.fallbacks, m.wire_transport), (1, "poll"));
    // Streaming was off: the one transport used is polling, and the
    // summary's header says so, not the SSE that was asked for first.
    assert_eq!(m.transports_used, ["poll"]);
    let header = desk::report::transports(Some(&m), transport::Preference::Auto);
    assert_eq!(header, "poll (--transport auto)");
}

/// The real binary, killed (SIGKILL) mid-stream and restarted from its
/// checkpoint, writes the audit log of an uninterrupted run.
#[test]
fn wire_mode_a_killed_engine_resumes_from_its_checkpoint() {
    let bin = env!("CARGO_BIN_EXE_decision");
    let run = |dir: &Path| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--checkpoint-every",
            "100",
            "--fixture-rate",
            "3000",
        ])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        cmd
    };
    let whole = temp("whole");
    assert!(run(&whole).status().unwrap().success());
    let expected = std::fs::read_to_string(whole.join("audit.jsonl")).unwrap();
    assert_eq!(expected, offline_audit());

    let dir = temp("killed");
    let mut child = run(&dir).spawn().unwrap();
    // Kill once a checkpoint exists and the first decisions (the NVDA burst
    // around event 1,300) are in the audit log: mid-stream, well before the
    // end (6,347 events at 3,000/s). Polling keeps this sure on a busy machine.
    let ready = || {
        dir.join("state/checkpoint.json").exists()
            && std::fs::metadata(dir.join("audit.jsonl")).is_ok_and(|m| m.len() > 0)
    };
    // At most 6,000 polls of 5 ms: 30 s.
    let waited = (0..6_000).find(|_| {
        let done = ready();
        if !done {
            std::thread::sleep(Duration::from_millis(5));
        }
        done
    });
    assert!(waited.is_some(), "no checkpoint and no decision in 30 s");
    child.kill().unwrap();
    child.wait().unwrap();
    let checkpoint =
        std::fs::read_to_string(dir.join("state/checkpoint.json")).expect("a checkpoint before the kill");
    assert!(
        checkpoint.contains("\"last_event_id\""),
        "{}",
        &checkpoint[..200.min(checkpoint.len())]
    );
    let partial = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    assert!(partial.len() < expected.len(), "killed mid-stream");

    assert!(run(&dir).status().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(dir.join("audit.jsonl")).unwrap(),
        expected
    );
}

/// Reads one HTTP/1.0 answer's body from the binary's metrics endpoint.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Starts the binary on the embedded wire at 500 events/s with a state
/// dir; returns it and its metrics address once events flow.
fn start_binary(dir: &Path) -> (std::process::Child, String, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", "127.0.0.1:0", "--fixture-rate", "500"])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("http://")
        .nth(2)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_owned();
    // Wait until events flow (at most 3,000 polls of 10 ms: 30 s).
    let json = (0..3_000)
        .find_map(|_| {
            let json: serde_json::Value = serde_json::from_str(&http_get(&addr, "/metrics.json")).unwrap();
            if json["engine"]["events"].as_u64().unwrap_or(0) > 0 {
                return Some(json);
            }
            std::thread::sleep(Duration::from_millis(10));
            None
        })
        .expect("events within 30 s");
    (child, addr, json)
}

/// Sends `signal` (`-INT`, `-TERM`) and checks the clean stop: status 0,
/// the summary, and a final checkpoint at least as far as `seen` events.
fn signal_and_check_a_clean_stop(child: std::process::Child, signal: &str, dir: &Path, seen: u64) {
    assert!(
        std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{signal}: {out:?}");
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.contains("ended         interrupted"),
        "{signal}: {summary}"
    );
    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/checkpoint.json")).unwrap()).unwrap();
    let last = checkpoint["state"]["last_event_id"].as_u64().unwrap_or(0);
    assert!(
        last >= seen,
        "{signal}: the final checkpoint is at {last}, before {seen}"
    );
}

/// The binary's observability while it runs, and Ctrl-C: a checkpoint,
/// then a clean exit with the summary.
#[test]
fn wire_mode_metrics_while_running_and_ctrl_c_checkpoints() {
    let dir = temp("ctrl-c");
    let (child, addr, json) = start_binary(&dir);
    for key in [
        "wire_transport",
        "connection_state",
        "reconnect_attempts",
        "last_reconnect",
        "messages_received",
        "message_rate",
        "average_latency_ms",
        "p99_latency_ms",
    ] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert_eq!(json["wire_transport"], "sse");
    assert!(json["messages_received"].as_u64().unwrap() > 0);
    assert!(json["engine"]["events"].as_u64().unwrap() > 0, "{json}");
    assert!(json["engine"].get("denials_by_code").is_some());
    let text = http_get(&addr, "/metrics");
    for name in [
        "wire_messages_received_total",
        "wire_connection_state",
        "decision_events_total",
        "decision_trading_state",
    ] {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    assert_eq!(http_get(&addr, "/healthz"), "ok\n");

    let seen = json["engine"]["events"].as_u64().unwrap();
    signal_and_check_a_clean_stop(child, "-INT", &dir, seen);
}

/// SIGTERM, what systemd, Docker and Kubernetes send, stops it the same
/// clean way as Ctrl-C: a final checkpoint, the summary, status 0.
#[test]
fn sigterm_checkpoints_and_exits_zero_with_the_summary() {
    let dir = temp("sigterm");
    let (child, _, json) = start_binary(&dir);
    let seen = json["engine"]["events"].as_u64().unwrap();
    signal_and_check_a_clean_stop(child, "-TERM", &dir, seen);
}

/// Decisions reach the audit log within about a second while the engine
/// runs (so `tail -f` keeps up), not only at a checkpoint or at exit.
#[test]
fn the_audit_log_is_flushed_while_running() {
    let dir = temp("tail");
    let audit = dir.join("audit.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", "127.0.0.1:0", "--fixture-rate", "500"])
        .args(["--checkpoint-every", "1000000"])
        .arg("--audit-log")
        .arg(&audit)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The day takes about 13 s at 500 events/s; its first decision comes
    // after about 3 s. Poll every 20 ms, at most 15 s.
    let seen_while_running = (0..750).find_map(|_| {
        let running = child.try_wait().unwrap().is_none();
        let lines = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .count();
        if lines > 0 {
            return Some(running);
        }
        std::thread::sleep(Duration::from_millis(20));
        None
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen_while_running,
        Some(true),
        "a decision in the audit log while the engine still ran"
    );
}
