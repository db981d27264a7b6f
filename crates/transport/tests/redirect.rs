//! Credentials and redirects over real TCP on 127.0.0.1: a token is sent
//! along a same-origin redirect and never to another origin (another port
//! is another origin), as browsers and curl do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use transport::http::{self, Timeouts};
use transport::{Endpoint, TokioConnect};

/// What the recording server saw: the `Authorization` of each request.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A server whose `/final` records the `Authorization` it got, and whose
/// `/here` redirects to its own `/final` (same origin).
async fn recorder() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = Router::new()
        .route(
            "/final",
            get(move |headers: HeaderMap| {
                let log = log.clone();
                async move {
                    let auth = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    log.lock().unwrap().push(auth);
                    "done"
                }
            }),
        )
        .route(
            "/here",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/final")]).into_response() }),
        );
    (serve(app).await, seen)
}

/// A server that redirects `/away` to `location`.
async fn redirector(location: String) -> SocketAddr {
    let app = Router::new().route(
        "/away",
        get(move || {
            let location = location.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response() }
        }),
    );
    serve(app).await
}

async fn get_with_token(addr: SocketAddr, path: &str) -> StatusCode {
    let endpoint = Endpoint::parse(&format!("http://{addr}")).unwrap();
    let headers = [(header::AUTHORIZATION, "Bearer s3cret".to_owned())];
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        headers: Duration::from_secs(5),
    };
    let reply = http::get(
        &TokioConnect,
        &transport::Tls::platform(),
        &endpoint,
        path,
        &headers,
        timeouts,
    )
    .await
    .unwrap();
    reply.response.status()
}

#[tokio::test]
async fn a_cross_origin_redirect_drops_the_token() {
    let (final_addr, seen) = recorder().await;
    let first = redirector(format!("http://{final_addr}/final")).await;
    assert_eq!(get_with_token(first, "/away").await, StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None],
        "the token reached another origin"
    );
}

#[tokio::test]
async fn a_same_origin_redirect_keeps_the_token() {
    let (addr, seen) = recorder().await;
    assert_eq!(get_with_token(addr, "/here").await, StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), vec![Some("Bearer s3cret".to_owned())]);
}

/// The WebSocket handshake follows no redirect: a 3xx to the upgrade stops
/// the client (a refused answer), and the token goes nowhere else.
#[tokio::test]
async fn the_websocket_handshake_follows_no_redirect() {
    let (final_addr, seen) = recorder().await;
    let location = format!("http://{final_addr}/final");
    let app = Router::new().route(
        "/ws",
        get(move || {
            let location = location.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response() }
        }),
    );
    let first = serve(app).await;
    let mut config = transport::ClientConfig::new(&format!("http://{first}"), Arc::new(|| 1));
    config.policy.transport = transport::Transport::Ws;
    config.policy.fallback = false;
    config.token = Some("s3cret".into());
    let mut client = transport::Client::connect(TokioConnect, config).unwrap();
    let mut sub = client.subscribe().unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the client stops")
        .unwrap();
    assert!(
        matches!(end, Err(transport::ClientError::Refused { status: 307, .. })),
        "{end:?}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the redirect was followed");
    client.close().await;
}
