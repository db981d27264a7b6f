//! Stream identity against hand-written wires (axum routers that answer a
//! script, one answer per request, and record what each request asked):
//! the epoch learnt from the `tickwire-epoch` header, a page's `epoch` or
//! SSE id lines is sent back as `<epoch>-<id>` on SSE, WebSocket and
//! polling; a `reset`, a 409 `epoch_changed`, or a header that names
//! another epoch after a reconnect stops the client with `EpochChanged`,
//! delivering nothing after it; a 409 `cursor_ahead` stops it with
//! `CursorAhead` on each transport, with no retry.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use transport::{Client, ClientConfig, ClientError, Lifecycle, PolicyConfig, TokioConnect, Transport};
use wire::{Control, Cursor, Epoch, Event, Message};

fn e1() -> Epoch {
    Epoch::from_random(0xe1)
}

fn e2() -> Epoch {
    Epoch::from_random(0xe2)
}

fn event(id: u64) -> Event {
    let day = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    Event {
        id,
        pub_us: Some(1),
        prev: None,
        payload: day[id as usize - 1].clone(),
    }
}

/// One answer of the script.
#[derive(Clone)]
enum Answer {
    /// An SSE stream with this header epoch: events (id lines in the
    /// given epoch, or bare) and controls.
    Sse(Option<Epoch>, Vec<(Option<Epoch>, Message)>),
    /// A WebSocket upgrade with this header epoch, then these messages.
    Ws(Option<Epoch>, Vec<Message>),
    /// A polling page (its own `epoch` field) with this header epoch.
    Page(Option<Epoch>, wire::poll::Page),
    /// An error answer.
    Problem(u16, wire::Problem),
}

/// What a request asked: its path and query, and its `Last-Event-ID`.
#[derive(Debug, Clone)]
struct Asked {
    uri: String,
    last_event_id: Option<String>,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl Script {
    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

fn with_epoch(mut response: Response, epoch: Option<Epoch>) -> Response {
    if let Some(e) = epoch {
        response
            .headers_mut()
            .insert(wire::EPOCH_HEADER, e.to_string().parse().unwrap());
    }
    response
}

async fn answer(
    State(script): State<Script>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    script.asked.lock().unwrap().push(Asked {
        uri: uri.to_string(),
        last_event_id: headers
            .get("last-event-id")
            .map(|v| v.to_str().unwrap().to_owned()),
    });
    let next = script.answers.lock().unwrap().pop_front();
    match next {
        None => (StatusCode::SERVICE_UNAVAILABLE, "the script is over").into_response(),
        Some(Answer::Problem(status, p)) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            p.to_body(),
        )
            .into_response(),
        Some(Answer::Sse(epoch, messages)) => {
            let mut body = Vec::new();
            for (id_epoch, m) in messages {
                match m {
                    Message::Event(e) => wire::sse::encode_parts(
                        &mut body,
                        e.payload.kind(),
                        Cursor {
                            epoch: id_epoch,
                            id: e.id,
                        },
                        &e.to_json(),
                    ),
                    Message::Control(c) => wire::sse::encode_control(&mut body, &c),
                }
            }
            with_epoch(
                ([("content-type", "text/event-stream")], body).into_response(),
                epoch,
            )
        }
        Some(Answer::Page(epoch, page)) => with_epoch(
            ([("content-type", "application/json")], page.to_json()).into_response(),
            epoch,
        ),
        Some(Answer::Ws(epoch, messages)) => {
            let Ok(upgrade) = ws else {
                panic!("a WebSocket answer to a request that is no upgrade")
            };
            let response = upgrade.on_upgrade(move |mut socket| async move {
                for m in messages {
                    let text = wire::ws::encode(&m);
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                let _ = socket.send(WsMessage::Close(None)).await;
            });
            with_epoch(response, epoch)
        }
    }
}

async fn serve(answers: Vec<Answer>) -> (SocketAddr, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.into())),
        ..Script::default()
    };
    let app = Router::new()
        .route("/stream", get(answer))
        .route("/ws", get(answer))
        .route("/events", get(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, script)
}

fn config(addr: SocketAddr, kind: Transport) -> ClientConfig {
    let mut c = ClientConfig::new(&format!("http://{addr}"), Arc::new(|| 2));
    c.policy = PolicyConfig {
        transport: kind,
        fallback: false,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        jitter: 0.0,
        ..PolicyConfig::default()
    };
    c.poll_wait = Duration::ZERO;
    c.poll_interval = Duration::from_millis(10);
    c
}

