//! The embedded wire: the stub in-process on the built-in trading day, on a
//! free local port, so the binary does the whole job with no server to start.

use tokio::net::TcpListener;

use crate::Error;

/// A running embedded wire.
#[derive(Debug)]
pub struct Embedded {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The fixture's last id: the run is done once it is processed.
    pub last_id: u64,
    pub stub: stub::Stub,
}

/// Starts the stub on 127.0.0.1 and publishes the built-in day into it, at
/// `rate` events/s or all at once.
pub async fn start(rate: Option<f64>, clock: stub::Clock) -> Result<Embedded, Error> {
    let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)?;
    let last_id = payloads.len() as u64;
    let config = stub::Config::default();
    let stub = stub::Stub::new(
        config.clone(),
        stub::Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        clock,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(Error::Embedded)?;
    let addr = listener.local_addr().map_err(Error::Embedded)?;
    let pace = rate.map_or(stub::Pace::NoPace, stub::Pace::Rate);
    tokio::spawn(stub::replay(stub.clone(), payloads, pace));
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
    Ok(Embedded {
        url: format!("http://{addr}"),
        last_id,
        stub,
    })
}
