//! What the stub's tests share: a stub on an in-memory log, the router
//! driven without sockets, readers for its answers, and the `wire-stub`
//! binary started on a free port.
#![allow(dead_code)] // each test binary uses a part

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use stub::{Config, Log, Source, Stub};
use tower::ServiceExt;
use wire::Payload;

pub fn payloads(n: usize) -> Vec<Payload> {
    let all = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    all.into_iter().cycle().take(n).collect()
}

pub fn stub_with(config: Config, events: usize) -> Stub {
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1_772_461_800_000_000),
    );
    if events > 0 {
        at_once(stub.publish(Source::Fixture, &payloads(events))).unwrap();
    }
    stub
}

/// The output of a future that must complete on its first poll: an append
/// to an in-memory log does not yield (the simulation relies on it).
pub fn at_once<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(t) => t,
        std::task::Poll::Pending => panic!("an in-memory publish yielded"),
    }
}

pub fn stub(events: usize) -> Stub {
    stub_with(Config::default(), events)
}

pub async fn call(stub: &Stub, req: Request<Body>) -> Response<Body> {
    stub::app(stub.clone()).oneshot(req).await.unwrap()
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub async fn body_text(res: Response<Body>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub async fn json(res: Response<Body>) -> Value {
    serde_json::from_str(&body_text(res).await).unwrap()
}

/// Asserts an error answer: status, JSON content type, and the error code.
pub async fn check_error(res: Response<Body>, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body = json(res).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// The next body frame of a stream, as text.
pub async fn frame(body: &mut Body) -> Option<String> {
    let f = tokio::time::timeout(Duration::from_secs(60), body.frame())
        .await
        .expect("a frame in time")?;
    Some(String::from_utf8(f.unwrap().into_data().unwrap().to_vec()).unwrap())
}

/// The event ids of a body's SSE `id:` lines (each `<epoch>-<id>`, or a
/// bare id).
pub fn sse_ids(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|i| i.parse::<wire::Cursor>().unwrap().id)
        .collect()
}

pub fn post(body: &str, content_type: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/events");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

pub const TICK: &str = r#"{"kind":"tick","symbol":"AAPL","last":191.5,"ts_utc":"2026-03-02T14:30:00Z"}"#;

/// Starts `wire-stub` with `args` and `env` (and no token variable from the
/// test's own environment); returns the child and its `host:port`.
pub fn start_binary(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wire-stub"));
    cmd.args(["--addr", "127.0.0.1:0", "--no-fixture"])
        .args(args)
        .env_remove("TICKWIRE_TOKEN")
        .env_remove("WIRE_STUB_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (mut first, mut byte) = (String::new(), [0u8; 1]);
    while !first.ends_with('\n') {
        assert_eq!(
            std::io::Read::read(&mut stdout, &mut byte).unwrap(),
            1,
            "the address line"
        );
        first.push(byte[0] as char);
    }
    let addr = first.trim().rsplit("http://").next().unwrap().to_owned();
    (child, addr)
}