/// The ids delivered until the client stops, and why it stopped.
async fn until_stopped(client: &mut Client) -> (Vec<u64>, ClientError) {
    let mut sub = client.subscribe().unwrap();
    let mut ids = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Ok(e))) => ids.push(e.id),
            Ok(Some(Err(e))) => return (ids, e),
            Ok(None) => panic!("the subscription ended without an error after {ids:?}"),
            Err(_) => panic!("no stop within 10 s after {ids:?}: {:?}", client.timeline()),
        }
    }
}

/// `n` ids, failing on an error or a stall.
async fn ids(sub: &mut transport::Subscription, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Ok(e))) => out.push(e.id),
            other => panic!("after {out:?}: {other:?}"),
        }
    }
    out
}

fn ev(epoch: Option<Epoch>, id: u64) -> (Option<Epoch>, Message) {
    (epoch, Message::Event(event(id)))
}

fn page(epoch: Option<Epoch>, ids: &[u64], head: u64) -> wire::poll::Page {
    wire::poll::Page {
        events: ids.iter().map(|&id| event(id)).collect(),
        next_cursor: ids.last().copied().unwrap_or(0),
        head,
        epoch,
    }
}

fn problem(code: &str, epoch: Epoch, oldest: Option<u64>, head: u64) -> wire::Problem {
    wire::Problem {
        oldest,
        head: Some(head),
        epoch: Some(epoch),
        ..wire::Problem::new(code, "scripted")
    }
}

#[tokio::test]
async fn sse_learns_the_epoch_from_the_header_and_resumes_with_it() {
    let (addr, script) = serve(vec![
        Answer::Sse(Some(e1()), vec![ev(Some(e1()), 1), ev(Some(e1()), 2)]),
        Answer::Sse(Some(e1()), vec![ev(Some(e1()), 3)]),
    ])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    assert_eq!(ids(&mut sub, 3).await, [1, 2, 3]);
    assert_eq!(client.epoch(), Some(e1()));
    let asked = script.asked();
    assert_eq!(asked[0].uri, "/stream?cursor=0");
    assert_eq!(asked[0].last_event_id, None);
    assert_eq!(asked[1].uri, format!("/stream?cursor={}-2", e1()));
    assert_eq!(asked[1].last_event_id, Some(format!("{}-2", e1())));
    let learnt: Vec<_> = client
        .timeline()
        .into_iter()
        .filter(|t| matches!(t.event, Lifecycle::Epoch { .. }))
        .collect();
    assert_eq!(learnt.len(), 1, "learnt once: {learnt:?}");
    assert_eq!(learnt[0].event, Lifecycle::Epoch { epoch: e1() });
    client.close().await;
}

#[tokio::test]
async fn sse_learns_the_epoch_from_id_lines_without_a_header() {
    let (addr, script) = serve(vec![
        Answer::Sse(None, vec![ev(Some(e1()), 1), ev(Some(e1()), 2)]),
        Answer::Sse(None, vec![ev(Some(e1()), 3)]),
    ])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    assert_eq!(ids(&mut sub, 3).await, [1, 2, 3]);
    assert_eq!(script.asked()[1].last_event_id, Some(format!("{}-2", e1())));
    client.close().await;
}

#[tokio::test]
async fn a_wire_that_names_no_epoch_gets_bare_cursors() {
    let (addr, script) = serve(vec![
        Answer::Sse(None, vec![ev(None, 1), ev(None, 2)]),
        Answer::Sse(None, vec![ev(None, 3)]),
    ])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Sse)).unwrap();
    let mut sub = client.subscribe().unwrap();
    assert_eq!(ids(&mut sub, 3).await, [1, 2, 3]);
    assert_eq!(client.epoch(), None);
    let asked = script.asked();
    assert_eq!(asked[1].uri, "/stream?cursor=2");
    assert_eq!(asked[1].last_event_id.as_deref(), Some("2"));
    client.close().await;
}

#[tokio::test]
async fn websocket_learns_the_epoch_from_the_upgrade_and_resumes_with_it() {
    let (addr, script) = serve(vec![
        Answer::Ws(
            Some(e1()),
            vec![Message::Event(event(1)), Message::Event(event(2))],
        ),
        Answer::Ws(Some(e1()), vec![Message::Event(event(3))]),
    ])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Ws)).unwrap();
    let mut sub = client.subscribe().unwrap();
    assert_eq!(ids(&mut sub, 3).await, [1, 2, 3]);
    assert_eq!(client.epoch(), Some(e1()));
    let asked = script.asked();
    assert_eq!(asked[0].uri, "/ws?cursor=0");
    assert_eq!(asked[1].uri, format!("/ws?cursor={}-2", e1()));
    client.close().await;
}

