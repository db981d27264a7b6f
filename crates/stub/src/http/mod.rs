//! The HTTP surface: `app(stub)` builds the router, so tests drive it without
//! sockets. Handlers extract, call the core and map the result; every error
//! is an [`ApiError`] with a JSON body. Each endpoint family has its module.

mod admin;
pub mod dashboard;
mod ingest;
mod poll;
mod stream;
mod ws;

use std::convert::Infallible;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};
use wire::{Control, Cursor, EPOCH_HEADER, Epoch, Problem};

use crate::log::Miss;
use crate::{Stub, serve::ConnCtx};

/// The stub's router.
pub fn app(stub: Stub) -> Router {
    let config = stub.config().clone();
    let epoch = || middleware::map_response_with_state(stub.clone(), epoch_header);
    let api = Router::new()
        .route("/events", get(poll::poll).post(ingest::ingest).layer(epoch()))
        .route("/stream", get(stream::stream).layer(epoch()))
        .route("/ws", get(ws::ws).layer(epoch()))
        .route("/connections", get(admin::connections))
        .route("/connections/{id}", delete(admin::drop_connection))
        .route("/metrics", get(admin::metrics))
        .route("/metrics.json", get(admin::metrics_json))
        .route("/dashboard/stream", dashboard::stream())
        .route_layer(middleware::from_fn_with_state(stub.clone(), auth));
    let mut app = Router::new()
        .route("/healthz", get(admin::healthz).layer(epoch()))
        .route("/", get(dashboard::page))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(stub.clone(), host_check))
        .layer(middleware::from_fn_with_state(stub.clone(), count_rejected))
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
                    header::HeaderName::from_static("idempotency-key"),
                ])
                .expose_headers([header::HeaderName::from_static(EPOCH_HEADER)]),
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

/// An error answer's reason (its problem code), for [`count_rejected`].
#[derive(Debug, Clone)]
struct Rejected(String);

/// The one place rejected requests are counted, by reason: every error
/// answer (`ApiError`: 400, 401, 404, 405, 409, 410, 413, 421, 503 ...)
/// under its problem code, any other 4xx or 5xx as `status_<code>`.
async fn count_rejected(State(stub): State<Stub>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    match res.extensions().get::<Rejected>() {
        Some(Rejected(reason)) => stub.0.metrics.rejected(reason),
        None if res.status().is_client_error() || res.status().is_server_error() => {
            stub.0
                .metrics
                .rejected(&format!("status_{}", res.status().as_u16()));
        }
        None => {}
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = Rejected(self.problem.code.clone());
        let mut res = (self.status, self.problem.to_body()).into_response();
        res.extensions_mut().insert(reason);
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
        .and_then(bearer_token);
    // `?access_token=` exists because a browser's `EventSource` and
    // `WebSocket` cannot set headers: it opens those two streams and
    // nothing else, so a token in a link can never publish or cut clients.
    let from_query = || {
        let streaming = req.method() == Method::GET && matches!(req.uri().path(), "/stream" | "/ws");
        streaming
            .then(|| query_param(req.uri(), "access_token"))
            .flatten()
    };
    let presented = bearer.map(str::to_owned).or_else(from_query);
    let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.as_bytes())));
    if ok {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
        .into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110), the token is not.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Refuses a request whose `Host` names neither an IP address, `localhost`
/// nor one of `allowed_hosts`: a browser tricked by DNS rebinding sends the
/// attacker's own name, so this keeps pages from other sites off a server
/// on loopback or a private network. `*` in `allowed_hosts` turns it off.
/// A request without `Host` (HTTP/1.0, tests) did not come from a browser.
async fn host_check(State(stub): State<Stub>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
        .or_else(|| req.uri().host().map(str::to_owned));
    match host {
        Some(host) if !host_allowed(&host, &stub.config().allowed_hosts) => {
            ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_host",
                format!(
                    "Host {host:?} is not served here: add it to allowed_hosts (--allow-host) if it names this server"
                ),
            )
            .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Whether a `Host` value (with or without a port) may reach the server.
pub(crate) fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(name))
}

/// One query parameter, percent-decoded.
fn query_param(uri: &axum::http::Uri, key: &str) -> Option<String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The peer and kill token of the TCP connection a request came on. When
/// the router is driven without sockets (tests) there is none: the request
/// gets its own child of the shutdown token, so shutdown still ends it.
struct Conn(ConnCtx);

