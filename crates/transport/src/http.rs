//! A minimal HTTP GET over any [`Connect`], plain or TLS: hyper's client
//! connection (HTTP/2 when the server picks `h2` in ALPN, else HTTP/1.1),
//! a timeout on connect and on the response headers, redirects followed
//! (with a limit), and the answer's status turned into a policy
//! [`Failure`] when it is not a success.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::net::{Connect, Endpoint};
use crate::policy::Failure;
use crate::tls::{Alpn, Tls};

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
/// redirects (never from TLS to plain: a downgrade is refused). Any status
/// is returned; the caller classifies it.
///
/// Credentials stay home: once a redirect leaves the endpoint's origin
/// (scheme, host or port differ), `Authorization` is dropped for that hop
/// and every later one, as browsers (Fetch: "remove Authorization on a
/// cross-origin redirect") and curl do. A same-origin redirect keeps it.
pub async fn get<C: Connect>(
    connector: &C,
    tls: &Tls,
    endpoint: &Endpoint,
    path: &str,
    headers: &[(header::HeaderName, String)],
    timeouts: Timeouts,
) -> Result<Reply, Failure> {
    let origin = (
        endpoint.is_tls(),
        endpoint.host.to_ascii_lowercase(),
        endpoint.port,
    );
    let mut target = Target {
        tls: endpoint.is_tls(),
        host: endpoint.host.clone(),
        port: endpoint.port,
        path: endpoint.path(path),
    };
    let mut headers = headers.to_vec();
    for _ in 0..=MAX_REDIRECTS {
        if (target.tls, target.host.to_ascii_lowercase(), target.port) != origin {
            headers.retain(|(name, _)| name != header::AUTHORIZATION);
        }
        let reply = get_once(connector, tls, &target, &headers, timeouts).await?;
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
            (None, None) => Target { path, ..target },
            (Some("http"), Some(_)) if target.tls => {
                return Err(Failure::Fatal(ClientError::Protocol(format!(
                    "refusing a redirect from https to plain http ({location}): never downgrade"
                ))));
            }
            (Some(scheme @ ("http" | "https")), Some(host)) => {
                let tls = scheme == "https";
                Target {
                    tls,
                    host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    port: location.port_u16().unwrap_or(if tls { 443 } else { 80 }),
                    path,
                }
            }
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

/// Where one request goes.
#[derive(Debug)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

async fn get_once<C: Connect>(
    connector: &C,
    tls: &Tls,
    target: &Target,
    headers: &[(header::HeaderName, String)],
    timeouts: Timeouts,
) -> Result<Reply, Failure> {
    let Target { host, port, path, .. } = target;
    let io = crate::tls::open(
        connector,
        target.tls.then_some(tls),
        (host, *port),
        Alpn::Http,
        timeouts.connect,
        &format!("connect to {host}:{port}"),
    )
    .await?;
    let h2 = io.is_h2();
    let default_port = if target.tls { 443 } else { 80 };
    let authority = if *port == default_port {
        crate::net::authority(host, *port)
            .trim_end_matches(&format!(":{port}"))
            .to_owned()
    } else {
        crate::net::authority(host, *port)
    };
    let mut req = if h2 {
        // HTTP/2 carries the authority in the request's URI, not in `Host`.
        Request::get(format!("https://{authority}{path}"))
    } else {
        Request::get(path.as_str()).header(header::HOST, authority)
    };
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| Failure::Fatal(ClientError::BadUrl(format!("bad request: {e}"))))?;
    let (response, conn) = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(io),
        )
        .await
        .map_err(|e| retry(&format!("HTTP/2 handshake: {e}")))?;
        let conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (Either::Left(sender.send_request(req)), conn)
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| retry(&format!("HTTP handshake: {e}")))?;
        let conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (Either::Right(sender.send_request(req)), conn)
    };
    let response = tokio::time::timeout(timeouts.headers, response)
        .await
        .map_err(|_| retry("timed out waiting for response headers"))?
        .map_err(|e| retry(&format!("request failed: {e}")))?;
    Ok(Reply { response, conn })
}

/// Classifies a status that is not the expected success. `body` is the
/// error answer if one was read (the stub's `{"error": ...}`).
pub fn classify(status: StatusCode, headers: &header::HeaderMap, body: &str) -> Failure {
    let problem = wire::Problem::from_body(body);
    // What a server says is kept (in errors, logs and the timeline) up to
    // a bound, so a flapping server's large error pages cannot pile up.
    let detail = clip(
        problem
            .as_ref()
            .map_or_else(|| status.to_string(), |p| format!("{status}: {p}")),
    );
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
            message: clip(problem.map_or_else(
                || status.canonical_reason().unwrap_or("").to_owned(),
                |p| p.to_string(),
            )),
        }),
    }
}

/// The most of a server's error text kept, in bytes.
pub const MAX_REASON: usize = 512;

/// `text` cut to [`MAX_REASON`] bytes at a character boundary, marked.
fn clip(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Whether a Content-Type's essence is `text/event-stream` (parameters allowed).
pub fn is_event_stream(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's error page is kept only up to `MAX_REASON` bytes, cut at a
    /// character, whatever its size: the timeline holds thousands of them.
    #[test]
    fn what_a_server_says_is_kept_up_to_a_bound() {
        let big = "é".repeat(40_000);
        let body = wire::Problem::new("unavailable", big.clone()).to_body();
        let empty = header::HeaderMap::new();
        for status in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_REQUEST] {
            let text = match classify(status, &empty, &body) {
                Failure::Retry { reason, .. } => reason,
                Failure::Fatal(ClientError::Refused { message, .. }) => message,
                other => panic!("{status}: {other:?}"),
            };
            assert!(text.len() <= MAX_REASON + 3, "{status}: {} bytes", text.len());
            assert!(text.ends_with("..."), "{status}");
        }
        let small = wire::Problem::new("unavailable", "try later").to_body();
        match classify(StatusCode::SERVICE_UNAVAILABLE, &empty, &small) {
            Failure::Retry { reason, .. } => {
                assert_eq!(reason, "503 Service Unavailable: unavailable: try later")
            }
            other => panic!("{other:?}"),
        }
    }
}
