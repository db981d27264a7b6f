//! Where `decision` starts, and what it sends, against the real stub over
//! real TCP: `--from ID` and `--from head`; a wire whose retention moved on
//! is an error naming `--from`, never a silent start elsewhere; a
//! checkpoint refuses a `--from` that disagrees with it; the token reaches
//! a wire that needs one; and, for the binary, a flag wins over its
//! environment variable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use desk::{Ended, Error, Options, RunOptions};
use stub::{Log, Source, Stub};
use transport::{ClientError, Preference, Start};

fn fixture() -> Vec<wire::Payload> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-desk-start-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn stub(config: stub::Config, events: usize) -> (Stub, String) {
    let stub = Stub::new(
        config.clone(),
        Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    stub.publish(Source::Fixture, &fixture()[..events]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
    (stub, url)
}

fn options(url: &str, from: Option<Start>, run: RunOptions) -> Options {
    Options {
        file: desk::FileConfig::default(),
        wire_urls: vec![url.to_owned()],
        transport: Preference::Auto,
        token: None,
        from,
        ca_cert: None,
        run,
        fixture_rate: None,
        clock: Arc::new(|| 1),
    }
}

async fn session(options: Options) -> Result<desk::Session, Error> {
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    desk::start(options, metrics).await
}

async fn run(session: &desk::Session) -> Ended {
    tokio::time::timeout(Duration::from_secs(20), session.run(std::future::pending()))
        .await
        .expect("the run ends")
        .unwrap()
}

fn max(n: u64) -> RunOptions {
    RunOptions {
        max_events: Some(n),
        checkpoint_every: 500,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn from_an_id_or_the_head() {
    let (stub, url) = stub(stub::Config::default(), 20).await;
    let s = session(options(&url, Some(Start::After(wire::Cursor::bare(15))), max(2)))
        .await
        .unwrap();
    assert_eq!(run(&s).await, Ended::Done);
    assert_eq!(s.live.engine().last_event_id(), Some(17));

    // The head is learnt at start; what is published after it comes first.
    let s = session(options(&url, Some(Start::Head), max(1))).await.unwrap();
    stub.publish(Source::Ingest, &fixture()[20..25]).await.unwrap();
    assert_eq!(run(&s).await, Ended::Done);
    assert_eq!(s.live.engine().last_event_id(), Some(21));
}

#[tokio::test]
async fn without_a_checkpoint_or_from_an_expired_wire_is_an_error_naming_from() {
    let config = stub::Config {
        retention: 50,
        ..stub::Config::default()
    };
    let (_stub, url) = stub(config, 200).await;
    let s = session(options(&url, None, max(10))).await.unwrap();
    let ended = run(&s).await;
    let Ended::WireStopped(e @ ClientError::CursorExpired { cursor: 0, .. }) = &ended else {
        panic!("{ended:?}")
    };
    assert!(
        e.to_string().contains("--from head, or --from ID with ID >= 150"),
        "{e}"
    );
    assert_eq!(s.live.engine().last_event_id(), None, "nothing was processed");
}

#[tokio::test]
async fn a_checkpoint_refuses_a_from_that_disagrees_with_it() {
    let (_stub, url) = stub(stub::Config::default(), 30).await;
    let dir = temp("checkpoint");
    let with_state = |n| RunOptions {
        state_dir: Some(dir.join("state")),
        ..max(n)
    };
    let s = session(options(
        &url,
        Some(Start::After(wire::Cursor::bare(3))),
        with_state(5),
    ))
    .await
    .unwrap();
    assert_eq!(run(&s).await, Ended::Done);
    assert_eq!(s.live.engine().last_event_id(), Some(8));
    // The stub's epoch is the checkpoint's now; another one is refused too.
    assert_eq!(s.live.engine().epoch(), Some(wire::Epoch::from_random(0x5eed)));
    let elsewhere = wire::Cursor::new(wire::Epoch::from_random(0xe2), 8);
    for from in [
        Start::After(wire::Cursor::bare(3)),
        Start::Head,
        Start::After(elsewhere),
    ] {
        let err = session(options(&url, Some(from), with_state(1)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::FromWithCheckpoint { last, .. } if last == wire::Cursor::new(wire::Epoch::from_random(0x5eed), 8)),
            "{from}: {err}"
        );
        assert!(err.to_string().contains("drop --from"), "{err}");
    }
    // Its own last id, or none: the checkpoint decides.
    // (each run takes one event: 8, then 9 in the stub's epoch, then none)
    let same = wire::Cursor::new(wire::Epoch::from_random(0x5eed), 9);
    for from in [
        Some(Start::After(wire::Cursor::bare(8))),
        Some(Start::After(same)),
        None,
    ] {
        let s = session(options(&url, from, with_state(1))).await.unwrap();
        assert_eq!(run(&s).await, Ended::Done);
    }
    assert_eq!(
        desk::restore(decision::Config::default(), &with_state(1))
            .unwrap()
            .last_event_id(),
        Some(11)
    );
}

#[tokio::test]
async fn the_token_reaches_a_wire_that_needs_one() {
    let config = stub::Config {
        token: Some("s3cret".into()),
        ..stub::Config::default()
    };
    let (_stub, url) = stub(config, 5).await;
    let s = session(options(&url, None, max(5))).await.unwrap();
    let ended = run(&s).await;
    assert!(
        matches!(
            ended,
            Ended::WireStopped(ClientError::Refused { status: 401, .. })
        ),
        "{ended:?}"
    );
    let mut o = options(&url, None, max(5));
    o.token = Some("s3cret".into());
    let s = session(o).await.unwrap();
    assert_eq!(run(&s).await, Ended::Done);
}

/// The binary: `--transport ws` wins over `TICKWIRE_TRANSPORT=poll` (and
/// `TICKWIRE_TOKEN` reaches nothing here: the embedded wire needs none).
#[test]
fn a_flag_wins_over_its_environment_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decision"))
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--max-events",
            "5",
            "--transport",
            "ws",
        ])
        .env("TICKWIRE_TRANSPORT", "poll")
        .env("TICKWIRE_METRICS_ADDR", "not an address")
        .env_remove("TICKWIRE_CONFIG")
        .env_remove("TICKWIRE_WIRE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(stderr.contains(" over ws ("), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" over ws\n"), "{stdout}");
}
