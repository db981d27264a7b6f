//! The WebSocket transport (`ws://`, or `wss://` over TLS offering only
//! `http/1.1`): `GET /ws?cursor=C` (`<epoch>-<id>` once the epoch is known,
//! else the bare id) upgraded by tungstenite's handshake (a refused upgrade
//! classified like any HTTP answer, a 409 refusing the cursor included),
//! the 101 answer's `tickwire-epoch` header read for the epoch, then text
//! messages decoded into wire messages under an idle deadline. It does not
//! deliver: the driver routes what it yields through the gate.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::{WebSocketStream, tungstenite};

use wire::{Cursor, Epoch};

use crate::epoch;
use crate::error::ClientError;
use crate::http::{self, retry};
use crate::net::{Connect, Link};
use crate::policy::Failure;
use crate::stream::Frame;
use crate::tls::{Alpn, Io};

/// An open WebSocket.
#[derive(Debug)]
pub(crate) struct Stream<S> {
    ws: WebSocketStream<Io<S>>,
    idle: Duration,
    /// The epoch the handshake's answer named.
    epoch: Option<Epoch>,
}

/// Connects and upgrades, resuming after `at`.
pub(crate) async fn open<C: Connect>(
    link: &Link<C>,
    at: Cursor,
    idle: Duration,
) -> Result<Stream<C::Stream>, Failure> {
    use tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}://{}{}",
        if link.endpoint.is_tls() { "wss" } else { "ws" },
        link.endpoint.authority(),
        link.endpoint.path(&link.filtered(&format!("/ws?cursor={at}")))
    );
    let mut req = url
        .into_client_request()
        .map_err(|e| Failure::Fatal(ClientError::BadUrl(format!("bad WebSocket URL: {e}"))))?;
    for (name, value) in link.auth_headers() {
        // A token that is no header value would go out missing and come
        // back as a misleading 401: say what is wrong instead.
        let value = value.parse().map_err(|_| {
            Failure::Fatal(ClientError::BadUrl(format!(
                "the {name} header cannot carry this token (control characters or non-ASCII)"
            )))
        })?;
        req.headers_mut().insert(name, value);
    }
    let t = link.timeouts;
    // Only `http/1.1` in ALPN: the upgrade is an HTTP/1.1 affair.
    let tls = link.endpoint.is_tls().then_some(&link.tls);
    let (host, port) = (&link.endpoint.host, link.endpoint.port);
    let stream = crate::tls::open(
        &link.connector,
        tls,
        (host, port),
        Alpn::Http1,
        t.connect,
        "WebSocket connect",
    )
    .await?;
    let mut config = tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(16 << 20);
    config.max_frame_size = Some(16 << 20);
    // tungstenite zeroes the free room of its read buffer on every read
    // (128 KiB by default): most of a read's cost in the simulation's
    // profile. A larger message still grows it as needed.
    config.read_buffer_size = 16 << 10;
    let handshake = tokio_tungstenite::client_async_with_config(req, stream, Some(config));
    match tokio::time::timeout(t.headers, handshake).await {
        Err(_) => Err(retry("WebSocket handshake timed out")),
        Ok(Ok((ws, response))) => Ok(Stream {
            ws,
            idle,
            epoch: epoch::header(response.headers()),
        }),
        // tungstenite follows no redirect: a 3xx to the upgrade lands here
        // and is refused (classified as a 4xx-like answer), so the token is
        // never sent anywhere but the configured endpoint.
        Ok(Err(tungstenite::Error::Http(res))) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(epoch::conflict(res.status().as_u16(), &body, at)
                .unwrap_or_else(|| http::classify(res.status(), res.headers(), &body)))
        }
        Ok(Err(e)) => Err(retry(&format!("WebSocket handshake: {e}"))),
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Stream<S> {
    pub(crate) fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The next message; a failure ends the stream. `last` (the last id
    /// delivered) only names where a bad message was.
    pub(crate) async fn next(&mut self, last: u64) -> Result<Frame, Failure> {
        loop {
            // tungstenite yields whole messages only (a dripped frame stays
            // inside it), so the deadline is per message; pings and pongs
            // are messages and count as liveness.
            let msg = match tokio::time::timeout(self.idle, self.ws.next()).await {
                Err(_) => return Err(crate::driver::idle_failure(self.idle)),
                Ok(None) => return Err(retry("the server closed the WebSocket")),
                Ok(Some(Err(e))) => return Err(retry(&format!("WebSocket read: {e}"))),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                tungstenite::Message::Text(text) => {
                    return wire::ws::decode(&text)
                        .map(Frame::Message)
                        .map_err(|e| retry(&format!("malformed message after id {last}: {e}")));
                }
                tungstenite::Message::Close(_) => return Err(retry("the server closed the WebSocket")),
                _ => {}
            }
        }
    }
}
