//! The accept loop, plain or TLS. We own each connection's task (rather than calling
//! `axum::serve`) so that one client can be dropped on demand
//! (`DELETE /connections/{id}`, a stalled slow consumer) and so shutdown can
//! end every stream, then wait a bounded time for connections to close.

use std::fmt::Debug;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;

use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::Stub;
use crate::tls::ServerTls;

/// The TCP connection a request arrived on.
#[derive(Debug, Clone)]
pub(crate) struct ConnCtx {
    pub peer: Arc<str>,
    /// `HTTP/1.1`, `HTTP/1.1 over TLS` or `HTTP/2 over TLS`, for `/connections`.
    pub protocol: &'static str,
    /// Cuts this connection; a child of the shutdown token, so shutdown
    /// cancels it too.
    pub kill: CancellationToken,
}

/// A TCP listener whose accepted sockets send at once (`TCP_NODELAY`). An
/// event is a few hundred bytes: with Nagle's algorithm on, a write made
/// while the previous one is unacknowledged waits for the peer's delayed
/// ACK, up to 40 ms on Linux, and that was the p99 of a hundred clients.
/// Writes are already batched here, one per wakeup, so Nagle saves nothing.
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    })
}

/// Serves `stub` on `listener` until `shutdown` resolves or the stub's
/// shutdown token is cancelled; then every stream
/// ends and connections get `shutdown_grace_ms` to close before they are cut.
/// Plain HTTP/1.1 (with upgrades for WebSocket).
pub async fn serve<L>(listener: L, stub: Stub, shutdown: impl Future<Output = ()>)
where
    L: Listener,
    L::Addr: Debug,
{
    serve_on(listener, stub, None, shutdown).await
}

/// [`serve`] over TLS: HTTPS and WSS, and HTTP/2 where the client picks
/// `h2` in ALPN. The handshake runs in each connection's task, bounded by
/// `tls_handshake_timeout_ms`, so a slow or silent client never stalls the
/// accept loop; the kill, the sweeper and shutdown work as over plain HTTP.
pub async fn serve_tls<L>(listener: L, stub: Stub, tls: ServerTls, shutdown: impl Future<Output = ()>)
where
    L: Listener,
    L::Addr: Debug,
{
    serve_on(listener, stub, Some(tls), shutdown).await
}

async fn serve_on<L>(mut listener: L, stub: Stub, tls: Option<ServerTls>, shutdown: impl Future<Output = ()>)
where
    L: Listener,
    L::Addr: Debug,
{
    let app = crate::app(stub.clone());
    let mut shutdown = pin!(shutdown);
    let mut tasks = JoinSet::new();
    tasks.spawn(sweep(stub.clone()));
    loop {
        let (io, addr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Cancelling the token by hand (tests, an embedding program) shuts
            // down the same way.
            () = stub.shutdown_token().cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        let accepted = Accepted {
            app: app.clone(),
            peer: format!("{addr:?}").into(),
            kill: stub.shutdown_token().child_token(),
            stub: stub.clone(),
        };
        // One task type per path: a plain connection's task is not sized
        // for the TLS handshake and HTTP/2 that it never uses.
        match &tls {
            None => tasks.spawn(plain(accepted, io)),
            Some(tls) => tasks.spawn(secure(accepted, io, tls.clone())),
        };
    }
    tracing::info!("shutting down: ending streams");
    stub.shutdown_token().cancel();
    let grace = stub.config().shutdown_grace();
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "connections still open after the grace period: cutting them"
        );
        tasks.shutdown().await;
    }
}

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One accepted connection, before it is served.
struct Accepted {
    app: axum::Router,
    peer: Arc<str>,
    /// Cuts this connection; a child of the shutdown token.
    kill: CancellationToken,
    stub: Stub,
}

/// What a connection's task keeps besides hyper's connection: how it ends.
struct Ending {
    kill: CancellationToken,
    /// The shutdown token and the grace period.
    stub: Stub,
}

/// The router as one connection's service: each request gets the
/// connection's [`ConnCtx`]. Small, for it sits in every connection's task:
/// the context is behind one pointer, like the router. The router's future
/// is boxed: hyper keeps the box that holds a request's future for the
/// connection's life, so an idle stream keeps a pointer there rather than
/// room for a finished router future.
#[derive(Clone)]
struct Routed {
    app: axum::Router,
    ctx: Arc<ConnCtx>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Routed {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<tower::util::Oneshot<axum::Router, axum::extract::Request>>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnCtx::clone(&self.ctx));
        Box::pin(self.app.clone().oneshot(req.map(axum::body::Body::new)))
    }
}

