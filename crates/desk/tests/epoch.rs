//! The engine on a wire whose log was recreated under its checkpoint,
//! against a hand-written wire (an axum router answering a script of SSE
//! streams and problems): without `accept_new_epoch` the run stops with
//! `EpochChanged`, exit code 3 and advice naming the checkpoint and the
//! flag, changing nothing; with it the audit log records the change, the
//! checkpoint moves to the new epoch, and the start-up cross-check accepts
//! the log (and still refuses one that lost the change or its records). A
//! checkpoint past the wire's head is `CursorAhead`, exit code 4.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use decision::{Config, Engine, FeedHealth, checkpoint};
use desk::{Ended, Error, Live, RunOptions, restore};
use transport::{ClientConfig, ClientError, TokioConnect, Transport};
use wire::{Control, Cursor, Epoch, Event};

fn e1() -> Epoch {
    Epoch::from_random(0xe1)
}

fn e2() -> Epoch {
    Epoch::from_random(0xe2)
}

fn day() -> Vec<wire::Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-desk-epoch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("state")).unwrap();
    d
}

fn options(dir: &Path, accept_new_epoch: bool) -> RunOptions {
    RunOptions {
        audit_log: Some(dir.join("audit.jsonl")),
        state_dir: Some(dir.join("state")),
        checkpoint_every: 100,
        accept_new_epoch,
        ..RunOptions::default()
    }
}

/// What a run over the first 1,500 events of the day in `e1` leaves: a
/// checkpoint (epoch e1, last id 1500) and its audit log.
fn leave(dir: &Path) -> Vec<String> {
    let mut engine = Engine::new(Config::default()).unwrap();
    engine.adopt_epoch(e1());
    let mut lines = Vec::new();
    for (i, payload) in day().into_iter().take(1500).enumerate() {
        let event = Event {
            id: i as u64 + 1,
            pub_us: None,
            prev: None,
            payload,
        };
        lines.extend(
            engine
                .on_event(&event, FeedHealth::Live)
                .iter()
                .map(|r| r.to_json_line()),
        );
    }
    assert!(lines.len() >= 2, "the day decides by then");
    checkpoint::save(&dir.join("state/checkpoint.json"), &engine).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("audit.jsonl"), text).unwrap();
    lines
}

/// One answer per request, in order; what each request asked is recorded.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Response<String>>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

async fn answer(State(script): State<Script>, OriginalUri(uri): OriginalUri) -> Response {
    script.asked.lock().unwrap().push(uri.to_string());
    match script.answers.lock().unwrap().pop_front() {
        Some(r) => r.into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "the script is over").into_response(),
    }
}

/// An SSE answer from `epoch`: `controls` first, then events `ids` of the
/// day (their payloads from the day's start).
fn sse(epoch: Epoch, controls: &[Control], ids: std::ops::RangeInclusive<u64>) -> Response<String> {
    let mut body = Vec::new();
    for c in controls {
        wire::sse::encode_control(&mut body, c);
    }
    let day = day();
    for id in ids {
        let e = Event {
            id,
            pub_us: Some(1),
            prev: None,
            payload: day[id as usize - 1].clone(),
        };
        wire::sse::encode_parts(&mut body, e.payload.kind(), Cursor::new(epoch, id), &e.to_json());
    }
    Response::builder()
        .header("content-type", "text/event-stream")
        .header(wire::EPOCH_HEADER, epoch.to_string())
        .body(String::from_utf8(body).unwrap())
        .unwrap()
}

fn problem(status: u16, p: wire::Problem) -> Response<String> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(p.to_body())
        .unwrap()
}

fn reset() -> Control {
    Control::Reset {
        from: e1(),
        epoch: e2(),
        oldest: 1,
        head: 3,
    }
}

async fn serve(answers: Vec<Response<String>>) -> (SocketAddr, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.into())),
        ..Script::default()
    };
    let app = Router::new()
        .route("/stream", get(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, script)
}

