//! The client against the real stub over real TCP on 127.0.0.1: normal
//! streaming on each transport, a server restart mid-stream, fallback to
//! polling and the upgrade back, gaps, duplicates, silence, and the status
//! answers. Each asserts exactly-once, in-order delivery where events flow.

mod common;
use common::collect;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use stub::{Config, Log, Pace, Source, Stub};
use tokio::task::JoinHandle;
use transport::{Client, ClientConfig, ClientError, Failure, Lifecycle, TokioConnect, Transport};
use wire::{Event, Payload};

fn fixture() -> Vec<Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()
}

struct Server {
    stub: Stub,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(config: Config, addr: Option<SocketAddr>) -> Server {
        let log = Log::new(config.retention, fresh_epoch());
        Server::start_on(config, addr, log).await
    }

    /// A server whose log is a journal in `dir`: a restart on the same
    /// directory is the same log (its epoch, its ids).
    async fn durable(dir: &std::path::Path, addr: Option<SocketAddr>) -> Server {
        let config = Config::default();
        let log = Log::open(dir, config.retention, fresh_epoch(), stub::KeyWindow::default()).unwrap();
        Server::start_on(config, addr, log).await
    }

    async fn start_on(config: Config, addr: Option<SocketAddr>, log: Log) -> Server {
        let listener = tokio::net::TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stub = Stub::new(config.clone(), log, Arc::new(|| 1));
        let task = tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
        Server { stub, addr, task }
    }

