//! The network seam: a small `Connect` trait the transports are generic
//! over, so the same client runs on tokio sockets and on turmoil's simulated
//! network; and `Endpoint`, the parsed base URL.

use std::future::Future;
use std::io;

use hyper::Uri;
use tokio::io::{AsyncRead, AsyncWrite};

/// Opens a byte stream to `host:port`.
pub trait Connect: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn connect(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Real TCP, with Nagle off: a market-data client wants each event now.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioConnect;

impl Connect for TokioConnect {
    type Stream = tokio::net::TcpStream;

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Where the wire is: `http://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for the root).
    pub prefix: String,
}

impl Endpoint {
    /// Parses a base URL. Only `http` is supported: put a TLS-terminating
    /// proxy in front for `https`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("unsupported scheme {other:?} in {url:?}: only http")),
            None => return Err(format!("URL {url:?} needs http://")),
        }
        let host = uri.host().ok_or_else(|| format!("URL {url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(Endpoint {
            host,
            port: uri.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A path under the prefix, such as `/stream?cursor=4`.
    pub fn path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.prefix)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.prefix)
    }
}

/// Everything a transport needs to reach the wire: the network, where the
/// wire is, the credentials and the timeouts.
#[derive(Debug, Clone)]
pub(crate) struct Link<C> {
    pub connector: C,
    pub endpoint: Endpoint,
    pub token: Option<String>,
    pub timeouts: crate::http::Timeouts,
}

impl<C: Connect> Link<C> {
    pub(crate) fn auth_headers(&self) -> Vec<(hyper::header::HeaderName, String)> {
        self.token
            .iter()
            .map(|t| (hyper::header::AUTHORIZATION, format!("Bearer {t}")))
            .collect()
    }

    /// GETs `path` with the credentials and `extra` headers.
    pub(crate) async fn get(
        &self,
        path: &str,
        extra: &[(hyper::header::HeaderName, String)],
        timeouts: crate::http::Timeouts,
    ) -> Result<crate::http::Reply, crate::policy::Failure> {
        let mut headers = self.auth_headers();
        headers.extend_from_slice(extra);
        crate::http::get(&self.connector, &self.endpoint, path, &headers, timeouts).await
    }
}