async fn run_on(addr: SocketAddr, options: &RunOptions) -> (Ended, Live) {
    let mut client = ClientConfig::new(&format!("http://{addr}"), Arc::new(|| 2));
    client.policy.transport = Transport::Sse;
    client.policy.fallback = false;
    client.policy.initial_delay = Duration::from_millis(20);
    let live = Live::new(restore(Config::default(), options).unwrap());
    let ended = tokio::time::timeout(
        Duration::from_secs(20),
        desk::run(TokioConnect, client, &live, options, std::future::pending()),
    )
    .await
    .expect("the run ends")
    .unwrap();
    (ended, live)
}

/// The engine's epoch and last id (one lock).
fn at(live: &Live) -> (Option<Epoch>, Option<u64>) {
    let engine = live.engine();
    (engine.epoch(), engine.last_event_id())
}

fn saved(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state/checkpoint.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn a_changed_epoch_stops_the_run_with_advice_and_changes_nothing() {
    let dir = temp("refused");
    let lines = leave(&dir);
    let audit_before = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let (addr, script) = serve(vec![sse(e2(), &[reset()], 1..=3)]).await;
    let options = options(&dir, false);
    let (ended, live) = run_on(addr, &options).await;
    assert_eq!(
        ended,
        Ended::WireStopped(ClientError::EpochChanged {
            from: e1(),
            epoch: e2(),
            oldest: Some(1),
            head: Some(3)
        })
    );
    // The checkpoint's cursor went out in its epoch.
    assert_eq!(
        script.asked.lock().unwrap()[0],
        format!("/stream?cursor={}-1500", e1())
    );
    assert_eq!(desk::session::exit_code(&ended), 3);
    let advice = desk::session::advice(&ended, &options).unwrap();
    for needle in [
        "the wire's log was recreated",
        "no longer name the same events",
        &dir.join("state/checkpoint.json").display().to_string(),
        "--accept-new-epoch",
        "wire.accept_new_epoch",
        "remove the checkpoint",
        &dir.join("audit.jsonl").display().to_string(),
    ] {
        assert!(advice.contains(needle), "{needle:?} in {advice}");
    }
    // Nothing of the new epoch applied; the checkpoint still names e1.
    assert_eq!(at(&live), (Some(e1()), Some(1500)));
    assert_eq!(saved(&dir)["state"]["epoch"], e1().to_string());
    assert_eq!(
        std::fs::read_to_string(dir.join("audit.jsonl")).unwrap(),
        audit_before
    );
    assert!(!lines.is_empty());
}

#[tokio::test]
async fn accepting_a_new_epoch_records_it_checkpoints_it_and_the_cross_check_accepts_it() {
    let dir = temp("accepted");
    let lines = leave(&dir);
    let before = std::fs::read(dir.join("state/checkpoint.json")).unwrap();
    let (addr, script) = serve(vec![sse(e2(), &[reset()], 1..=3), sse(e2(), &[], 1..=3)]).await;
    let mut options = options(&dir, true);
    options.max_events = Some(3);
    let (ended, live) = run_on(addr, &options).await;
    assert_eq!(ended, Ended::Done);
    // After the change, the new epoch from its oldest event.
    assert_eq!(
        script.asked.lock().unwrap()[1],
        format!("/stream?cursor={}-0", e2())
    );
    assert_eq!(at(&live), (Some(e2()), Some(3)));
    let cp = saved(&dir);
    assert_eq!(cp["state"]["epoch"], e2().to_string());
    assert_eq!(cp["state"]["last_event_id"], 3);
    assert_eq!(cp["state"]["counts"]["epoch_changes"], 1);
    let log = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let logged: Vec<&str> = log.lines().collect();
    let change = format!(
        "{{\"epoch_change\":{{\"from\":\"{}\",\"to\":\"{}\",\"last_event_id\":1500,\"resume_after\":0}}}}",
        e1(),
        e2()
    );
    assert_eq!(
        logged[..lines.len()],
        lines.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert_eq!(
        logged[lines.len()],
        change,
        "the change follows the old epoch's decisions"
    );

    // The cross-check at start accepts the log with the change in it.
    let engine = restore(Config::default(), &options).unwrap();
    assert_eq!((engine.epoch(), engine.last_event_id()), (Some(e2()), Some(3)));
    assert_eq!(
        std::fs::read_to_string(dir.join("audit.jsonl")).unwrap(),
        log,
        "nothing cut"
    );
    // And still refuses one that lost the change, or lost everything.
    let audit = dir.join("audit.jsonl");
    let without: String = logged
        .iter()
        .filter(|l| !l.contains("epoch_change"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&audit, without).unwrap();
    assert!(matches!(
        restore(Config::default(), &options),
        Err(Error::AuditEpochs { .. })
    ));
    std::fs::remove_file(&audit).unwrap();
    assert!(matches!(
        restore(Config::default(), &options),
        Err(Error::AuditMismatch { .. })
    ));

    // A crash between the change line and the checkpoint that records it:
    // the old checkpoint, the log past it; the line is cut back.
    std::fs::write(&audit, &log).unwrap();
    std::fs::write(dir.join("state/checkpoint.json"), before).unwrap();
    let engine = restore(Config::default(), &options).unwrap();
    assert_eq!((engine.epoch(), engine.last_event_id()), (Some(e1()), Some(1500)));
    let cut = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(cut.lines().count(), lines.len(), "{cut}");
    assert!(!cut.contains("epoch_change"));
}

#[tokio::test]
async fn a_checkpoint_past_the_wires_head_is_cursor_ahead() {
    let dir = temp("ahead");
    leave(&dir);
    let ahead = ClientError::CursorAhead {
        cursor: Cursor::new(e1(), 1500),
        head: Some(40),
    };
    // The embedded wire's day ends before the checkpoint: no "Done".
    let mut short = options(&dir, false);
    short.until_id = Some(40);
    let (addr, script) = serve(vec![]).await;
    let (ended, _) = run_on(addr, &short).await;
    assert_eq!(ended, Ended::WireStopped(ahead.clone()));
    assert!(
        script.asked.lock().unwrap().is_empty(),
        "decided before connecting"
    );
    // A live wire says so with a 409.
    let p = wire::Problem {
        head: Some(40),
        epoch: Some(e1()),
        ..wire::Problem::new("cursor_ahead", "past the head")
    };
    let (addr, _) = serve(vec![problem(409, p)]).await;
    let options = options(&dir, false);
    let (ended, _) = run_on(addr, &options).await;
    assert_eq!(ended, Ended::WireStopped(ahead));
    assert_eq!(desk::session::exit_code(&ended), 4);
    let advice = desk::session::advice(&ended, &options).unwrap();
    assert!(advice.contains("the checkpoint is ahead of the wire"), "{advice}");
    assert!(
        advice.contains(&format!("after event {}-1500, past the wire's head 40", e1())),
        "{advice}"
    );
    assert!(advice.contains("checkpoint.json"), "{advice}");
}

/// The binary: exit code 3 and the advice on stderr.
#[tokio::test]
async fn the_binary_exits_3_naming_the_checkpoint_and_the_flag() {
    let dir = temp("binary");
    leave(&dir);
    let (addr, _) = serve(vec![sse(e2(), &[reset()], 1..=3)]).await;
    let (audit, state) = (dir.join("audit.jsonl"), dir.join("state"));
    // The wire runs on this runtime: the binary is waited for off it.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_decision"))
            .args(["--metrics-addr", "127.0.0.1:0", "--transport", "sse"])
            .args(["--wire-url", &format!("http://{addr}")])
            .arg("--audit-log")
            .arg(audit)
            .arg("--state-dir")
            .arg(state)
            .env_remove("RUST_LOG")
            .env_remove("TICKWIRE_CONFIG")
            .env_remove("TICKWIRE_ACCEPT_NEW_EPOCH")
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the wire's log was recreated"), "{stderr}");
    assert!(stderr.contains("--accept-new-epoch"), "{stderr}");
    assert!(
        stderr.contains(&dir.join("state/checkpoint.json").display().to_string()),
        "{stderr}"
    );
}
