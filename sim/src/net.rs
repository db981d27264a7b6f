//! turmoil's network behind the seams the production code is generic over:
//! `axum::serve::Listener` for the stub, `transport::Connect` for clients.
//! Only this crate depends on turmoil.
//!
//! [`Observed`] is the oracles' eye: every connection a client opens goes
//! through it, and the [`Record`] keeps what really happened on the wire,
//! in simulated time: when the connect was asked for and when it completed
//! or failed, each request's path and cursor, the response's status, a
//! `retry:` hint in the bytes read, the last read, and who ended it. The
//! invariants check the client against this record, never against the
//! client's own account of itself.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use turmoil::net::{TcpListener, TcpStream};

/// A turmoil listener the stub's accept loop can serve.
pub struct Listener(pub TcpListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Listener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                // Accept errors are transient; a short pause avoids a spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Connects clients through turmoil, unobserved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connect;

impl transport::Connect for Connect {
    type Stream = TcpStream;

    async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((host, port)).await
    }
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The client dropped it (or gave up on the connect).
    Client,
    /// The stub's side ended it: a read saw the end of the stream.
    Peer,
    /// A read or write failed (a reset, a crashed host).
    Error,
    /// The connect itself failed.
    Refused,
}

/// The endpoint a connection's first request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Stream,
    Ws,
    Events,
    Other,
}

/// One request head a client wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub at: Duration,
    pub path: Path,
    /// The id part of its cursor (`cursor=`, `after=` or `Last-Event-ID`).
    pub cursor: Option<u64>,
}

/// One connection, as the network saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub client: usize,
    /// When the client asked to connect.
    pub opened: Duration,
    /// When the connect completed (none: it never did).
    pub connected: Option<Duration>,
    pub requests: Vec<Request>,
    /// The first response's status.
    pub status: Option<u16>,
    /// A `retry:` hint in what was read (ms).
    pub retry_ms: Option<u64>,
    /// The last read that brought bytes.
    pub last_read: Option<Duration>,
    /// The stub said it drops this reader as a slow consumer (an
    /// `overflow` message was read).
    pub overflow: bool,
    pub closed: Option<(Duration, Closer)>,
}

impl Conn {
    pub fn path(&self) -> Path {
        self.requests.first().map_or(Path::Other, |r| r.path)
    }

    pub fn closed_at(&self) -> Option<Duration> {
        self.closed.map(|(t, _)| t)
    }

    pub fn closer(&self) -> Option<Closer> {
        self.closed.map(|(_, c)| c)
    }
}

/// Every connection of a run, in the order they were asked for.
#[derive(Debug, Clone, Default)]
pub struct Record(Arc<Mutex<Vec<Conn>>>);

impl Record {
    pub fn conns(&self) -> Vec<Conn> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with(&self, k: usize, f: impl FnOnce(&mut Conn)) {
        if let Some(c) = self.lock().get_mut(k) {
            f(c);
        }
    }

    fn close(&self, k: usize, closer: Closer) {
        self.with(k, |c| {
            c.closed.get_or_insert((now(), closer));
        });
    }
}

/// Connects client `client` through turmoil and records every connection.
#[derive(Debug, Clone)]
pub struct Observed {
    pub client: usize,
    pub record: Record,
}

/// Marks a connect the client abandoned (dropped mid-way, as a timeout does).
struct Asked {
    record: Record,
    k: usize,
    done: bool,
}

impl Drop for Asked {
    fn drop(&mut self) {
        if !self.done {
            self.record.close(self.k, Closer::Client);
        }
    }
}

impl transport::Connect for Observed {
    type Stream = Watched;

    async fn connect(&self, host: &str, port: u16) -> io::Result<Watched> {
        let k = {
            let mut conns = self.record.lock();
            conns.push(Conn {
                client: self.client,
                opened: now(),
                connected: None,
                requests: Vec::new(),
                status: None,
                retry_ms: None,
                last_read: None,
                overflow: false,
                closed: None,
            });
            conns.len() - 1
        };
        let mut asked = Asked {
            record: self.record.clone(),
            k,
            done: false,
        };
        let result = TcpStream::connect((host, port)).await;
        asked.done = true;
        match result {
            Ok(inner) => {
                self.record.with(k, |c| c.connected = Some(now()));
                Ok(Watched {
                    inner,
                    record: self.record.clone(),
                    k,
                    written: Vec::new(),
                    read: Vec::new(),
                    tail: Vec::new(),
                    headed: false,
                    upgraded: false,
                })
            }
            Err(e) => {
                self.record.close(k, Closer::Refused);
                Err(e)
            }
        }
    }
}

/// How much of a connection's first bytes are kept to find the response
/// status and the `retry:` hint.
const READ_HEAD: usize = 4096;

/// The stub's slow-consumer message, in SSE and in WebSocket.
const OVERFLOW: [&[u8]; 2] = [b"event: overflow\n", b"{\"type\":\"overflow\""];

