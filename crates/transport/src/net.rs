//! The network seam: a small `Connect` trait the transports are generic
//! over, so the same client runs on tokio sockets and on turmoil's simulated
//! network; `Endpoint`, the parsed base URL, and its `Scheme` (which gives
//! the security, and with `ws`/`wss` a default transport). TLS is a layer
//! over a `Connect` stream (`tls`), never a `Connect` of its own.

use std::future::Future;
use std::io;

use hyper::Uri;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::policy::{PolicyConfig, Transport};
use crate::preference::Preference;

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

/// A URL's scheme. It gives the security (`http`/`ws` plain, `https`/`wss`
/// TLS); `ws`/`wss` also ask for the WebSocket transport unless one is
/// configured explicitly (see [`Scheme::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return None,
        })
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    pub fn is_ws(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    pub fn default_port(self) -> u16 {
        if self.is_tls() { 443 } else { 80 }
    }

    /// Sets the policy's transport for this scheme and the user's
    /// preference: `auto` with a `ws`/`wss` URL means WebSocket first (still
    /// falling back to polling); any other preference is applied as it is
    /// ([`Preference::apply`]): an explicit transport wins. The answer is
    /// the one warning line to log when an explicit transport is not what
    /// the scheme suggests (a `ws://` URL read over SSE, say): the scheme
    /// then gives only the security.
    pub fn apply(self, preference: Preference, policy: &mut PolicyConfig) -> Option<String> {
        preference.apply(policy);
        match preference {
            Preference::Auto if self.is_ws() => {
                policy.transport = Transport::Ws;
                None
            }
            Preference::Sse | Preference::Poll if self.is_ws() => Some(format!(
                "a {}:// URL with transport {}: using {} over {}:// (the scheme gives only the security; an explicit transport wins)",
                self.as_str(),
                preference.as_str(),
                preference.as_str(),
                if self.is_tls() { "https" } else { "http" },
            )),
            _ => None,
        }
    }
}

/// Where the wire is: `http[s]://host[:port][/prefix]` or `ws[s]://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for the root).
    pub prefix: String,
}

impl Endpoint {
    /// Parses a base URL: `http`, `https`, `ws` or `wss`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) => Scheme::parse(s)
                .ok_or_else(|| format!("unsupported scheme {s:?} in {url:?}: use http, https, ws or wss"))?,
            None => {
                return Err(format!(
                    "URL {url:?} needs a scheme (http://, https://, ws:// or wss://)"
                ));
            }
        };
        let host = uri.host().ok_or_else(|| format!("URL {url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(Endpoint {
            scheme,
            host,
            port: uri.port_u16().unwrap_or(scheme.default_port()),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme.is_tls()
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }

    /// A path under the prefix, such as `/stream?cursor=4`.
    pub fn path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.prefix)
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.prefix
        )
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
    /// Whom to trust on `https`/`wss` (and on a redirect to `https`).
    pub tls: crate::tls::Tls,
    /// The subscription's query (`symbols=A,B&kinds=tick`), empty for all.
    pub filter: String,
}

impl<C> Link<C> {
    /// `path` (which has a query) with the subscription's filter added.
    pub(crate) fn filtered(&self, path: &str) -> String {
        if self.filter.is_empty() {
            path.to_owned()
        } else {
            format!("{path}&{}", self.filter)
        }
    }
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
        crate::http::get(
            &self.connector,
            &self.tls,
            &self.endpoint,
            path,
            &headers,
            timeouts,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, preference: Preference, expect: (Scheme, u16, Transport, bool, bool)) {
        let e = Endpoint::parse(url).unwrap();
        let mut policy = PolicyConfig::default();
        let warning = e.scheme.apply(preference, &mut policy);
        assert_eq!(
            (
                e.scheme,
                e.port,
                policy.transport,
                policy.fallback,
                warning.is_some()
            ),
            expect,
            "{url} {preference:?}"
        );
    }

    #[test]
    fn the_scheme_gives_the_security_and_a_ws_url_means_websocket_unless_told_otherwise() {
        use Preference::Auto;
        use Transport::{Poll, Sse, Ws};
        check("http://h", Auto, (Scheme::Http, 80, Sse, true, false));
        check("https://h", Auto, (Scheme::Https, 443, Sse, true, false));
        check("ws://h:8091", Auto, (Scheme::Ws, 8091, Ws, true, false));
        check("wss://h", Auto, (Scheme::Wss, 443, Ws, true, false));
        check("WSS://h", Auto, (Scheme::Wss, 443, Ws, true, false));
        // The original plan's YAML: a ws:// URL read over SSE, plain.
        check(
            "ws://localhost:8091",
            Preference::Sse,
            (Scheme::Ws, 8091, Sse, false, true),
        );
        check("wss://h", Preference::Poll, (Scheme::Wss, 443, Poll, false, true));
        check("wss://h", Preference::Ws, (Scheme::Wss, 443, Ws, false, false));
        check("http://h", Preference::Ws, (Scheme::Http, 80, Ws, false, false));
        check(
            "https://h",
            Preference::Poll,
            (Scheme::Https, 443, Poll, false, false),
        );
        assert!(
            Endpoint::parse("ftp://h")
                .unwrap_err()
                .contains("http, https, ws or wss")
        );
        assert!(Endpoint::parse("localhost:8091").is_err());
        assert_eq!(
            Endpoint::parse("wss://h:9/p/").unwrap().to_string(),
            "wss://h:9/p"
        );
    }
}
