//! A minimal HTTP/1.1 GET over any [`Connect`]: hyper's client connection,
//! a timeout on connect and on the response headers, redirects followed
//! (with a limit), and the answer's status turned into a policy
//! [`Failure`] when it is not a success.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::net::{Connect, Endpoint};
use crate::policy::Failure;

const MAX_REDIRECTS: usize = 5;

/// Timeouts for one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub headers: Duration,
}

/// A response, and the task driving its connection: dropping the reply
/// aborts the task, so no socket outlives it.
#[derive(Debug)]
pub struct Reply {
    pub response: Response<Incoming>,
    conn: AbortOnDrop,
}

/// Keeps a response's connection task alive; aborts it when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Reply {
    /// The response, and the guard that must live as long as its body.
    pub fn into_parts(self) -> (Response<Incoming>, AbortOnDrop) {
        (self.response, self.conn)
    }

    /// Reads the whole body, within `limit` bytes and `timeout`.
    pub async fn text(self, limit: usize, timeout: Duration) -> Result<String, Failure> {
        let Reply { response, conn } = self;
        let body = http_body_util::Limited::new(response.into_body(), limit);
        let bytes = tokio::time::timeout(timeout, body.collect())
            .await
            .map_err(|_| retry("timed out reading the response body"))?
            .map_err(|e| retry(&format!("reading the response body: {e}")))?
            .to_bytes();
        drop(conn);
        String::from_utf8(bytes.to_vec()).map_err(|_| retry("response body is not UTF-8"))
    }
}

pub(crate) fn retry(reason: &str) -> Failure {
    Failure::Retry {
        reason: reason.to_owned(),
        retry_after: None,
    }
}

/// GETs `path` (under the endpoint's prefix) with `headers`, following
/// redirects. Any status is returned; the caller classifies it.
///
/// Credentials stay home: once a redirect leaves the endpoint's origin
/// (scheme, host or port differ), `Authorization` is dropped for that hop
/// and every later one, as browsers (Fetch: "remove Authorization on a
/// cross-origin redirect") and curl do. A same-origin redirect keeps it.
pub async fn get<C: Connect>(
    connector: &C,
    endpoint: &Endpoint,
    path: &str,
    headers: &[(header::HeaderName, String)],
    timeouts: Timeouts,
) -> Result<Reply, Failure> {
    let origin = (endpoint.host.to_ascii_lowercase(), endpoint.port);
    let mut target = (endpoint.host.clone(), endpoint.port, endpoint.path(path));
    let mut headers = headers.to_vec();
    for _ in 0..=MAX_REDIRECTS {
        // Only `http` is followed (below), so the scheme is the same
        // whenever host and port are.
        if (target.0.to_ascii_lowercase(), target.1) != origin {
            headers.retain(|(name, _)| name != header::AUTHORIZATION);
        }
        let reply = get_once(connector, &target, &headers, timeouts).await?;
        let status = reply.response.status();
        if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
            return Ok(reply);
        }
        let location = reply
            .response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.parse::<Uri>().ok())
            .ok_or_else(|| {
                Failure::Fatal(ClientError::Protocol(format!(
                    "redirect ({status}) without a usable Location"
                )))
            })?;
        let path = location.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        target = match (location.scheme_str(), location.host()) {
            (None, None) => (target.0, target.1, path),
            (Some("http"), Some(host)) => (host.to_owned(), location.port_u16().unwrap_or(80), path),
            _ => {
                return Err(Failure::Fatal(ClientError::Protocol(format!(
                    "redirect to an unsupported location {location}"
                ))));
            }
        };
    }
    Err(Failure::Fatal(ClientError::Protocol(format!(
        "more than {MAX_REDIRECTS} redirects"
    ))))
}

async fn get_once<C: Connect>(
    connector: &C,
    (host, port, path): &(String, u16, String),
    headers: &[(header::HeaderName, String)],
    timeouts: Timeouts,
) -> Result<Reply, Failure> {
    let stream = tokio::time::timeout(timeouts.connect, connector.connect(host, *port))
        .await
        .map_err(|_| retry(&format!("connect to {host}:{port} timed out")))?
        .map_err(|e| retry(&format!("connect to {host}:{port}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| retry(&format!("HTTP handshake: {e}")))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let authority = if *port == 80 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut req = Request::get(path.as_str()).header(header::HOST, authority);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| Failure::Fatal(ClientError::BadUrl(format!("bad request: {e}"))))?;
    let response = tokio::time::timeout(timeouts.headers, sender.send_request(req))
        .await
        .map_err(|_| retry("timed out waiting for response headers"))?
        .map_err(|e| retry(&format!("request failed: {e}")))?;
    Ok(Reply { response, conn })
}

/// Classifies a status that is not the expected success. `body` is the
/// error answer if one was read (the stub's `{"error": ...}`).
pub fn classify(status: StatusCode, headers: &header::HeaderMap, body: &str) -> Failure {
    let problem = wire::Problem::from_body(body);
    let detail = problem
        .as_ref()
        .map_or_else(|| status.to_string(), |p| format!("{status}: {p}"));
    match status.as_u16() {
        204 => Failure::Fatal(ClientError::StoppedByServer),
        404 => Failure::StreamMissing,
        408 | 429 | 500..=599 => Failure::Retry {
            reason: detail,
            retry_after: headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => Failure::Fatal(ClientError::Refused {
            status: status.as_u16(),
            message: problem.map_or_else(
                || status.canonical_reason().unwrap_or("").to_owned(),
                |p| p.to_string(),
            ),
        }),
    }
}

/// Whether a Content-Type's essence is `text/event-stream` (parameters allowed).
pub fn is_event_stream(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}
