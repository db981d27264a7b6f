//! The HTTP surface: `app(stub)` builds the router, so tests drive it without
//! sockets. Handlers extract, call the core and map the result; every error
//! is an [`ApiError`] with a JSON body.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};
use wire::{Control, Payload, Problem};

use crate::conns::Transport;
use crate::feed::{Feed, Out};
use crate::log::Source;
use crate::trigger::Trigger;
use crate::{Stub, serve::ConnCtx};

/// The stub's router.
pub fn app(stub: Stub) -> Router {
    let config = stub.config().clone();
    let api = Router::new()
        .route("/events", get(poll).post(ingest))
        .route("/stream", get(stream))
        .route("/ws", get(ws))
        .route("/connections", get(connections))
        .route("/connections/{id}", delete(drop_connection))
        .route("/metrics", get(metrics))
        .route("/metrics.json", get(metrics_json))
        .route_layer(middleware::from_fn_with_state(stub.clone(), auth));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(stub);
    if !config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static("last-event-id"),
                ]),
        );
    }
    app
}

/// An error answer: a status and a [`Problem`] body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            problem: Problem::new(code, message),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.problem.to_body()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
    )
}

async fn auth(State(stub): State<Stub>, req: Request, next: Next) -> Response {
    let Some(token) = &stub.config().token else {
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let presented = bearer
        .map(str::to_owned)
        .or_else(|| query_param(req.uri(), "access_token"));
    let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.as_bytes())));
    if ok {
        next.run(req).await
    } else {
        stub.0.metrics.rejected("unauthorized");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
        .into_response()
    }
}

/// One query parameter, percent-decoded.
fn query_param(uri: &axum::http::Uri, key: &str) -> Option<String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

async fn healthz(State(stub): State<Stub>) -> Response {
    json_response(serde_json::json!({ "status": "ok", "head": stub.log().head() }).to_string())
}

/// The peer and kill switch of the TCP connection a request came on; absent
/// when the router is driven without sockets (tests).
struct Conn(ConnCtx);

impl<S: Send + Sync> FromRequestParts<S> for Conn {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Conn(parts.extensions.get::<ConnCtx>().cloned().unwrap_or_else(
            || ConnCtx {
                peer: "unknown".into(),
                kill: Trigger::default(),
            },
        )))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

/// Where a client starts: after `cursor`, or after the oldest retained event
/// when it gave none.
fn start_after(stub: &Stub, cursor: Option<u64>) -> u64 {
    cursor.unwrap_or_else(|| stub.log().oldest() - 1)
}

#[derive(Deserialize)]
struct PollQuery {
    cursor: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

async fn poll(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    q: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let config = stub.config();
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > config.max_page {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {}",
            config.max_page
        )));
    }
    let wait_ms = q.wait_ms.unwrap_or(0);
    if wait_ms > config.max_wait_ms {
        return Err(ApiError::bad_request(format!(
            "wait_ms must be at most {}",
            config.max_wait_ms
        )));
    }
    let cursor = start_after(&stub, q.cursor);
    if wait_ms > 0 && cursor >= stub.log().head() {
        // Long-poll: listed as a live client while it waits.
        let _reg = stub.0.conns.register(
            Transport::Poll,
            ctx.peer,
            (stub.0.clock)(),
            cursor,
            ctx.kill.clone(),
        );
        let mut head = stub.log().watch();
        tokio::select! {
            biased;
            () = stub.shutdown_trigger().fired() => {}
            () = ctx.kill.fired() => {}
            _ = tokio::time::timeout(Duration::from_millis(wait_ms), head.wait_for(|h| *h > cursor)) => {}
        }
    }
    let mut body = String::from("{\"events\":[");
    let mut count = 0;
    let read = stub.log().read_with(cursor, limit, |e| {
        if count > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
        count += 1;
    });
    let head = stub.log().head();
    match read {
        Ok(last) => {
            stub.0.metrics.sent(Transport::Poll, count);
            body.push_str(&format!("],\"next_cursor\":{last},\"head\":{head}}}"));
            Ok(json_response(body))
        }
        Err(expired) => {
            stub.0.metrics.cursor_expired.inc();
            stub.0.metrics.rejected("cursor_expired");
            let mut e = ApiError::new(
                StatusCode::GONE,
                "cursor_expired",
                format!(
                    "cursor {cursor} is older than retention; the oldest event held is {}",
                    expired.oldest
                ),
            );
            e.problem.oldest = Some(expired.oldest);
            e.problem.head = Some(expired.head);
            Err(e)
        }
    }
}

fn streaming_on(stub: &Stub) -> Result<(), ApiError> {
    if stub.streaming() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "streaming is off here: poll GET /events",
        ))
    }
}

#[derive(Deserialize)]
struct StreamQuery {
    cursor: Option<u64>,
}