/// A client's stream, watched.
pub struct Watched {
    inner: TcpStream,
    record: Record,
    k: usize,
    /// Request bytes not yet parsed (until a WebSocket upgrade).
    written: Vec<u8>,
    /// The first bytes read.
    read: Vec<u8>,
    /// The status and the `retry:` hint are found.
    headed: bool,
    /// The last bytes read, so a message split between reads is seen.
    tail: Vec<u8>,
    upgraded: bool,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("conn", &self.k)
            .finish_non_exhaustive()
    }
}

impl Watched {
    fn on_read(&mut self, bytes: &[u8]) {
        let at = now();
        let before = self.read.len();
        let (mut status, mut retry) = (None, None);
        if before < READ_HEAD && !self.headed {
            // Only the first bytes: the status line, the `retry:` hint.
            self.read
                .extend_from_slice(&bytes[..bytes.len().min(READ_HEAD - before)]);
            (status, retry) = (parse_status(&self.read), parse_retry(&self.read));
            // Both found: nothing more to look for in the first bytes.
            self.headed = status.is_some() && retry.is_some();
        }
        // The end of the last read joined to the start of this one: a
        // message split between two reads is still seen.
        let mut join = std::mem::take(&mut self.tail);
        join.extend_from_slice(&bytes[..bytes.len().min(32)]);
        let overflow = OVERFLOW
            .iter()
            .any(|m| find(bytes, m).is_some() || find(&join, m).is_some());
        self.tail = if bytes.len() >= 32 {
            bytes[bytes.len() - 32..].to_vec()
        } else {
            join[join.len().saturating_sub(32)..].to_vec()
        };
        self.record.with(self.k, |c| {
            c.last_read = Some(at);
            c.overflow |= overflow;
            c.status = c.status.or(status);
            c.retry_ms = c.retry_ms.or(retry);
        });
    }

    fn on_write(&mut self, bytes: &[u8]) {
        if self.upgraded {
            return;
        }
        self.written.extend_from_slice(bytes);
        while let Some(end) = find(&self.written, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.written[..end]).into_owned();
            self.written.drain(..end + 4);
            let request = parse_request(&head);
            self.upgraded = request.path == Path::Ws;
            self.record.with(self.k, |c| c.requests.push(request));
            if self.upgraded {
                self.written.clear();
                return;
            }
        }
        if self.written.len() > 64 * 1024 {
            // A body (a POST): not a request head; stop looking.
            self.written.clear();
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.record.close(self.k, Closer::Client);
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => {
                let filled = &buf.filled()[before..];
                if filled.is_empty() {
                    this.record.close(this.k, Closer::Peer);
                } else {
                    this.on_read(filled);
                }
            }
            Poll::Ready(Err(_)) => this.record.close(this.k, Closer::Error),
            Poll::Pending => {}
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        match &result {
            Poll::Ready(Ok(n)) => this.on_write(&buf[..*n]),
            Poll::Ready(Err(_)) => this.record.close(this.k, Closer::Error),
            Poll::Pending => {}
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status(read: &[u8]) -> Option<u16> {
    let line = read.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

/// The first `retry: N` line's N.
fn parse_retry(read: &[u8]) -> Option<u64> {
    let at = find(read, b"\nretry:")?;
    let digits: String = read[at + 7..]
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().ok()
}

/// A request head's path and cursor.
fn parse_request(head: &str) -> Request {
    let mut lines = head.split("\r\n");
    let target = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = match path {
        "/stream" => Path::Stream,
        "/ws" => Path::Ws,
        "/events" => Path::Events,
        _ => Path::Other,
    };
    let id = |cursor: &str| {
        cursor
            .rsplit('-')
            .next()
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let header = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("last-event-id"))
        .and_then(|(_, v)| id(v));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| matches!(*k, "cursor" | "after"))
        .and_then(|(_, v)| id(v));
    Request {
        at: now(),
        path,
        cursor: query.or(header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_give_their_path_and_cursor() {
        let r = parse_request("GET /stream?after=0123456789ab-41 HTTP/1.1\r\nhost: stub");
        assert_eq!((r.path, r.cursor), (Path::Stream, Some(41)));
        let r = parse_request("GET /stream HTTP/1.1\r\nLast-Event-ID: 7\r\nhost: stub");
        assert_eq!((r.path, r.cursor), (Path::Stream, Some(7)));
        let r = parse_request("GET /events?after=3&limit=200&wait_ms=2000 HTTP/1.1");
        assert_eq!((r.path, r.cursor), (Path::Events, Some(3)));
        let r = parse_request("GET /ws?cursor=0123456789ab-12 HTTP/1.1\r\nupgrade: websocket");
        assert_eq!((r.path, r.cursor), (Path::Ws, Some(12)));
        let r = parse_request("GET /ws HTTP/1.1\r\nupgrade: websocket");
        assert_eq!((r.path, r.cursor), (Path::Ws, None));
    }

    #[test]
    fn a_response_gives_its_status_and_retry_hint() {
        let read = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nc\r\nretry: 2500\n\n";
        assert_eq!(parse_status(read), Some(200));
        assert_eq!(parse_retry(read), Some(2500));
        assert_eq!(parse_retry(b"HTTP/1.1 200 OK\r\n\r\ndata: retry: 9\n"), None);
    }
}
