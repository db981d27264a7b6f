//! turmoil's network behind the seams the production code is generic over:
//! `axum::serve::Listener` for the stub, `transport::Connect` for clients.
//! Only this crate depends on turmoil.

use std::io;
use std::net::SocketAddr;

use turmoil::net::{TcpListener, TcpStream};

/// A turmoil listener the stub's accept loop can serve.
pub struct Listener(pub TcpListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Listener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                // Accept errors are transient; a short pause avoids a spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Connects clients through turmoil.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connect;

impl transport::Connect for Connect {
    type Stream = TcpStream;

    async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((host, port)).await
    }
}