#[tokio::test]
async fn polling_learns_the_epoch_from_the_header_or_the_page_and_resumes_with_it() {
    for (header, field) in [(Some(e1()), None), (None, Some(e1()))] {
        let (addr, script) = serve(vec![
            Answer::Page(header, page(field, &[1, 2], 2)),
            Answer::Page(header, page(field, &[3], 3)),
        ])
        .await;
        let mut client = Client::connect(TokioConnect, config(addr, Transport::Poll)).unwrap();
        let mut sub = client.subscribe().unwrap();
        assert_eq!(ids(&mut sub, 3).await, [1, 2, 3]);
        assert_eq!(client.epoch(), Some(e1()));
        let asked = script.asked();
        assert!(asked[0].uri.starts_with("/events?cursor=0&"), "{asked:?}");
        assert!(
            asked[1].uri.starts_with(&format!("/events?cursor={}-2&", e1())),
            "{header:?} {field:?}: {asked:?}"
        );
        client.close().await;
    }
}

fn reset(head: u64) -> Message {
    Message::Control(Control::Reset {
        from: e1(),
        epoch: e2(),
        oldest: 1,
        head,
    })
}

#[tokio::test]
async fn a_reset_control_is_epoch_changed_with_the_new_logs_ids() {
    for kind in [Transport::Sse, Transport::Ws] {
        // One connection: two events of e1, the reset, then e2's events (a
        // server that goes on after the reset, as the protocol allows).
        let answers = match kind {
            Transport::Sse => vec![Answer::Sse(
                None,
                vec![
                    ev(Some(e1()), 1),
                    ev(Some(e1()), 2),
                    (None, reset(9)),
                    ev(Some(e2()), 3),
                ],
            )],
            _ => vec![Answer::Ws(
                None,
                vec![
                    Message::Event(event(1)),
                    Message::Event(event(2)),
                    reset(9),
                    Message::Event(event(3)),
                ],
            )],
        };
        let (addr, _) = serve(answers).await;
        let mut c = config(addr, kind);
        c.start_after = Cursor::new(e1(), 0);
        let mut client = Client::connect(TokioConnect, c).unwrap();
        let (ids, err) = until_stopped(&mut client).await;
        assert_eq!(ids, [1, 2], "{kind:?}: nothing after the reset");
        assert_eq!(
            err,
            ClientError::EpochChanged {
                from: e1(),
                epoch: e2(),
                oldest: Some(1),
                head: Some(9)
            },
            "{kind:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("from {} to {}", e1(), e2())), "{text}");
        assert!(
            text.contains("ids 1 to 9") && text.contains("--from head"),
            "{text}"
        );
        assert_eq!(client.metrics().snapshot().reconnect_attempts, 0, "{kind:?}");
        client.close().await;
    }
}

/// The wire's way: the new epoch in the header, and the reset first. The
/// failure carries the reset's word on the new log's ids.
#[tokio::test]
async fn a_reset_behind_a_new_epoch_header_gives_the_new_logs_ids() {
    for kind in [Transport::Sse, Transport::Ws] {
        let answers = match kind {
            Transport::Sse => vec![Answer::Sse(Some(e2()), vec![(None, reset(9)), ev(Some(e2()), 1)])],
            _ => vec![Answer::Ws(Some(e2()), vec![reset(9), Message::Event(event(1))])],
        };
        let (addr, _) = serve(answers).await;
        let mut c = config(addr, kind);
        c.start_after = Cursor::new(e1(), 5);
        let mut client = Client::connect(TokioConnect, c).unwrap();
        let (ids, err) = until_stopped(&mut client).await;
        assert!(ids.is_empty(), "{kind:?}: {ids:?}");
        assert_eq!(
            err,
            ClientError::EpochChanged {
                from: e1(),
                epoch: e2(),
                oldest: Some(1),
                head: Some(9)
            },
            "{kind:?}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn polling_409_epoch_changed_is_epoch_changed() {
    let (addr, script) = serve(vec![
        Answer::Page(Some(e1()), page(None, &[1, 2], 2)),
        Answer::Problem(409, problem("epoch_changed", e2(), Some(1), 7)),
    ])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Poll)).unwrap();
    let (ids, err) = until_stopped(&mut client).await;
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        err,
        ClientError::EpochChanged {
            from: e1(),
            epoch: e2(),
            oldest: Some(1),
            head: Some(7)
        }
    );
    assert_eq!(script.asked().len(), 2, "not retried");
}

#[tokio::test]
async fn a_409_cursor_ahead_is_cursor_ahead_on_every_transport() {
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let (addr, script) = serve(vec![Answer::Problem(
            409,
            problem("cursor_ahead", e1(), None, 10),
        )])
        .await;
        let mut c = config(addr, kind);
        c.start_after = Cursor::new(e1(), 50);
        let mut client = Client::connect(TokioConnect, c).unwrap();
        let (ids, err) = until_stopped(&mut client).await;
        assert!(ids.is_empty());
        assert_eq!(
            err,
            ClientError::CursorAhead {
                cursor: Cursor::new(e1(), 50),
                head: Some(10)
            },
            "{kind:?}"
        );
        assert!(err.to_string().contains("past the wire's head 10"), "{err}");
        assert_eq!(script.asked().len(), 1, "{kind:?}: not retried");
        client.close().await;
    }
}