/// The resume point of a stream: `Last-Event-ID` (what a browser sends on
/// reconnect) wins over `?cursor=` (what the page was opened with).
fn stream_cursor(stub: &Stub, headers: &HeaderMap, cursor: Option<u64>) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a decimal event id"))?;
            if text.is_empty() {
                return Ok(start_after(stub, cursor));
            }
            text.parse()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a decimal event id"))
        }
        None => Ok(start_after(stub, cursor)),
    }
}

async fn stream(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    streaming_on(&stub)?;
    let cursor = stream_cursor(&stub, &headers, q.cursor)?;
    let mut first = Vec::new();
    sse::encode::retry(&mut first, stub.config().retry_ms);
    let feed = Feed::new(stub, Transport::Sse, ctx.peer, ctx.kill, cursor);
    let body = futures_util::stream::unfold((feed, Some(first)), |(mut feed, first)| async move {
        if let Some(first) = first {
            return Some((Ok::<_, Infallible>(Bytes::from(first)), (feed, None)));
        }
        let mut buf = Vec::new();
        let out = feed
            .next(|e| wire::sse::encode_parts(&mut buf, &e.kind, e.id, &e.json))
            .await;
        match out {
            Out::Events => {}
            Out::Control(c) => wire::sse::encode_control(&mut buf, &c),
            Out::End => return None,
        }
        Some((Ok(Bytes::from(buf)), (feed, None)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

async fn ws(
    State(stub): State<Stub>,
    Conn(ctx): Conn,
    q: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    streaming_on(&stub)?;
    let upgrade = upgrade
        .map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", e.body_text()))?;
    let cursor = start_after(&stub, q.cursor);
    let feed = Feed::new(stub, Transport::Ws, ctx.peer, ctx.kill, cursor);
    Ok(upgrade
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| ws_session(socket, feed)))
}

/// Sends the feed as text messages, a WebSocket ping with every heartbeat,
/// and reads the client's side for Close (pongs are answered by the library).
async fn ws_session(mut socket: WebSocket, mut feed: Feed) {
    let mut batch: Vec<String> = Vec::new();
    loop {
        batch.clear();
        let out = tokio::select! {
            biased;
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            out = feed.next(|e| batch.push(ws_event(&e.json))) => out,
        };
        let mut ping = false;
        match out {
            Out::Events => {}
            Out::Control(c) => {
                ping = matches!(c, Control::Heartbeat { .. });
                batch.push(serde_json::to_string(&c).unwrap_or_default());
            }
            Out::End => break,
        }
        for text in batch.drain(..) {
            if socket.send(WsMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
        if ping && socket.send(WsMessage::Ping(Bytes::new())).await.is_err() {
            return;
        }
        if feed.kill().is_fired() {
            break;
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}

/// The WebSocket form of a stored event: its JSON object plus `"type":"event"`.
fn ws_event(json: &str) -> String {
    // Stored JSON is always an object: `{...}`.
    format!("{{\"type\":\"event\",{}", &json[1..])
}

async fn ingest(
    State(stub): State<Stub>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match ingest_inner(&stub, &headers, body) {
        Ok(res) => res,
        Err(e) => {
            stub.0
                .metrics
                .rejected(if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "bad_request"
                });
            e.into_response()
        }
    }
}

fn ingest_inner(
    stub: &Stub,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, e.body_text())
    })?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("body must be UTF-8"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let payloads = parse_payloads(content_type, text)?;
    if payloads.is_empty() {
        return Err(ApiError::bad_request("no events in the body"));
    }
    let ids = stub.publish(Source::Ingest, &payloads).map_err(|e| {
        tracing::error!(error = %e, "journal write failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_error", e.to_string())
    })?;
    Ok(json_response(
        serde_json::json!({ "first_id": ids.start(), "last_id": ids.end(), "head": stub.log().head() })
            .to_string(),
    ))
}

/// A JSON array of payloads, or NDJSON (one per line). All or nothing: one
/// bad item refuses the request, naming the item and the field.
fn parse_payloads(content_type: &str, text: &str) -> Result<Vec<Payload>, ApiError> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let array = match essence {
        "application/json" => true,
        "application/x-ndjson" | "application/jsonl" | "text/plain" | "" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other} is not application/json or application/x-ndjson"),
            ));
        }
    };
    let items: Vec<String> = if array || text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("body is not a JSON array: {e}")))?;
        values.iter().map(|v| v.to_string()).collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            Payload::from_json(item).map_err(|e| ApiError::bad_request(format!("item {}: {e}", i + 1)))
        })
        .collect()
}

async fn connections(State(stub): State<Stub>) -> Response {
    json_response(serde_json::to_string(&stub.connections()).unwrap_or_default())
}

async fn drop_connection(State(stub): State<Stub>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("connection id must be a number"))?;
    if stub.0.conns.kill(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no connection {id}"),
        ))
    }
}

async fn metrics(State(stub): State<Stub>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        stub.0.metrics.prometheus(stub.log(), &stub.0.conns),
    )
        .into_response()
}

async fn metrics_json(State(stub): State<Stub>) -> Response {
    json_response(stub.0.metrics.json(stub.log(), &stub.0.conns).to_string())
}