impl FromRequestParts<Stub> for Conn {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, stub: &Stub) -> Result<Self, Self::Rejection> {
        Ok(Conn(parts.extensions.get::<ConnCtx>().cloned().unwrap_or_else(
            || ConnCtx {
                peer: "unknown".into(),
                protocol: "unknown",
                kill: stub.shutdown_token().child_token(),
            },
        )))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

/// Where a client starts, its cursor checked against the log (whose
/// figures are taken once, so a reset and the read agree).
struct Resume {
    /// Read after this id.
    after: u64,
    /// The cursor's epoch, when it is not the log's: a reset goes first,
    /// and `after` is the new epoch's beginning.
    from: Option<Epoch>,
    epoch: Epoch,
    oldest: u64,
    head: u64,
}

impl Resume {
    /// The `reset` a stream sends first, when the cursor named another epoch.
    fn reset(&self) -> Option<Control> {
        self.from.map(|from| Control::Reset {
            from,
            epoch: self.epoch,
            oldest: self.oldest,
            head: self.head,
        })
    }
}

/// The one cursor resolution of `/stream`, `/ws` and `/events`. No cursor:
/// from the oldest retained event. A cursor from another epoch: a reset,
/// then the new epoch from its beginning. A cursor past the head: 409
/// `cursor_ahead`, never a silent wait for ids that may name other events.
/// A cursor older than retention is left to the read, which says so.
async fn resume(stub: &Stub, cursor: Option<Cursor>) -> Result<Resume, ApiError> {
    let log = stub.log();
    if let Some(c) = cursor.filter(|c| c.epoch.is_none_or(|e| e == log.epoch()) && c.id > log.head()) {
        // A node of a shared log may follow a little behind the node the
        // client came from: wait for it to hold the cursor, when the log does.
        if let Err(Miss::Unavailable(reason)) = log.reach(c.id).await {
            return Err(unavailable(&reason));
        }
    }
    let (epoch, oldest, head) = (log.epoch(), log.oldest(), log.head());
    let start = |after, from| Resume {
        after,
        from,
        epoch,
        oldest,
        head,
    };
    let Some(cursor) = cursor else {
        return Ok(start(oldest - 1, None));
    };
    match cursor.epoch {
        Some(from) if from != epoch => Ok(start(oldest - 1, Some(from))),
        _ if cursor.id > head => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "cursor_ahead",
                format!(
                    "cursor {cursor} is past the head {head} of epoch {epoch}: it comes from another log, \
                     or the wire lost events; resume with no cursor, or from a cursor at or before the head"
                ),
            );
            e.problem.epoch = Some(epoch);
            e.problem.head = Some(head);
            Err(e)
        }
        _ => Ok(start(cursor.id, None)),
    }
}

/// 503 `log_unavailable`: this node cannot answer now (its shared log's
/// service is away, or it has not caught up); the client retries, here or
/// on another node.
fn unavailable(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
        format!("{reason}; retry, here or on another node"),
    )
}

/// A cursor given as text (`?cursor=`, `Last-Event-ID`); `what` names where.
fn parse_cursor(what: &str, text: &str) -> Result<Cursor, ApiError> {
    text.parse()
        .map_err(|e: wire::BadCursor| ApiError::bad_request(format!("{what}: {e}")))
}

/// The cursor of `?cursor=`, when there is one.
fn query_cursor(text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    text.map(|t| parse_cursor("cursor", t)).transpose()
}

/// Adds the `tickwire-epoch` header: which log the answer comes from.
async fn epoch_header(State(stub): State<Stub>, mut res: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&stub.log().epoch().to_string()) {
        res.headers_mut().insert(EPOCH_HEADER, v);
    }
    res
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

/// The query of `/stream` and `/ws`.
#[derive(serde::Deserialize)]
struct StreamQuery {
    cursor: Option<String>,
    symbols: Option<String>,
    kinds: Option<String>,
}

/// The filter of a query (`symbols=A,B&kinds=tick`); a bad one is a 400
/// naming the value.
fn query_filter(symbols: Option<&str>, kinds: Option<&str>) -> Result<wire::Filter, ApiError> {
    wire::Filter::from_query(symbols, kinds).map_err(|e| ApiError::bad_request(e.to_string()))
}
