//! Failover over real TCP on 127.0.0.1: two stub servers share one log
//! (the same epoch, the same ids), the client is given both URLs; the first
//! node dies mid-stream and the client resumes on the second with the same
//! cursor, on SSE, on WebSocket and on polling, each id delivered once, in
//! order. A node of another epoch stops the client, as one URL would.

mod common;
use common::{collect, config};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stub::{Config, Log, Source, Stub};
use tokio::task::JoinHandle;
use transport::{Client, ClientError, Lifecycle, TokioConnect, Transport};
use wire::Payload;

fn fixture() -> Vec<Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()
}

struct Node {
    stub: Stub,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Node {
    async fn start(log: Log) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stub = Stub::new(Config::default(), log, Arc::new(|| 1));
        let task = tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
        Node { stub, addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shut down: every stream ends, the listener closes.
    async fn stop(self) {
        self.stub.shutdown_token().cancel();
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn fails_over_and_resumes(kind: Transport) {
    let f = fixture();
    let log = Log::new(Config::default().retention, wire::Epoch::from_random(0xa1));
    let a = Node::start(log.clone()).await;
    let b = Node::start(log).await;
    let mut client = Client::connect(TokioConnect, config(vec![a.url(), b.url()], kind)).unwrap();
    let mut sub = client.subscribe().unwrap();

    a.stub.publish(Source::Ingest, &f[..300]).await.unwrap();
    let mut got = collect(&mut sub, 300).await;
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.wire_url_index, m.wire_url.as_str()),
        (0, a.url().as_str()),
        "{kind:?}"
    );
    assert_eq!(m.failovers, 0, "{kind:?}");

    a.stop().await;
    b.stub.publish(Source::Ingest, &f[300..600]).await.unwrap();
    got.extend(collect(&mut sub, 300).await);

    let ids: Vec<u64> = got.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=600).collect::<Vec<u64>>(),
        "{kind:?}: each id once, in order"
    );
    for (e, p) in got.iter().zip(&f) {
        assert_eq!(&e.payload, p, "{kind:?}: event {} unchanged", e.id);
    }
    let m = client.metrics().snapshot();
    assert!(m.failovers >= 1, "{kind:?}: {m:?}");
    assert_eq!(
        (m.wire_url_index, m.wire_url.as_str()),
        (1, b.url().as_str()),
        "{kind:?}"
    );
    let timeline = client.timeline();
    assert!(
        timeline
            .iter()
            .any(|e| e.event == Lifecycle::Failover { from: 0, to: 1 }),
        "{kind:?}: {timeline:#?}"
    );
    // After the failover, the client connected to B with A's cursor.
    let last = timeline
        .iter()
        .rposition(|e| matches!(e.event, Lifecycle::Failover { .. }))
        .unwrap();
    assert!(
        timeline[last..]
            .iter()
            .any(|e| matches!(e.event, Lifecycle::Connecting { after: 300, .. })),
        "{kind:?}: resumed after id 300: {timeline:#?}"
    );
    assert_eq!(client.epoch(), Some(wire::Epoch::from_random(0xa1)));
    client.close().await;
    b.stop().await;
}

#[tokio::test]
async fn sse_fails_over_to_the_second_url_and_resumes_exactly_once() {
    fails_over_and_resumes(Transport::Sse).await;
}

#[tokio::test]
async fn websocket_fails_over_to_the_second_url_and_resumes_exactly_once() {
    fails_over_and_resumes(Transport::Ws).await;
}

#[tokio::test]
async fn polling_fails_over_to_the_second_url_and_resumes_exactly_once() {
    fails_over_and_resumes(Transport::Poll).await;
}

#[tokio::test]
async fn a_node_of_another_epoch_stops_the_client() {
    let f = fixture();
    let epoch = wire::Epoch::from_random(0xb1);
    let a = Node::start(Log::new(Config::default().retention, epoch)).await;
    let other = wire::Epoch::from_random(0xb2);
    let b = Node::start(Log::new(Config::default().retention, other)).await;
    b.stub.publish(Source::Ingest, &f[..50]).await.unwrap();
    let mut client = Client::connect(TokioConnect, config(vec![a.url(), b.url()], Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    a.stub.publish(Source::Ingest, &f[..20]).await.unwrap();
    let got = collect(&mut sub, 20).await;
    assert_eq!(got.last().map(|e| e.id), Some(20));
    a.stop().await;
    match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
        Ok(Some(Err(ClientError::EpochChanged { from, epoch: to, .. }))) => {
            assert_eq!((from, to), (epoch, other));
        }
        other => panic!("expected EpochChanged, got {other:?}"),
    }
    assert!(client.metrics().snapshot().failovers >= 1);
    client.close().await;
    b.stop().await;
}

#[tokio::test]
async fn a_bad_url_among_several_is_named() {
    let c = config(
        vec!["http://127.0.0.1:1".into(), "ftp://nowhere".into()],
        Transport::Sse,
    );
    match Client::connect(TokioConnect, c) {
        Err(ClientError::BadUrl(e)) => assert!(e.contains("ftp://nowhere"), "{e}"),
        other => panic!("expected BadUrl, got {other:?}"),
    }
    let c = config(Vec::new(), Transport::Sse);
    assert!(matches!(
        Client::connect(TokioConnect, c),
        Err(ClientError::BadUrl(_))
    ));
}

#[tokio::test]
async fn head_asks_the_next_url_when_one_does_not_answer() {
    let f = fixture();
    let log = Log::new(Config::default().retention, wire::Epoch::from_random(0xc1));
    let b = Node::start(log).await;
    b.stub.publish(Source::Ingest, &f[..7]).await.unwrap();
    // A port nothing listens on: bound, then released.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = config(vec![format!("http://{dead}"), b.url()], Transport::Sse);
    let head = Client::head(TokioConnect, &c).await.unwrap();
    assert_eq!(head.id, 7);
    b.stop().await;
}