impl Accepted {
    /// The connection's service, and what is left to end the connection.
    fn split(self, protocol: &'static str) -> (Routed, Ending) {
        let Accepted {
            app,
            peer,
            kill,
            stub,
        } = self;
        let ctx = Arc::new(ConnCtx {
            peer,
            protocol,
            kill: kill.clone(),
        });
        (Routed { app, ctx }, Ending { kill, stub })
    }

    /// hyper's read and write buffers may grow to this; each starts at 8 KiB.
    fn buffer(&self) -> usize {
        self.stub.config().conn_buffer_bytes.max(8192)
    }
}

/// Shutdown lets the connection finish within the grace period; a kill of
/// this one client cuts it at once. `$conn` is the pinned connection.
macro_rules! drive {
    ($ending:expr, $conn:expr) => {{
        let mut conn = $conn;
        tokio::select! {
            biased;
            () = $ending.kill.cancelled() => {
                if $ending.stub.shutdown_token().is_cancelled() {
                    conn.as_mut().graceful_shutdown();
                    // Boxed: room for a timer only while shutting down.
                    let grace = $ending.stub.config().shutdown_grace();
                    let _ = Box::pin(tokio::time::timeout(grace, conn.as_mut())).await;
                }
            }
            _ = conn.as_mut() => {}
        }
    }};
}

/// Serves one plain HTTP/1.1 connection (with upgrades for WebSocket).
///
/// Not an `async fn`, whose arguments would keep their room in the task
/// beside what is made of them: the connection is built here, and the task
/// holds only it (in place: it is `Unpin`) and how it ends.
fn plain<I>(accepted: Accepted, io: I) -> impl Future<Output = ()> + Send + 'static
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_buf_size(accepted.buffer())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let (service, ending) = accepted.split("HTTP/1.1");
    let mut conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    async move { drive!(ending, Pin::new(&mut conn)) }
}

/// Serves one TLS connection: the handshake, bounded by
/// `tls_handshake_timeout_ms`, then HTTP/1.1 or HTTP/2 as ALPN chose.
async fn secure<I>(accepted: Accepted, io: I, tls: ServerTls)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handshake = std::time::Duration::from_millis(accepted.stub.config().tls_handshake_timeout_ms);
    let io = tokio::select! {
        biased;
        () = accepted.kill.cancelled() => return,
        io = tls.accept(io, handshake, &accepted.peer) => match io {
            Some(io) => io,
            None => return,
        },
    };
    let protocol = if crate::tls::is_h2(&io) {
        "HTTP/2 over TLS"
    } else {
        "HTTP/1.1 over TLS"
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(accepted.buffer())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let (service, ending) = accepted.split(protocol);
    drive!(
        ending,
        pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service))
    );
}

/// Drops streaming clients that are far behind and have not taken a single
/// event for the grace period: their sockets are full, so their stream is
/// never polled and cannot notice by itself. (A client that reads, however
/// slowly, is told `overflow` by its own stream instead.)
async fn sweep(stub: Stub) {
    use std::sync::atomic::Ordering::Relaxed;
    let period = stub
        .config()
        .heartbeat()
        .min(stub.config().lag_grace())
        .max(std::time::Duration::from_millis(100));
    let needed = (stub.config().lag_grace().as_millis() / period.as_millis()).max(1) as u64 + 1;
    loop {
        tokio::select! {
            biased;
            () = stub.shutdown_token().cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let head = stub.log().head();
        for conn in stub.0.conns.all() {
            let last = conn.last_sent.load(Relaxed);
            let stalled =
                head.saturating_sub(last) > stub.config().max_lag && conn.swept.swap(last, Relaxed) == last;
            if !stalled {
                conn.stalled_sweeps.store(0, Relaxed);
            } else if conn.stalled_sweeps.fetch_add(1, Relaxed) + 1 >= needed {
                tracing::info!(
                    conn = conn.id,
                    last_id = last,
                    head,
                    "stalled slow consumer dropped"
                );
                stub.0.metrics.overflow_drops.inc();
                conn.kill.cancel();
            }
        }
    }
}