    /// A server on a free port with the first `events` of the default day.
    async fn with_events(events: usize) -> Server {
        let server = Server::start(Config::default(), None).await;
        server
            .stub
            .publish(Source::Fixture, &fixture()[..events])
            .await
            .unwrap();
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A crash: the server task and every connection it owns are gone.
    async fn crash(self) {
        self.stub.shutdown_token().cancel();
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The shared client on one URL, probing to upgrade every 300 ms.
fn config(url: &str, kind: Transport) -> ClientConfig {
    let mut c = common::config(vec![url.to_owned()], kind);
    c.policy.probe_interval = Duration::from_millis(300);
    c
}

/// A new epoch for every log a test makes, as a stub mints one per start.
fn fresh_epoch() -> wire::Epoch {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    wire::Epoch::from_random(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn assert_exactly_once_in_order(events: &[Event], fixture: &[Payload]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1, "ids 1, 2, 3, ... each once");
        assert_eq!(e.payload, fixture[i % fixture.len()], "event {} unchanged", e.id);
    }
}

async fn normal_streaming(kind: Transport) {
    let server = Server::start(Config::default(), None).await;
    let f = fixture();
    server.stub.publish(Source::Fixture, &f[..2000]).await.unwrap();
    let publisher = server.stub.clone();
    let live = f[2000..2500].to_vec();
    tokio::spawn(async move {
        for chunk in live.chunks(50) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            publisher.publish(Source::Ingest, chunk).await.unwrap();
        }
    });
    let mut client = Client::connect(TokioConnect, config(&server.url(), kind)).unwrap();
    let mut sub = client.subscribe().unwrap();
    let events = collect(&mut sub, 2500).await;
    assert_exactly_once_in_order(&events, &f);
    let m = client.metrics().snapshot();
    assert_eq!(m.wire_transport, kind.as_str());
    assert_eq!(m.messages_received, 2500);
    assert_eq!((m.duplicates_dropped, m.gaps_repaired, m.fallbacks), (0, 0, 0));
    client.close().await;
}

#[tokio::test]
async fn sse_streams_every_event_once_in_order() {
    normal_streaming(Transport::Sse).await;
}

#[tokio::test]
async fn websocket_streams_every_event_once_in_order() {
    normal_streaming(Transport::Ws).await;
}

#[tokio::test]
async fn polling_delivers_every_event_once_in_order() {
    normal_streaming(Transport::Poll).await;
}

async fn restart_mid_stream(kind: Transport) {
    let f = fixture();
    let dir = std::env::temp_dir().join(format!("tickwire-restart-{kind:?}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::durable(&dir, None).await;
    let addr = server.addr;
    tokio::spawn(stub::replay(server.stub.clone(), f.clone(), Pace::Rate(3000.0)));
    let mut client = Client::connect(TokioConnect, config(&server.url(), kind)).unwrap();
    let mut sub = client.subscribe().unwrap();
    let mut events = collect(&mut sub, 600).await;
    server.crash().await;
    // The same journal on the same port: the same epoch and ids, and the
    // replay goes on after what the journal holds.
    let server = Server::durable(&dir, Some(addr)).await;
    tokio::spawn(stub::replay(server.stub.clone(), f.clone(), Pace::Rate(3000.0)));
    events.extend(collect(&mut sub, 900).await);
    assert_exactly_once_in_order(&events, &f);
    let m = client.metrics().snapshot();
    assert!(m.reconnect_attempts >= 1, "{m:?}");
    // The restart was survived: at least one reconnect succeeded, and no
    // more than were attempted.
    assert!((1..=m.reconnect_attempts).contains(&m.reconnects), "{m:?}");
    assert!(m.last_reconnect.is_some());
    client.close().await;
    server.crash().await;
}

#[tokio::test]
async fn sse_resumes_after_a_server_restart() {
    restart_mid_stream(Transport::Sse).await;
}

#[tokio::test]
async fn websocket_resumes_after_a_server_restart() {
    restart_mid_stream(Transport::Ws).await;
}

#[tokio::test]
async fn polling_resumes_after_a_server_restart() {
    restart_mid_stream(Transport::Poll).await;
}

#[tokio::test]
async fn without_streaming_it_falls_back_to_polling_and_upgrades_when_it_returns() {
    for kind in [Transport::Sse, Transport::Ws] {
        let f = fixture();
        let server = Server::start(Config::default(), None).await;
        server.stub.set_streaming(false);
        server.stub.publish(Source::Fixture, &f[..300]).await.unwrap();
        let mut client = Client::connect(TokioConnect, config(&server.url(), kind)).unwrap();
        let mut sub = client.subscribe().unwrap();
        let mut events = collect(&mut sub, 300).await;
        let m = client.metrics().snapshot();
        assert_eq!(
            (m.wire_transport, m.fallbacks, m.upgrades),
            ("poll", 1, 0),
            "{kind:?}: {m:?}"
        );

        server.stub.set_streaming(true);
        server.stub.publish(Source::Fixture, &f[300..600]).await.unwrap();
        events.extend(collect(&mut sub, 300).await);
        // The probe runs every 300 ms; once upgraded, more events stream.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.metrics().snapshot().upgrades == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no upgrade");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.stub.publish(Source::Fixture, &f[600..700]).await.unwrap();
        events.extend(collect(&mut sub, 100).await);
        assert_exactly_once_in_order(&events, &f);
        let m = client.metrics().snapshot();
        assert_eq!(
            (m.wire_transport, m.fallbacks, m.upgrades),
            (kind.as_str(), 1, 1),
            "{m:?}"
        );
        let timeline = client.timeline();
        assert!(
            timeline
                .iter()
                .any(|t| matches!(t.event, Lifecycle::Fallback { .. })),
            "{timeline:?}"
        );
        assert!(
            timeline
                .iter()
                .any(|t| t.event == Lifecycle::Probe { transport: kind }),
            "{timeline:?}"
        );
        client.close().await;
        server.crash().await;
    }
}

#[tokio::test]
async fn a_cursor_older_than_retention_is_a_clear_error() {
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let server = Server::start(
            Config {
                retention: 10,
                ..Config::default()
            },
            None,
        )
        .await;
        server
            .stub
            .publish(Source::Fixture, &fixture()[..100])
            .await
            .unwrap();
        let mut client = Client::connect(TokioConnect, config(&server.url(), kind)).unwrap();
        let mut sub = client.subscribe().unwrap();
        let item = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap();
        let err = item.unwrap().unwrap_err();
        assert_eq!(
            err,
            ClientError::CursorExpired {
                cursor: 0,
                oldest: Some(91)
            },
            "{kind:?}"
        );
        assert!(sub.next().await.is_none());
        assert_eq!(
            client.metrics().snapshot().connection_state,
            transport::State::Stopped
        );
        client.close().await;
        server.crash().await;
    }
}

#[tokio::test]
async fn a_silent_connection_is_found_and_replaced() {
    // No heartbeats for an hour: the stream is open but says nothing.
    let server = Server::start(
        Config {
            heartbeat_ms: 3_600_000,
            retry_ms: 100,
            ..Config::default()
        },
        None,
    )
    .await;
    let mut c = config(&server.url(), Transport::Sse);
    c.idle_timeout = Duration::from_millis(300);
    let mut client = Client::connect(TokioConnect, c).unwrap();
    let mut sub = client.subscribe().unwrap();
    // The silence is noticed (300 ms idle deadline) and the connection
    // replaced; poll rather than sleep, so a busy machine cannot flake it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.metrics().snapshot().reconnect_attempts == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", client.timeline());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let timeline = client.timeline();
    assert!(
        timeline.iter().any(|t| matches!(
            &t.event,
            Lifecycle::Disconnected {
                cause: Failure::Silent { .. }
            }
        )),
        "{timeline:?}"
    );
    // And it still delivers once there is something to say.
    server
        .stub
        .publish(Source::Fixture, &fixture()[..5])
        .await
        .unwrap();
    assert_eq!(collect(&mut sub, 5).await.len(), 5);
    client.close().await;
    server.crash().await;
}

/// A hand-made wire: SSE sends 1, 2, 2 (a duplicate), 5 (a gap), then ends;
/// polling can fill 3 and 4.
async fn gappy_server() -> SocketAddr {
    let f = fixture();
    let event = move |id: u64| Event {
        id,
        pub_us: Some(1),
        prev: None,
        payload: f[id as usize - 1].clone(),
    };
    let mut sse_body = Vec::new();
    for id in [1, 2, 2, 5] {
        wire::sse::encode_event(&mut sse_body, &event(id));
    }
    let page = wire::poll::Page {
        events: vec![event(3), event(4)],
        next_cursor: 4,
        head: 5,
        epoch: None,
    };
    let page = serde_json::to_string(&page).unwrap();
    let app = Router::new()
        .route(
            "/stream",
            get(move || async move { ([("content-type", "text/event-stream")], sse_body).into_response() }),
        )
        .route(
            "/events",
            get(move || async move { ([("content-type", "application/json")], page).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn duplicates_are_dropped_and_a_gap_is_repaired_before_later_events() {
    let addr = gappy_server().await;
    let mut client =
        Client::connect(TokioConnect, config(&format!("http://{addr}"), Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    let events = collect(&mut sub, 5).await;
    assert_exactly_once_in_order(&events, &fixture());
    let m = client.metrics().snapshot();
    assert_eq!((m.duplicates_dropped, m.gaps_repaired), (1, 1), "{m:?}");
    client.close().await;
}

async fn status_server(status: u16, retry_after: Option<&'static str>) -> SocketAddr {
    let app = Router::new().route(
        "/stream",
        get(move || async move {
            let mut res = (
                axum::http::StatusCode::from_u16(status).unwrap(),
                "{\"error\":{\"code\":\"x\",\"message\":\"nope\"}}",
            )
                .into_response();
            if let Some(r) = retry_after {
                res.headers_mut().insert("retry-after", r.parse().unwrap());
            }
            res
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn no_content_and_client_errors_stop_with_a_clear_error() {
    for status in [204, 401, 403, 400] {
        let addr = status_server(status, None).await;
        let mut client =
            Client::connect(TokioConnect, config(&format!("http://{addr}"), Transport::Sse)).unwrap();
        let mut sub = client.subscribe().unwrap();
        let err = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        match (status, &err) {
            (204, ClientError::StoppedByServer) => {}
            (_, ClientError::Refused { status: s, message }) if *s == status => {
                assert!(message.contains("nope"), "{status}: {err}");
            }
            _ => panic!("{status}: {err:?}"),
        }
        assert_eq!(
            client.metrics().snapshot().reconnect_attempts,
            0,
            "{status} is not hammered"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn server_errors_and_429_retry_honouring_retry_after() {
    for status in [500, 503, 408, 429] {
        let addr = status_server(status, Some("1")).await;
        let client =
            Client::connect(TokioConnect, config(&format!("http://{addr}"), Transport::Sse)).unwrap();
        // Wait for a third attempt: the client keeps retrying, not stopping.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let attempts = loop {
            let at: Vec<Duration> = client
                .timeline()
                .iter()
                .filter(|t| matches!(t.event, Lifecycle::Connecting { .. }))
                .map(|t| t.at)
                .collect();
            if at.len() >= 3 {
                break at;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{status}: {:?}",
                client.timeline()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Retry-After: 1 is a floor: no attempt came sooner than a second
        // after the one before (the policy's own schedule would be 50 ms).
        for pair in attempts.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_secs(1),
                "{status}: attempts at {attempts:?}"
            );
        }
        assert!(client.metrics().snapshot().reconnect_attempts >= 2);
        client.close().await;
    }
}

#[tokio::test]
async fn close_leaves_no_task_and_no_socket() {
    let server = Server::with_events(10).await;
    let mut client = Client::connect(TokioConnect, config(&server.url(), Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    collect(&mut sub, 10).await;
    assert_eq!(server.stub.connections().len(), 1);
    client.close().await;
    // The server sees the stream go away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !server.stub.connections().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket outlived close()"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        sub.next().await.is_none(),
        "the subscription ends with the client"
    );
    server.crash().await;
}

/// SSE sends 1, 2, then 5; the polling endpoint that should fill 3 and 4
/// answers `events` (a status and a body).
async fn broken_repair_server(status: u16, events: &'static str) -> SocketAddr {
    let f = fixture();
    let mut sse_body = Vec::new();
    for id in [1, 2, 5] {
        let event = Event {
            id,
            pub_us: Some(1),
            prev: None,
            payload: f[id as usize - 1].clone(),
        };
        wire::sse::encode_event(&mut sse_body, &event);
    }
    let app = Router::new()
        .route(
            "/stream",
            get(move || async move { ([("content-type", "text/event-stream")], sse_body).into_response() }),
        )
        .route(
            "/events",
            get(move || async move {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    events,
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_repair_that_fails_clears_repairing_gap() {
    for (status, body) in [
        (500, "{\"error\":{\"code\":\"x\",\"message\":\"down\"}}"),
        // A page that brings nothing: the repair gives up rather than loop.
        (200, "{\"events\":[],\"next_cursor\":2,\"head\":5}"),
    ] {
        let addr = broken_repair_server(status, body).await;
        let mut c = config(&format!("http://{addr}"), Transport::Sse);
        // A long backoff: the client sits in it, after the failed repair.
        c.policy.initial_delay = Duration::from_secs(30);
        c.policy.max_delay = Duration::from_secs(30);
        let mut client = Client::connect(TokioConnect, c).unwrap();
        let mut sub = client.subscribe().unwrap();
        assert_eq!(collect(&mut sub, 2).await.len(), 2);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.metrics().snapshot().connection_state != transport::State::Backoff {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", client.timeline());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let timeline = client.timeline();
        assert!(
            timeline
                .iter()
                .any(|t| t.event == Lifecycle::Gap { missing: 3..=4 }),
            "{status}: {timeline:?}"
        );
        let m = client.metrics().snapshot();
        assert_eq!((m.repairing_gap, m.gaps_repaired), (false, 0), "{status}: {m:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn dropping_the_client_without_close_closes_its_connections() {
    let server = Server::with_events(10).await;
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let mut client = Client::connect(TokioConnect, config(&server.url(), kind)).unwrap();
        // The subscription outlives the client, as in a caller that kept it
        // and returned early: the driver must not go on for its sake.
        let mut sub = client.subscribe().unwrap();
        collect(&mut sub, 10).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while server.stub.connections().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind:?}: never connected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !server.stub.connections().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind:?}: the connection outlived the dropped client"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sub.next().await.is_none(), "{kind:?}: the subscription ends");
    }
    server.crash().await;
}

/// A reconnect asked while the driver waits on a full subscriber loses
/// nothing: the event it was handing over comes again after the reconnect,
/// once (the gate moves only when the event is in the subscriber's queue).
#[tokio::test]
async fn a_reconnect_while_the_subscriber_is_full_loses_no_event() {
    let server = Server::with_events(5).await;
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let mut c = config(&server.url(), kind);
        c.buffer = 1;
        let mut client = Client::connect(TokioConnect, c).unwrap();
        let mut sub = client.subscribe().unwrap();
        let m = client.metrics();
        // Event 1 fills the queue; the driver then holds event 2. Give it a
        // bounded moment to get there (it cannot hand 2 over: nobody reads).
        for _ in 0..100 {
            if m.snapshot().messages_received >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(m.snapshot().messages_received >= 1, "{kind:?}");
        client.reconnect();
        let ids: Vec<u64> = collect(&mut sub, 5).await.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5], "{kind:?}");
        client.close().await;
    }
}

/// A token that cannot be a header value stops the WebSocket client with
/// an error saying so, instead of going out missing (and coming back as a
/// misleading 401 from a server that wants one).
#[tokio::test]
async fn a_token_that_is_no_header_value_is_a_clear_error() {
    let server = Server::start(Config::default(), None).await;
    let mut c = config(&server.url(), Transport::Ws);
    c.token = Some("line\nbreak".into());
    let mut client = Client::connect(TokioConnect, c).unwrap();
    let mut sub = client.subscribe().unwrap();
    match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
        Ok(Some(Err(ClientError::BadUrl(why)))) => assert!(why.contains("token"), "{why}"),
        other => panic!("{other:?}"),
    }
    client.close().await;
}
