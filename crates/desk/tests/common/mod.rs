//! Shared by desk's integration tests: a wire server on a real port.

use std::sync::Arc;

use stub::{Log, Source, Stub};

/// A `wire-stub` on a free loopback port, on the system clock, holding the
/// first `events` of the built-in day; its address (`127.0.0.1:port`).
pub async fn wire_with_day(events: usize) -> (Stub, String, stub::Clock) {
    let config = stub::Config::default();
    let clock: stub::Clock = Arc::new(cli::system_clock_us);
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        clock.clone(),
    );
    let day = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap();
    stub.publish(Source::Fixture, &day[..events]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
    (stub, addr, clock)
}
