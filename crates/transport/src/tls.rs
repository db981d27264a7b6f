//! TLS as a layer over any [`Connect`] stream: rustls (ring provider) with
//! the platform's roots or a private CA, SNI from the URL's host, ALPN per
//! use (`h2` and `http/1.1` for GETs, only `http/1.1` for WebSocket). The
//! simulation's streams stay plain: nothing here runs for `http`/`ws` URLs.
//!
//! A certificate that fails verification is fatal, naming the host: it
//! does not fix itself by retrying, and a client that retries it forever
//! hides a misconfiguration (or an attack) behind a reconnect loop.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ClientError;
use crate::net::Connect;
use crate::policy::Failure;

/// Which protocols to offer in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `h2` and `http/1.1`: SSE and polling speak what the server picks.
    Http,
    /// `http/1.1` only: the WebSocket upgrade is an HTTP/1.1 affair.
    Http1,
}

/// Whom the client trusts for `https://` and `wss://`. Cheap to clone.
#[derive(Clone)]
pub struct Tls(Arc<Inner>);

struct Inner {
    /// Where the roots come from, for messages.
    source: String,
    /// The platform's roots are read at the first TLS connection (never for
    /// a plain URL); a private CA is read at once.
    configs: OnceLock<Result<Configs, ClientError>>,
}

struct Configs {
    http: Arc<rustls::ClientConfig>,
    http1: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tls").field(&self.0.source).finish()
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls::platform()
    }
}

impl Tls {
    /// The platform's root certificates (`rustls-native-certs`).
    pub fn platform() -> Tls {
        Tls(Arc::new(Inner {
            source: "the platform's root certificates".into(),
            configs: OnceLock::new(),
        }))
    }

    /// Trusts only the CA certificates in this PEM file (like curl's
    /// `--cacert`): a private CA. Read and checked now.
    pub fn from_ca_file(path: &Path) -> Result<Tls, ClientError> {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::TlsSetup(format!("reading CA file {}: {e}", path.display())))?;
        Tls::from_ca_pem(&pem, &path.display().to_string())
    }

    /// Trusts only the CA certificates in `pem`; `name` says where they came
    /// from in messages.
    pub fn from_ca_pem(pem: &[u8], name: &str) -> Result<Tls, ClientError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ClientError::TlsSetup(format!("CA file {name}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::TlsSetup(format!("CA file {name}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ClientError::TlsSetup(format!(
                "CA file {name}: no PEM certificate in it"
            )));
        }
        let configs = OnceLock::new();
        let _ = configs.set(configs_for(roots));
        Ok(Tls(Arc::new(Inner {
            source: format!("the CA file {name}"),
            configs,
        })))
    }

    /// Loads the roots if not yet done; an error is fatal for every TLS URL.
    pub fn check(&self) -> Result<(), ClientError> {
        self.configs().map(|_| ())
    }

    fn configs(&self) -> Result<&Configs, ClientError> {
        self.0
            .configs
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found.errors.first().map_or(String::new(), |e| format!(" ({e})"));
                    return Err(ClientError::TlsSetup(format!(
                        "no usable platform root certificate{why}: give a CA file (--ca-cert)"
                    )));
                }
                configs_for(roots)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// TLS over `stream` to `host`, offering `alpn`.
    pub(crate) async fn wrap<S>(&self, stream: S, host: &str, alpn: Alpn) -> Result<TlsStream<S>, Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let configs = self.configs().map_err(Failure::Fatal)?;
        let config = match alpn {
            Alpn::Http => configs.http.clone(),
            Alpn::Http1 => configs.http1.clone(),
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Failure::Fatal(ClientError::BadUrl(format!("host {host:?} as a TLS name: {e}"))))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| handshake_failure(host, &self.0.source, &e))
    }
}

pub(crate) type TlsStream<S> = tokio_rustls::client::TlsStream<S>;

fn configs_for(roots: RootCertStore) -> Result<Configs, ClientError> {
    let roots = Arc::new(roots);
    let make = |alpn: &[&[u8]]| -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let mut c =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::TlsSetup(e.to_string()))?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    };
    Ok(Configs {
        http: make(&[b"h2", b"http/1.1"])?,
        http1: make(&[b"http/1.1"])?,
    })
}

/// A certificate the client cannot trust is fatal; anything else in the
/// handshake (a reset, a timeout, a server mid-restart) is retried.
fn handshake_failure(host: &str, source: &str, e: &io::Error) -> Failure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => Failure::Fatal(ClientError::Certificate {
            host: host.to_owned(),
            reason: format!("{why} (trusting {source})"),
        }),
        _ => crate::http::retry(&format!("TLS handshake with {host}: {e}")),
    }
}

/// A connection as the transports see it: plain, or TLS over the
/// [`Connect`] stream.
#[derive(Debug)]
pub(crate) enum Io<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S> Io<S> {
    /// Whether the server picked HTTP/2 in ALPN.
    pub(crate) fn is_h2(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(t) => t.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// Opens a connection to `host:port` over `connector`, with TLS when `tls`
/// is given, within `timeout`. `what` names the attempt in failures.
pub(crate) async fn open<C: Connect>(
    connector: &C,
    tls: Option<&Tls>,
    (host, port): (&str, u16),
    alpn: Alpn,
    timeout: std::time::Duration,
    what: &str,
) -> Result<Io<C::Stream>, Failure> {
    let dial = async {
        let stream = connector
            .connect(host, port)
            .await
            .map_err(|e| crate::http::retry(&format!("{what}: {e}")))?;
        match tls {
            None => Ok(Io::Plain(stream)),
            Some(tls) => Ok(Io::Tls(Box::new(tls.wrap(stream, host, alpn).await?))),
        }
    };
    tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| crate::http::retry(&format!("{what} timed out")))?
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Io<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Io<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}
