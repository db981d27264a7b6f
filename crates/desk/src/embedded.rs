//! The embedded wire: the stub in-process on the built-in trading day, on a
//! free local port, so the binary does the whole job with no server to start.

use tokio::net::TcpListener;

use crate::Error;

/// A running embedded wire.
#[derive(Debug)]
pub struct Embedded {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The fixture's last id the run's filter matches: the run is done
    /// once it is processed.
    pub last_id: u64,
    pub stub: stub::Stub,
}

/// The embedded log's epoch: a hash of the fixture it replays. Its log is
/// a pure function of the fixture (the same payloads under the same ids in
/// every run), so a checkpoint from an earlier run resumes on it; another
/// fixture is another epoch. Only the publish times differ between runs.
fn fixture_epoch(fixture: &str) -> wire::Epoch {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = fixture.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    wire::Epoch::from_random(hash)
}

/// Starts the stub on 127.0.0.1 and publishes the built-in day into it, at
/// `rate` events/s or all at once. The first `ready_through` events (a
/// checkpoint's last id) are published before it serves: a resumed run
/// finds its cursor within the log (one past the head is `cursor_ahead`),
/// and the pace applies to the rest. The run subscribes with `filter`.
pub async fn start(
    rate: Option<f64>,
    clock: stub::Clock,
    ready_through: u64,
    filter: &wire::Filter,
) -> Result<Embedded, Error> {
    let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)?;
    let last_id = (1..)
        .zip(&payloads)
        .filter(|(_, p)| filter.matches_payload(p))
        .last()
        .map_or(0, |(id, _)| id);
    let config = stub::Config::default();
    let log = stub::Log::new(config.retention, fixture_epoch(wire::fixture::DEFAULT));
    let stub = stub::Stub::new(config.clone(), log, clock);
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(Error::Embedded)?;
    let addr = listener.local_addr().map_err(Error::Embedded)?;
    let ready = payloads
        .len()
        .min(usize::try_from(ready_through).unwrap_or(usize::MAX));
    if ready > 0 {
        stub.publish(stub::Source::Fixture, &payloads[..ready])
            .await
            .map_err(|e| Error::Embedded(std::io::Error::other(e)))?;
    }
    let pace = rate.map_or(stub::Pace::NoPace, stub::Pace::Rate);
    tokio::spawn(stub::replay(stub.clone(), payloads, pace));
    tokio::spawn(stub::serve(
        stub::nodelay(listener),
        stub.clone(),
        std::future::pending(),
    ));
    Ok(Embedded {
        url: format!("http://{addr}"),
        last_id,
        stub,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_epoch_is_the_fixtures_and_changes_with_it() {
        let day = super::fixture_epoch(wire::fixture::DEFAULT);
        assert_eq!(day, super::fixture_epoch(wire::fixture::DEFAULT));
        assert_ne!(day, super::fixture_epoch(&wire::fixture::DEFAULT[1..]));
    }
}
