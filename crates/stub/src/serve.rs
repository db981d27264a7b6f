//! The accept loop, plain or TLS. We own each connection's task (rather than calling
//! `axum::serve`) so that one client can be dropped on demand
//! (`DELETE /connections/{id}`, a stalled slow consumer) and so shutdown can
//! end every stream, then wait a bounded time for connections to close.

use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;

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
    pub peer: String,
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
        let peer = format!("{addr:?}");
        let kill = stub.shutdown_token().child_token();
        let (ctx_peer, ctx_kill, app) = (peer.clone(), kill.clone(), app.clone());
        let service = move |protocol: &'static str| {
            let ctx = ConnCtx {
                peer: ctx_peer,
                protocol,
                kill: ctx_kill,
            };
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ctx.clone());
                app.clone().oneshot(req.map(axum::body::Body::new))
            })
        };
        let stop = stub.shutdown_token().clone();
        let grace = stub.config().shutdown_grace();
        let buffer = stub.config().conn_buffer_bytes.max(8192);
        let handshake = std::time::Duration::from_millis(stub.config().tls_handshake_timeout_ms);
        let tls = tls.clone();
        tasks.spawn(async move {
            // Shutdown lets the connection finish within the grace period; a
            // kill of this one client cuts it at once.
            macro_rules! drive {
                ($conn:expr) => {{
                    let mut conn = pin!($conn);
                    tokio::select! {
                        biased;
                        () = kill.cancelled() => {
                            if stop.is_cancelled() {
                                conn.as_mut().graceful_shutdown();
                                let _ = tokio::time::timeout(grace, conn.as_mut()).await;
                            }
                        }
                        _ = conn.as_mut() => {}
                    }
                }};
            }
            let Some(tls) = tls else {
                drive!(
                    hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .max_buf_size(buffer)
                        .header_read_timeout(std::time::Duration::from_secs(30))
                        .serve_connection(TokioIo::new(io), service("HTTP/1.1"))
                        .with_upgrades()
                );
                return;
            };
            let io = tokio::select! {
                biased;
                () = kill.cancelled() => return,
                io = tls.accept(io, handshake, &peer) => match io {
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
                .max_buf_size(buffer)
                .header_read_timeout(std::time::Duration::from_secs(30));
            builder.http2().timer(TokioTimer::new());
            drive!(builder.serve_connection_with_upgrades(TokioIo::new(io), service(protocol)));
        });
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
