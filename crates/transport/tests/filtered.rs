//! Filtered subscriptions over real TCP on 127.0.0.1, on each transport: the
//! client receives exactly the events its filter matches, in order, each
//! `prev` the id delivered before it; across a restart of a durable stub;
//! and through a server that drops matching events (its `prev` chain shows
//! the hole, which the client repairs from filtered polling).

mod common;
use common::collect;

use std::net::SocketAddr;
use std::sync::Arc;

use stub::{Config, Log, Source, Stub};
use tokio::task::JoinHandle;
use transport::{Client, TokioConnect, Transport};
use wire::{Event, Filter, Payload};

fn fixture() -> Vec<Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()
}

fn fresh_epoch() -> wire::Epoch {
    wire::Epoch::from_random(rand::random())
}

struct Server {
    stub: Stub,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    async fn on(config: Config, log: Log, addr: Option<SocketAddr>) -> Server {
        let listener = tokio::net::TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stub = Stub::new(config, log, Arc::new(|| 1));
        let task = tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
        Server { stub, addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn crash(self) {
        self.stub.shutdown_token().cancel();
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The ids of the fixture's events (numbered from 1) that `filter` passes.
fn expected(filter: &Filter, payloads: &[Payload]) -> Vec<u64> {
    (1..)
        .zip(payloads)
        .filter(|(_, p)| filter.matches_payload(p))
        .map(|(id, _)| id)
        .collect()
}

/// Every event carries `prev`, and it is the id delivered before it.
fn assert_chain(events: &[Event], start: u64) {
    let mut last = start;
    for e in events {
        assert_eq!(
            e.prev,
            Some(last),
            "event {} names prev {:?}, delivered before it: {last}",
            e.id,
            e.prev
        );
        last = e.id;
    }
}

fn client(url: &str, kind: Transport, filter: &Filter) -> Client {
    let mut config = common::config(vec![url.to_owned()], kind);
    config.filter = filter.clone();
    Client::connect(TokioConnect, config).unwrap()
}

const KINDS: [Transport; 3] = [Transport::Sse, Transport::Ws, Transport::Poll];

/// A stub on a free port holding the first `n` events of the day.
async fn with_events(config: Config, n: usize) -> Server {
    let server = Server::on(config, Log::new(100_000, fresh_epoch()), None).await;
    server
        .stub
        .publish(Source::Fixture, &fixture()[..n])
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn a_filtered_client_receives_exactly_the_matching_events_on_every_transport() {
    let day = fixture();
    let filter = Filter::from_query(Some("NVDA,TSLA"), Some("news")).unwrap();
    let want = expected(&filter, &day[..2000]);
    assert!(
        want.len() > 20,
        "the fixture's first 2000 events hold {} matches",
        want.len()
    );
    let all = expected(&filter, &day[..2400]);
    for kind in KINDS {
        let server = with_events(Config::default(), 2000).await;
        let mut c = client(&server.url(), kind, &filter);
        let mut sub = c.subscribe().unwrap();
        let got = collect(&mut sub, want.len()).await;
        assert_eq!(
            got.iter().map(|e| e.id).collect::<Vec<_>>(),
            want,
            "{kind:?}: the replay"
        );
        assert_chain(&got, 0);
        // Live: the next matches arrive, and nothing else does.
        server
            .stub
            .publish(Source::Ingest, &day[2000..2400])
            .await
            .unwrap();
        let live = collect(&mut sub, all.len() - want.len()).await;
        assert_eq!(
            live.iter().map(|e| e.id).collect::<Vec<_>>(),
            all[want.len()..],
            "{kind:?}: live"
        );
        assert_chain(&live, *want.last().unwrap());
        assert!(
            live.iter()
                .chain(&got)
                .all(|e| filter.matches_payload(&e.payload))
        );
        let m = c.metrics().snapshot();
        assert_eq!(
            m.messages_received,
            all.len() as u64,
            "{kind:?}: only matches cross the wire"
        );
        assert_eq!(m.gaps_repaired, 0, "{kind:?}");
        server.crash().await;
    }
}

#[tokio::test]
async fn a_durable_stub_restarted_mid_stream_resumes_the_filtered_stream_exactly() {
    let day = fixture();
    let filter = Filter::from_query(Some("AAPL"), None).unwrap();
    for kind in KINDS {
        let dir = std::env::temp_dir().join(format!("tickwire-filtered-{kind:?}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || Log::open(&dir, 100_000, fresh_epoch(), stub::KeyWindow::default()).unwrap();
        let server = Server::on(Config::default(), open(), None).await;
        let addr = server.addr;
        server.stub.publish(Source::Fixture, &day[..1500]).await.unwrap();
        let mut c = client(&server.url(), kind, &filter);
        let mut sub = c.subscribe().unwrap();
        let before = expected(&filter, &day[..1500]);
        let first = collect(&mut sub, before.len()).await;
        server.crash().await;
        // The same journal, the same port: the same epoch and ids.
        let server = Server::on(Config::default(), open(), Some(addr)).await;
        server
            .stub
            .publish(Source::Ingest, &day[1500..3000])
            .await
            .unwrap();
        let all = expected(&filter, &day[..3000]);
        let rest = collect(&mut sub, all.len() - before.len()).await;
        let got: Vec<Event> = first.into_iter().chain(rest).collect();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), all, "{kind:?}");
        assert_chain(&got, 0);
        assert!(
            c.metrics().snapshot().reconnect_attempts >= 1,
            "{kind:?}: it reconnected"
        );
        server.crash().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn a_server_that_drops_matching_events_is_caught_by_the_prev_chain_and_repaired() {
    let day = fixture();
    let filter = Filter::from_query(Some("MSFT,SPY"), None).unwrap();
    let all = expected(&filter, &day[..3000]);
    // Streams skip every id that is a multiple of 7; polling pages do not.
    let dropped = all.iter().filter(|id| *id % 7 == 0).count();
    assert!(dropped > 10);
    for kind in [Transport::Sse, Transport::Ws] {
        let config = Config {
            drop_every: 7,
            ..Config::default()
        };
        let server = with_events(config, 3000).await;
        let mut c = client(&server.url(), kind, &filter);
        let mut sub = c.subscribe().unwrap();
        let got = collect(&mut sub, all.len()).await;
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), all, "{kind:?}");
        assert_chain(&got, 0);
        let repaired = c.metrics().snapshot().gaps_repaired;
        assert!(repaired >= 1, "{kind:?}: {repaired} repairs");
        server.crash().await;
    }
}
