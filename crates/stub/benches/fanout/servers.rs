//! The two servers under load, each in its own process pinned to core 0:
//! the stub, and the baseline a Rust user would write instead (axum's `Sse`
//! and axum's WebSocket over a `tokio::sync::broadcast` channel).
//!
//! Both run on a one-worker tokio runtime, take `POST /events` (a JSON
//! array of payloads) and stamp ids 1, 2, 3, ... in arrival order, so the
//! load generator times every event the same way on both.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use stub::{Config, Log, Stub};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Which server a child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Tickwire,
    Baseline,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Tickwire => "tickwire",
            Server::Baseline => "axum+broadcast",
        }
    }

    pub fn parse(s: &str) -> Option<Server> {
        match s {
            "tickwire" => Some(Server::Tickwire),
            "axum" | "baseline" => Some(Server::Baseline),
            _ => None,
        }
    }
}

/// The child's main: binds 127.0.0.1:0, prints `listening <addr>` and
/// serves until killed.
pub fn run(server: Server) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        println!("listening {addr}");
        match server {
            Server::Tickwire => {
                // `FANOUT_WRITE_DELAY_MS`: the stub's `write_delay_ms`.
                let config = Config {
                    write_delay_ms: std::env::var("FANOUT_WRITE_DELAY_MS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    ..Config::default()
                };
                let log = Log::new(config.retention, wire::Epoch::from_random(0xfa17));
                let stub = Stub::new(config, log, Arc::new(cli::system_clock_us));
                stub::serve(stub::nodelay(listener), stub, std::future::pending()).await;
            }
            Server::Baseline => baseline(listener).await,
        }
    });
}

struct Hub {
    next_id: AtomicU64,
    tx: broadcast::Sender<Arc<(String, String)>>,
}

/// Capacity of the baseline's channel: a receiver further behind than this
/// skips ahead (`Lagged`), so the baseline loses events where the stub
/// would drop the slow client with `overflow`.
const CHANNEL: usize = 4096;

async fn baseline(listener: TcpListener) {
    let (tx, _) = broadcast::channel(CHANNEL);
    let hub = Arc::new(Hub {
        next_id: AtomicU64::new(1),
        tx,
    });
    let app = axum::Router::new()
        .route("/events", axum::routing::post(publish))
        .route("/stream", axum::routing::get(sse))
        .route("/ws", axum::routing::get(ws))
        .with_state(hub);
    axum::serve(listener, app).await.expect("serve");
}

async fn publish(State(hub): State<Arc<Hub>>, body: String) -> Response {
    let parsed: Result<Vec<wire::Payload>, String> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
        .map_err(|e| e.to_string())
        .and_then(|items| {
            items
                .iter()
                .map(|v| wire::Payload::from_json(&v.to_string()).map_err(|e| e.to_string()))
                .collect()
        });
    let Ok(payloads) = parsed else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad payloads").into_response();
    };
    for payload in payloads {
        let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
        let json = wire::Event {
            id,
            pub_us: Some(cli::system_clock_us()),
            prev: None,
            payload: payload.clone(),
        }
        .to_json();
        let _ = hub.tx.send(Arc::new((id.to_string(), json)));
    }
    "ok".into_response()
}

async fn sse(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let rx = hub.tx.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let event = SseEvent::default()
                        .event("tick")
                        .id(e.0.as_str())
                        .data(e.1.as_str());
                    return Some((Ok::<_, Infallible>(event), rx));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
}

async fn ws(State(hub): State<Arc<Hub>>, upgrade: WebSocketUpgrade) -> Response {
    let rx = hub.tx.subscribe();
    upgrade.on_upgrade(move |socket| ws_session(socket, rx))
}

async fn ws_session(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<(String, String)>>) {
    loop {
        match rx.recv().await {
            Ok(e) => {
                if socket.send(Message::Text(e.1.clone().into())).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
