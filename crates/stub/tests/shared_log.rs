//! Several wire nodes on one shared log (the in-memory `MemoryService`; the
//! real JetStream is tested against nats-server in the transport crate):
//! the same ids and epoch on every node, keys honoured across nodes, reads
//! older than a node's window served from the service, a node that follows
//! behind waiting for a cursor instead of refusing it, and the service's
//! absence answered as such.

use std::sync::Arc;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;
use stub::{Config, MemoryService, NodeLog, NodeOptions, Stub};

mod common;
use common::*;

fn config(retention: usize) -> Config {
    Config {
        retention,
        ..Config::default()
    }
}

async fn node(service: &MemoryService, retention: usize) -> Stub {
    let options = NodeOptions {
        retention,
        ..NodeOptions::default()
    };
    let log = NodeLog::open(service.clone(), options).await.unwrap();
    Stub::new(config(retention), log, Arc::new(|| 1_772_461_800_000_000))
}

fn service() -> MemoryService {
    MemoryService::new(wire::Epoch::from_random(0xc1), 7)
}

fn keyed(body: &str, key: &str) -> axum::http::Request<axum::body::Body> {
    let mut req = post(body, Some("application/x-ndjson"));
    req.headers_mut().insert("idempotency-key", key.parse().unwrap());
    req
}

fn ticks(n: usize) -> String {
    vec![TICK; n].join("\n")
}

async fn page(stub: &Stub, cursor: u64) -> Value {
    let res = call(stub, get(&format!("/events?cursor={cursor}&limit=100"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    json(res).await
}

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn two_nodes_serve_the_same_ids_and_epoch_and_honour_each_others_keys() {
    let service = service();
    let (a, b) = (node(&service, 100).await, node(&service, 100).await);
    let first = json(call(&a, keyed(&ticks(3), "batch-1")).await).await;
    assert_eq!(
        (first["first_id"].as_u64(), first["last_id"].as_u64()),
        (Some(1), Some(3))
    );
    json(call(&b, post(&ticks(2), Some("application/x-ndjson"))).await).await;
    // The same key through the other node: the first attempt's ids, nothing appended.
    let retry = json(call(&b, keyed(&ticks(3), "batch-1")).await).await;
    assert_eq!(retry["replayed"], true);
    assert_eq!(
        (retry["first_id"].as_u64(), retry["last_id"].as_u64()),
        (Some(1), Some(3))
    );
    // Reused for other events: refused, on either node.
    check_error(
        call(&a, keyed(&ticks(1), "batch-1")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    b.log().reach(5).await.unwrap();
    let (pa, pb) = (page(&a, 0).await, page(&b, 0).await);
    assert_eq!(ids(&pa), vec![1, 2, 3, 4, 5]);
    assert_eq!(pa["events"], pb["events"], "the same bytes on both nodes");
    assert_eq!(a.log().epoch(), b.log().epoch());
    assert_eq!(a.log().epoch(), service.epoch());
}

#[tokio::test]
async fn a_cursor_older_than_the_window_is_read_from_the_service() {
    let service = service();
    let a = node(&service, 3).await;
    json(call(&a, post(&ticks(10), Some("application/x-ndjson"))).await).await;
    // The window holds 8..=10; the service all ten.
    assert_eq!(a.log().oldest(), 1);
    assert_eq!(ids(&page(&a, 0).await), (1..=10).collect::<Vec<_>>());
    assert_eq!(ids(&page(&a, 4).await), (5..=10).collect::<Vec<_>>());
    // SSE from the beginning: every event, in order, then caught up.
    let res = call(&a, get("/stream?cursor=0")).await;
    let mut body = res.into_body();
    let mut text = String::new();
    while !text.contains("caught_up") {
        text.push_str(&frame(&mut body).await.unwrap());
    }
    assert_eq!(sse_ids(&text), (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_node_behind_waits_for_a_cursor_the_log_holds_and_refuses_one_it_does_not() {
    let service = service();
    let a = node(&service, 100).await;
    json(call(&a, post(&ticks(4), Some("application/x-ndjson"))).await).await;
    // A cursor past everything the log holds is from another log.
    check_error(
        call(&a, get("/events?cursor=9")).await,
        StatusCode::CONFLICT,
        "cursor_ahead",
    )
    .await;
    // A second node opened now serves cursor 4 (it catches up first).
    let b = node(&service, 100).await;
    assert!(ids(&page(&b, 4).await).is_empty());
    assert_eq!(b.log().head(), 4);
}

#[tokio::test(start_paused = true)]
async fn while_the_service_is_away_the_window_is_served_and_ingest_is_refused_as_such() {
    let service = service();
    let a = node(&service, 100).await;
    json(call(&a, post(&ticks(3), Some("application/x-ndjson"))).await).await;
    service.set_up(false);
    let health = json(call(&a, get("/healthz")).await).await;
    assert_eq!(
        health["log"],
        serde_json::json!({"kind": "memory", "connected": false})
    );
    let refused = check_error(
        call(&a, post(TICK, Some("application/x-ndjson"))).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
    )
    .await;
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("retry"),
        "{refused}"
    );
    // What the window holds is still served; what it would have to ask for is not.
    assert_eq!(ids(&page(&a, 0).await), vec![1, 2, 3]);
    check_error(
        call(&a, get("/events?cursor=7")).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
    )
    .await;
    // Back: ingest goes on under the next ids, and the node follows again.
    service.set_up(true);
    let next = json(call(&a, post(TICK, Some("application/x-ndjson"))).await).await;
    assert_eq!(next["first_id"], 4);
    assert_eq!(a.log().head(), 4);
    assert_eq!(
        json(call(&a, get("/healthz")).await).await["log"]["connected"],
        true
    );
}

#[tokio::test]
async fn a_batch_larger_than_the_service_takes_at_once_is_refused_whole() {
    let service = service();
    let a = node(&service, 5_000).await;
    let res = call(&a, post(&ticks(1_001), Some("application/x-ndjson"))).await;
    check_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(service.records().len(), 0, "nothing stored");
    let _ = BodyExt::collect(
        call(&a, post(&ticks(1_000), Some("application/x-ndjson")))
            .await
            .into_body(),
    )
    .await;
    assert_eq!(service.records().len(), 1_000);
}
