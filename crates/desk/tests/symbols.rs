//! `strategy.symbols`: the engine trades only those symbols, and its
//! decisions do not depend on where the others were left out. Subscribed
//! over real TCP to just those symbols (the wire filters), on each
//! transport, it writes the audit log of the engine given the whole day
//! (the engine filters), which is the whole day's decisions on them.

use std::sync::Arc;
use std::time::Duration;

use decision::{Config, Engine};
use desk::{Ended, Live, RunOptions};
use stub::{Log, Pace, Stub};
use transport::{ClientConfig, TokioConnect, Transport};

fn fixture() -> Vec<wire::Payload> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap()
}

fn traded() -> Config {
    let mut config = Config::default();
    // NVDA only: on the built-in day NVDA and TSLA trade (4 decisions each),
    // so TSLA's must be passed over for this to hold.
    config.strategy.symbols = ["NVDA".to_string()].into();
    config
}

/// The audit log of `config`'s engine given every event of the day.
fn full_day_audit(config: Config) -> String {
    decision::offline_audit(config, &fixture()).unwrap()
}

#[test]
fn the_engine_passes_over_symbols_it_does_not_trade() {
    let audit = full_day_audit(traded());
    assert!(audit.lines().count() >= 2, "NVDA trades on the day:\n{audit}");
    for line in audit.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["symbol"].as_str().unwrap() == "NVDA", "{line}");
    }
    // The whole day's decisions on those symbols.
    let all = full_day_audit(Config::default());
    let restricted: String = all
        .lines()
        .filter(|l| l.contains("\"symbol\":\"NVDA\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        all.lines().count() > restricted.lines().count(),
        "other symbols trade on the day too, or this shows nothing:\n{all}"
    );
    assert_eq!(audit, restricted);
}

#[tokio::test]
async fn subscribed_to_its_symbols_the_engine_writes_the_full_days_audit_log() {
    let config = traded();
    let expected = full_day_audit(config.clone());
    let filter = config.strategy.filter();
    let matching: Vec<u64> = (1..)
        .zip(fixture())
        .filter(|(_, p)| filter.matches_payload(p))
        .map(|(id, _)| id)
        .collect();
    for kind in [Transport::Sse, Transport::Ws, Transport::Poll] {
        let stub_config = stub::Config::default();
        let stub = Stub::new(
            stub_config.clone(),
            Log::new(stub_config.retention, wire::Epoch::from_random(0x5eed)),
            Arc::new(|| 1),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(stub::replay(stub.clone(), fixture(), Pace::Rate(20_000.0)));
        tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
        let dir = std::env::temp_dir().join(format!(
            "tickwire-symbols-{}-{}",
            kind.as_str(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut client = ClientConfig::new(&url, Arc::new(|| 2));
        client.policy.transport = kind;
        client.poll_wait = Duration::from_millis(200);
        client.filter = filter.clone();
        let options = RunOptions {
            audit_log: Some(dir.join("audit.jsonl")),
            state_dir: Some(dir.join("state")),
            until_id: matching.last().copied(),
            checkpoint_every: 1000,
            ..RunOptions::default()
        };
        let live = Live::new(Engine::new(config.clone()).unwrap());
        let ended = tokio::time::timeout(
            Duration::from_secs(60),
            desk::run(TokioConnect, client, &live, &options, std::future::pending()),
        )
        .await
        .expect("the run finishes")
        .unwrap();
        assert_eq!(ended, Ended::Done, "{kind:?}");
        let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
        assert_eq!(audit, expected, "{kind:?}");
        let m = live.wire_metrics().unwrap().snapshot();
        assert_eq!(
            m.messages_received,
            matching.len() as u64,
            "{kind:?}: only the traded symbols crossed"
        );
        assert_eq!(
            live.engine().summary().counts.events,
            matching.len() as u64,
            "{kind:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The binary on the built-in day with `strategy.symbols` in its config:
/// it subscribes to them, ends when the last of theirs is processed (not
/// waiting for an event it will never be sent), and writes the same audit.
#[test]
fn the_decision_binary_subscribes_to_strategy_symbols_and_finishes_the_day() {
    let dir = std::env::temp_dir().join(format!("tickwire-symbols-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "strategy:\n  symbols: [NVDA]\n").unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_decision"))
        .arg("--config")
        .arg(&config)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
            panic!("the day did not finish in 60 s")
        }
    };
    assert!(status.success(), "{status}");
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit, full_day_audit(traded()));
    let _ = std::fs::remove_dir_all(&dir);
}