#[tokio::test]
async fn a_header_naming_another_epoch_after_a_reconnect_is_epoch_changed() {
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        // No reset: an old or misbehaving server restarted under the client.
        let answers = match kind {
            Transport::Sse => vec![
                Answer::Sse(Some(e1()), vec![ev(Some(e1()), 1), ev(Some(e1()), 2)]),
                Answer::Sse(Some(e2()), vec![ev(None, 3), ev(None, 4)]),
            ],
            Transport::Ws => vec![
                Answer::Ws(
                    Some(e1()),
                    vec![Message::Event(event(1)), Message::Event(event(2))],
                ),
                Answer::Ws(Some(e2()), vec![Message::Event(event(3))]),
            ],
            Transport::Poll => vec![
                Answer::Page(Some(e1()), page(None, &[1, 2], 2)),
                Answer::Page(Some(e2()), page(None, &[3, 4], 4)),
            ],
        };
        let (addr, _) = serve(answers).await;
        let mut client = Client::connect(TokioConnect, config(addr, kind)).unwrap();
        let (ids, err) = until_stopped(&mut client).await;
        assert_eq!(ids, [1, 2], "{kind:?}: nothing from the other epoch");
        assert_eq!(
            err,
            ClientError::EpochChanged {
                from: e1(),
                epoch: e2(),
                oldest: None,
                head: None
            },
            "{kind:?}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn an_sse_id_line_naming_another_epoch_is_epoch_changed() {
    let (addr, _) = serve(vec![Answer::Sse(
        Some(e1()),
        vec![ev(Some(e1()), 1), ev(Some(e2()), 2), ev(Some(e2()), 3)],
    )])
    .await;
    let mut client = Client::connect(TokioConnect, config(addr, Transport::Sse)).unwrap();
    let (ids, err) = until_stopped(&mut client).await;
    assert_eq!(ids, [1]);
    assert!(
        matches!(err, ClientError::EpochChanged { epoch, .. } if epoch == e2()),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_start_cursor_with_an_epoch_is_sent_as_given() {
    let (addr, script) = serve(vec![Answer::Sse(Some(e1()), vec![ev(Some(e1()), 5)])]).await;
    let mut c = config(addr, Transport::Sse);
    c.start_after = Cursor::new(e1(), 4);
    let mut client = Client::connect(TokioConnect, c).unwrap();
    let mut sub = client.subscribe().unwrap();
    assert_eq!(ids(&mut sub, 1).await, [5]);
    let asked = script.asked();
    assert_eq!(asked[0].uri, format!("/stream?cursor={}-4", e1()));
    assert_eq!(asked[0].last_event_id, Some(format!("{}-4", e1())));
    // Held from the start: no timeline entry learns it.
    assert!(
        !client
            .timeline()
            .iter()
            .any(|t| matches!(t.event, Lifecycle::Epoch { .. }))
    );
    client.close().await;
}

/// `wire-tail`: `--from <epoch>-<id>` is sent as given; a changed epoch
/// exits 3 and a cursor past the head exits 4, each with one stderr line.
#[tokio::test]
async fn wire_tail_takes_the_epoch_form_and_exits_3_or_4() {
    let run = |addr: SocketAddr, from: String| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wire-tail"))
            .args([
                "--url",
                &format!("http://{addr}"),
                "--transport",
                "sse",
                "--from",
                &from,
            ])
            .env_remove("TICKWIRE_TOKEN")
            .env_remove("WIRE_TOKEN")
            .env("RUST_LOG", "off")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), out)
            .await
            .unwrap()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (addr, script) = serve(vec![Answer::Sse(
        Some(e1()),
        vec![ev(Some(e1()), 5), (None, reset(9)), ev(Some(e2()), 1)],
    )])
    .await;
    let (code, stdout, stderr) = run(addr, format!("{}-4", e1())).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "event 5 only: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("wire-tail: the wire's log changed epoch"),
        "{stderr}"
    );
    assert_eq!(script.asked()[0].uri, format!("/stream?cursor={}-4", e1()));

    let (addr, _) = serve(vec![Answer::Problem(
        409,
        problem("cursor_ahead", e1(), None, 10),
    )])
    .await;
    let (code, stdout, stderr) = run(addr, "50".into()).await;
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cursor 50 is past the wire's head 10"),
        "{stderr}"
    );
}
