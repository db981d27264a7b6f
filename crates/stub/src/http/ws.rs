//! `GET /ws`: the feed as WebSocket text messages in `wire::ws`'s form, a
//! ping with every heartbeat, and the client's side read for Close.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::SinkExt as _;
use wire::Control;

use super::{ApiError, Conn, StreamQuery, query, query_cursor, resume, streaming_on};
use crate::Stub;
use crate::conns::Transport;
use crate::feed::{Feed, Out};

pub(super) async fn ws(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    q: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    streaming_on(&stub)?;
    let upgrade = upgrade
        .map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", e.body_text()))?;
    // Refused before the upgrade, so a bad cursor is an HTTP answer.
    let start = resume(&stub, query_cursor(q.cursor.as_deref())?).await?;
    let feed = Feed::new(
        stub,
        Transport::Ws,
        ctx.peer,
        ctx.protocol,
        ctx.kill,
        start.after,
        start.reset(),
    );
    // tungstenite zeroes its read buffer's free room on every read: its
    // default 128 KiB made that most of a WebSocket read's cost; a client
    // sends little (pings, closes).
    Ok(upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| session(socket, feed)))
}

/// A WebSocket connection's read buffer.
const WS_READ_BUFFER: usize = 4 << 10;

/// Sends the feed; pongs are answered by the library.
async fn session(mut socket: WebSocket, mut feed: Feed) {
    let mut batch: Vec<WsMessage> = Vec::new();
    loop {
        batch.clear();
        let out = tokio::select! {
            biased;
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            out = feed.next(|e| batch.push(WsMessage::Text(e.ws().clone()))) => out,
        };
        let mut ping = false;
        match out {
            Out::Events => {}
            Out::Control(c) => {
                ping = matches!(c, Control::Heartbeat { .. });
                batch.push(WsMessage::Text(wire::ws::encode_control(&c).into()));
            }
            Out::End => break,
        }
        // A client that stops reading blocks a send forever: the kill (the
        // sweeper's, an operator's, shutdown's) must reach it there too, as
        // this task is axum's, not the accept loop's.
        let kill = feed.kill().clone();
        let sent = tokio::select! {
            biased;
            () = kill.cancelled() => false,
            ok = send_all(&mut socket, &mut batch, ping) => ok,
        };
        if !sent {
            return;
        }
        if kill.is_cancelled() {
            break;
        }
    }
    let close = socket.send(WsMessage::Close(None));
    let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
}

/// How long a goodbye may take before the socket is simply dropped.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a batch (and a ping after a heartbeat), flushed once: one write
/// to the socket for the lot, not one per message. False once the socket
/// is gone.
async fn send_all(socket: &mut WebSocket, batch: &mut Vec<WsMessage>, ping: bool) -> bool {
    if ping {
        batch.push(WsMessage::Ping(Bytes::new()));
    }
    for message in batch.drain(..) {
        if socket.feed(message).await.is_err() {
            return false;
        }
    }
    socket.flush().await.is_ok()
}
