//! `POST /events` under an `Idempotency-Key`: a retry with the same key and
//! body answers the first attempt's ids and appends nothing; the same key
//! for other events is 422; a bad key is 400; a storage failure is 503 with
//! `Retry-After`, and the retry then publishes once. Without a key every
//! POST appends.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use serde_json::json;
use stub::{Config, Disk, KeyWindow, Log, Source, Stub};

mod common;
use common::*;

const REPLAYED: &str = "idempotent-replayed";

fn keyed(key: &str, body: &str) -> Request<Body> {
    keyed_raw(HeaderValue::from_str(key).unwrap(), body)
}

fn keyed_raw(key: HeaderValue, body: &str) -> Request<Body> {
    let mut req = post(body, Some("application/json"));
    req.headers_mut().insert("idempotency-key", key);
    req
}

fn one_tick() -> String {
    format!("[{TICK}]")
}

fn two_ticks() -> String {
    format!("[{TICK},{TICK}]")
}

#[tokio::test]
async fn the_same_key_twice_gets_the_same_ids_and_a_stream_sees_each_event_once() {
    let s = stub(2);
    let mut stream = call(&s, get("/stream?cursor=2")).await.into_body();
    frame(&mut stream).await; // retry
    frame(&mut stream).await; // caught_up

    let epoch = s.log().epoch().to_string();
    let first = call(&s, keyed("batch-7", &two_ticks())).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get(REPLAYED).is_none());
    assert_eq!(
        json(first).await,
        json!({"first_id": 3, "last_id": 4, "head": 4, "epoch": epoch, "replayed": false})
    );
    let again = call(&s, keyed("batch-7", &two_ticks())).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()[REPLAYED], "true");
    assert_eq!(
        json(again).await,
        json!({"first_id": 3, "last_id": 4, "head": 4, "epoch": epoch, "replayed": true})
    );
    assert_eq!(s.log().head(), 4);

    // A marker after the retry: everything before it arrives exactly once.
    s.publish(Source::Ingest, &payloads(1)).await.unwrap();
    let mut ids = Vec::new();
    while ids.last() != Some(&5) {
        let text = frame(&mut stream).await.unwrap();
        ids.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("id: "))
                .map(|c| c.parse::<wire::Cursor>().unwrap().id),
        );
    }
    assert_eq!(ids, [3, 4, 5]);
    assert_eq!(s.metrics_json()["events_published"], 5);
}

#[tokio::test]
async fn the_same_key_for_other_events_is_422() {
    let s = stub(2);
    assert_eq!(call(&s, keyed("k", &two_ticks())).await.status(), StatusCode::OK);
    let res = call(&s, keyed("k", &one_tick())).await;
    assert!(res.headers().get(REPLAYED).is_none());
    check_error(res, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    assert_eq!(s.log().head(), 4);
    let text = body_text(call(&s, get("/metrics")).await).await;
    assert!(
        text.lines()
            .any(|l| l == "stub_requests_rejected_total{reason=\"idempotency_key_reused\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_keys_are_400_and_publish_nothing() {
    let s = stub(2);
    let long = "k".repeat(256);
    for key in [
        HeaderValue::from_static(""),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        HeaderValue::from_static("two words"),
    ] {
        let shown = format!("{key:?}");
        let body = check_error(
            call(&s, keyed_raw(key, &one_tick())).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key must be 1 to 255 visible ASCII"),
            "{shown}: {body}"
        );
    }
    assert_eq!(s.log().head(), 2);
    // The longest key is fine.
    let res = call(&s, keyed(&"k".repeat(255), &one_tick())).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_a_key_each_post_appends() {
    let s = stub(2);
    for first in [3, 5] {
        let res = call(&s, post(&two_ticks(), Some("application/json"))).await;
        assert!(res.headers().get(REPLAYED).is_none());
        let body = json(res).await;
        assert_eq!(
            (&body["first_id"], &body["replayed"]),
            (&json!(first), &json!(false))
        );
    }
    assert_eq!(s.log().head(), 6);
}

/// A journal in memory whose appends fail while `failing` is set.
struct FlakyDisk {
    name: PathBuf,
    bytes: Arc<Mutex<Vec<u8>>>,
    failing: Arc<AtomicBool>,
}

impl Disk for FlakyDisk {
    fn name(&self) -> &Path {
        &self.name
    }

    fn reader(&mut self) -> io::Result<Box<dyn io::BufRead + '_>> {
        Ok(Box::new(io::Cursor::new(self.bytes.lock().unwrap().clone())))
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk full"));
        }
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.bytes.lock().unwrap().truncate(len as usize);
        Ok(())
    }

    fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        *self.bytes.lock().unwrap() = contents.to_vec();
        Ok(())
    }
}

#[tokio::test]
async fn a_storage_failure_is_503_with_retry_after_and_the_retry_publishes_once() {
    let failing = Arc::new(AtomicBool::new(false));
    let disk = FlakyDisk {
        name: PathBuf::from("flaky/events.jsonl"),
        bytes: Arc::default(),
        failing: failing.clone(),
    };
    let epoch = wire::Epoch::from_random(0x5eed);
    let log = Log::open_on(Box::new(disk), 100, epoch, KeyWindow::default()).unwrap();
    let s = Stub::new(Config::default(), log, Arc::new(|| 1_772_461_800_000_000));

    failing.store(true, Ordering::SeqCst);
    let res = call(&s, keyed("retry-me", &two_ticks())).await;
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    check_error(res, StatusCode::SERVICE_UNAVAILABLE, "storage_error").await;
    assert_eq!(s.log().head(), 0);

    failing.store(false, Ordering::SeqCst);
    let res = call(&s, keyed("retry-me", &two_ticks())).await;
    assert!(res.headers().get(header::RETRY_AFTER).is_none());
    let body = json(res).await;
    assert_eq!(
        (&body["first_id"], &body["last_id"], &body["replayed"]),
        (&json!(1), &json!(2), &json!(false))
    );
    let body = json(call(&s, keyed("retry-me", &two_ticks())).await).await;
    assert_eq!((&body["first_id"], &body["replayed"]), (&json!(1), &json!(true)));
    assert_eq!(s.log().head(), 2);
}
