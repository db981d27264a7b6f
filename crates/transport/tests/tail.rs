//! Start points and the token, against the real stub over real TCP:
//! `Client::head`, `wire-tail --from head|ID` (and the `--from-id` alias),
//! `TICKWIRE_TOKEN` and the older `WIRE_TOKEN`, and the expired cursor's
//! advice.

use std::sync::Arc;
use std::time::Duration;

use stub::{Config, Log, Source, Stub};
use transport::{Client, ClientConfig, ClientError, TokioConnect};

async fn start(config: Config) -> (Stub, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
    (stub, url)
}

fn fixture() -> Vec<wire::Payload> {
    wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap()
}

/// wire-tail's ids on stdout, and its stderr, with `envs` set (and the
/// token variables cleared otherwise).
async fn tail(args: &[&str], envs: &[(&str, &str)]) -> (Vec<u64>, String, bool) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wire-tail"));
    cmd.args(args)
        .env_remove("TICKWIRE_TOKEN")
        .env_remove("WIRE_TOKEN")
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("wire-tail finishes")
        .unwrap();
    let ids = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    (
        ids,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[tokio::test]
async fn head_is_learnt_from_the_wire() {
    let (stub, url) = start(Config::default()).await;
    stub.publish(Source::Fixture, &fixture()[..12]).await.unwrap();
    let config = ClientConfig::new(&url, Arc::new(|| 1));
    // In the stub's epoch: a start at the head then insists on that log.
    assert_eq!(
        Client::head(TokioConnect, &config).await,
        Ok(wire::Cursor::new(wire::Epoch::from_random(0x5eed), 12))
    );
}

#[tokio::test]
async fn wire_tail_starts_after_an_id_or_at_the_head() {
    let (stub, url) = start(Config::default()).await;
    let f = fixture();
    stub.publish(Source::Fixture, &f[..10]).await.unwrap();
    for flag in ["--from", "--from-id"] {
        let (ids, err, ok) = tail(&["--url", &url, flag, "4", "--max-events", "2"], &[]).await;
        assert!(ok, "{flag}: {err}");
        assert_eq!(ids, [5, 6], "{flag}");
    }
    // At the head: nothing before 11 is printed, whenever 11 is published.
    let publisher = stub.clone();
    let more = f[10..].to_vec();
    let feeder = tokio::spawn(async move {
        for chunk in more.chunks(1) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            publisher.publish(Source::Ingest, chunk).await.unwrap();
        }
    });
    let (ids, err, ok) = tail(&["--url", &url, "--from", "head", "--max-events", "1"], &[]).await;
    feeder.abort();
    assert!(ok, "{err}");
    assert!(ids.len() == 1 && ids[0] > 10, "{ids:?}");
    let (_, err, ok) = tail(&["--url", &url, "--from", "tail"], &[]).await;
    assert!(!ok);
    assert!(
        err.contains("a start point is head, an event id (42) or an epoch and an id"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_comes_from_tickwire_token_or_the_older_wire_token() {
    let (stub, url) = start(Config {
        token: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    stub.publish(Source::Fixture, &fixture()[..3]).await.unwrap();
    let args = ["--url", url.as_str(), "--max-events", "1"];
    for envs in [
        &[("TICKWIRE_TOKEN", "s3cret")][..],
        &[("WIRE_TOKEN", "s3cret")][..],
        &[("TICKWIRE_TOKEN", "s3cret"), ("WIRE_TOKEN", "wrong")][..],
    ] {
        let (ids, err, ok) = tail(&args, envs).await;
        assert!(ok && ids == [1], "{envs:?}: {err}");
    }
    let (_, err, ok) = tail(&args, &[]).await;
    assert!(!ok && err.contains("401"), "{err}");
    // The flag wins over both.
    let (_, err, ok) = tail(
        &["--url", &url, "--max-events", "1", "--token", "wrong"],
        &[("TICKWIRE_TOKEN", "s3cret")],
    )
    .await;
    assert!(!ok && err.contains("401"), "{err}");
}

#[tokio::test]
async fn an_expired_cursor_says_how_to_start_elsewhere() {
    let (stub, url) = start(Config {
        retention: 50,
        ..Config::default()
    })
    .await;
    stub.publish(Source::Fixture, &fixture()[..200]).await.unwrap();
    let mut config = ClientConfig::new(&url, Arc::new(|| 1));
    config.start_after = wire::Cursor::bare(3);
    let mut client = Client::connect(TokioConnect, config).unwrap();
    let mut sub = client.subscribe().unwrap();
    let err = sub.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, ClientError::CursorExpired { cursor: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("--from head, or --from ID with ID >= 150"),
        "{text}"
    );
    client.close().await;
}

/// `--url` repeats: a first URL nothing listens on is failed over from,
/// in either `--url-order`; another order is refused.
#[tokio::test]
async fn wire_tail_takes_several_urls_and_fails_over() {
    let (stub, url) = start(Config::default()).await;
    stub.publish(Source::Ingest, &fixture()[..10]).await.unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for order in ["in-order", "random"] {
        let (ids, stderr, ok) = tail(
            &[
                "--url",
                &dead,
                "--url",
                &url,
                "--url-order",
                order,
                "--transport",
                "sse",
                "--max-events",
                "5",
            ],
            &[],
        )
        .await;
        assert!(ok, "{order}: {stderr}");
        assert_eq!(ids, [1, 2, 3, 4, 5], "{order}: {stderr}");
    }
    let (_, stderr, ok) = tail(&["--url", &url, "--url-order", "sideways"], &[]).await;
    assert!(!ok && stderr.contains("in-order or random"), "{stderr}");
    // One line, no usage block.
    assert!(
        stderr.starts_with("wire-tail: invalid value 'sideways'") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test]
async fn wire_tail_prints_only_the_symbols_and_kinds_asked_for() {
    let (stub, url) = start(Config::default()).await;
    let f = fixture();
    stub.publish(Source::Fixture, &f[..1000]).await.unwrap();
    let filter = wire::Filter::from_query(Some("NVDA,TSLA"), Some("tick")).unwrap();
    let want: Vec<u64> = (1..)
        .zip(&f[..1000])
        .filter(|(_, p)| filter.matches_payload(p))
        .map(|(id, _)| id)
        .take(25)
        .collect();
    let (ids, err, ok) = tail(
        &[
            "--url",
            &url,
            "--symbols",
            "NVDA,TSLA",
            "--kinds",
            "tick",
            "--max-events",
            "25",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(ids, want);
    // A bad kind is a clear error, before anything is asked of the wire.
    let (ids, err, ok) = tail(&["--url", &url, "--kinds", "trade"], &[]).await;
    assert!(!ok && ids.is_empty());
    assert!(
        err.contains("--symbols/--kinds") && err.contains("\"trade\""),
        "{err}"
    );
}
