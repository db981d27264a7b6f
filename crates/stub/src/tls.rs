//! TLS for the stub: a certificate chain and key made into a rustls server
//! config (ring provider) that offers `h2` and `http/1.1` in ALPN (or only
//! `http/1.1`). The handshake itself runs in each connection's task
//! (`serve`), bounded by a timeout, never in the accept loop.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};

/// What the stub serves TLS with. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From a certificate chain (leaf first) and its private key; with
    /// `http2`, ALPN offers `h2` before `http/1.1`.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        http2: bool,
    ) -> Result<ServerTls, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The server side of the handshake, within `timeout`; `None` when it
    /// failed or took too long (the client is dropped, and logged).
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
        timeout: Duration,
        peer: &str,
    ) -> Option<tokio_rustls::server::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(timeout, self.acceptor.accept(io)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(
                    peer,
                    timeout_ms = timeout.as_millis() as u64,
                    "TLS handshake timed out"
                );
                None
            }
        }
    }
}

/// Whether the handshake picked HTTP/2.
pub(crate) fn is_h2<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}
