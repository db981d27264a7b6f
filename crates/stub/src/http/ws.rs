//! `GET /ws`: the feed as WebSocket text messages in `wire::ws`'s form, a
//! ping with every heartbeat, and the client's side read for Close and for
//! `subscribe` / `unsubscribe` ([`wire::ws::Request`]), each answered by a
//! `subscribed` message with the position it takes effect at. A bad one
//! closes the connection (1008) with a reason naming it: the client
//! resumes with a corrected filter and loses nothing.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, close_code};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::SinkExt as _;
use wire::Control;
use wire::ws::Request;

use super::{ApiError, Conn, StreamQuery, query, query_cursor, query_filter, resume, streaming_on};
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
    let filter = query_filter(q.symbols.as_deref(), q.kinds.as_deref())?;
    let upgrade = upgrade
        .map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", e.body_text()))?;
    // Refused before the upgrade, so a bad cursor is an HTTP answer.
    let start = resume(&stub, query_cursor(q.cursor.as_deref())?).await?;
    let feed = Feed::new(stub, Transport::Ws, ctx, start.after, start.reset(), filter);
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
    let mut close = None;
    loop {
        batch.clear();
        let out = tokio::select! {
            biased;
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(WsMessage::Text(text))) => match subscription(&mut feed, &text) {
                    Ok(ack) => Out::Control(ack),
                    Err(reason) => {
                        close = Some(CloseFrame { code: close_code::POLICY, reason: reason.into() });
                        break;
                    }
                },
                Some(Ok(_)) => continue,
            },
            out = feed.next(|e, prev| batch.push(WsMessage::Text(match prev {
                None => e.ws().clone(),
                Some(prev) => e.ws_filtered(prev),
            }))) => out,
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
    let close = socket.send(WsMessage::Close(close));
    let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
}

/// Applies a client's `subscribe` or `unsubscribe`; the acknowledgement, or
/// why it was refused (at most a close frame's 123 bytes).
fn subscription(feed: &mut Feed, text: &str) -> Result<Control, String> {
    let mut filter = feed.filter().cloned().unwrap_or_default();
    let changed = match Request::from_text(text) {
        Ok(Request::Subscribe { symbols, kinds }) => filter.add(symbols, kinds),
        Ok(Request::Unsubscribe { symbols, kinds }) => filter.remove(symbols, kinds),
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(feed.refilter(filter)),
        Err(e) => {
            let mut reason = e.to_string();
            if reason.len() > 123 {
                let mut end = 120;
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
                reason.push_str("...");
            }
            Err(reason)
        }
    }
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
