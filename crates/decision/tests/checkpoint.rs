//! Restart safety: an engine checkpointed part-way through the default day,
//! loaded into a new process's engine and run on, writes exactly the audit
//! log (byte for byte) and ends in exactly the state of one that never stopped.

use std::path::{Path, PathBuf};

use decision::checkpoint::{self, CheckpointError};
use decision::{Config, Engine, FeedHealth, TradingState};

fn events() -> Vec<wire::Event> {
    wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, payload)| wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            prev: None,
            payload,
        })
        .collect()
}

/// Applies events; returns the audit log as JSONL text.
fn feed(engine: &mut Engine, events: &[wire::Event]) -> String {
    let mut out = String::new();
    for e in events {
        for r in engine.on_event(e, FeedHealth::Live) {
            out.push_str(&r.to_json_line());
            out.push('\n');
        }
    }
    out
}

/// A checkpoint's state under the default configuration.
fn restore(loaded: checkpoint::Loaded) -> Engine {
    Engine::restore(Config::default(), loaded.state).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_restart_from_a_checkpoint_writes_the_same_audit_log() {
    let events = events();
    let mut whole = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut whole, &events);
    assert!(expected.lines().count() >= 4);

    let half = events.len() / 2;
    let mut first = Engine::new(Config::default()).unwrap();
    let mut log = feed(&mut first, &events[..half]);
    let dir = scratch("half");
    let path = dir.join("engine.json");
    checkpoint::save(&path, &first).unwrap();
    drop(first);

    let mut second = restore(checkpoint::load(&path).unwrap());
    assert_eq!(second.last_event_id(), Some(half as u64));
    // The wire resumes after the checkpoint's last id.
    let resume = second.last_event_id().unwrap() as usize;
    log.push_str(&feed(&mut second, &events[resume..]));

    assert_eq!(log, expected);
    assert_eq!(second, whole);
    assert_eq!(second.summary(), whole.summary());
    // Only the checkpoint is left: no temporary file.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["engine.json"]);
}

#[test]
fn any_split_point_gives_the_same_log() {
    let events = events();
    let mut whole = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut whole, &events);
    // Every 250 events, including inside the NVDA and TSLA positions
    // (opened at events 1299 and 3591).
    for split in (0..=events.len()).step_by(250).chain([1299, 1300, 3591, 3592]) {
        let mut first = Engine::new(Config::default()).unwrap();
        let mut log = feed(&mut first, &events[..split]);
        let text = checkpoint::to_json(&first);
        let mut second = restore(checkpoint::from_json(Path::new("mem"), &text).unwrap());
        log.push_str(&feed(&mut second, &events[split..]));
        assert_eq!(log, expected, "split at {split}");
        assert_eq!(
            checkpoint::to_json(&second),
            checkpoint::to_json(&whole),
            "split at {split}"
        );
    }
}

#[test]
fn replaying_events_already_applied_repeats_nothing() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    let expected = feed(&mut engine, &events[..2000]);
    let mut restored =
        restore(checkpoint::from_json(Path::new("mem"), &checkpoint::to_json(&engine)).unwrap());
    // A transport that resumes too early: the overlap is skipped.
    assert_eq!(feed(&mut restored, &events[1000..2000]), "");
    assert_eq!(restored.summary().counts.repeated, 1000);
    assert!(!expected.is_empty());
}

#[test]
fn save_replaces_an_older_checkpoint() {
    let events = events();
    let dir = scratch("replace");
    let path = dir.join("engine.json");
    let mut engine = Engine::new(Config::default()).unwrap();
    feed(&mut engine, &events[..10]);
    checkpoint::save(&path, &engine).unwrap();
    feed(&mut engine, &events[10..20]);
    checkpoint::save(&path, &engine).unwrap();
    assert_eq!(
        restore(checkpoint::load(&path).unwrap()).last_event_id(),
        Some(20)
    );
}

#[test]
fn load_errors_name_the_file_and_the_fault() {
    let dir = scratch("errors");
    let missing = dir.join("missing.json");
    let err = checkpoint::load(&missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"version\":1,\"engine\":{\"config\":{}}}").unwrap();
    let err = checkpoint::load(&garbage).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
    assert!(err.to_string().contains("not a checkpoint"), "{err}");

    let engine = Engine::new(Config::default()).unwrap();
    let newer = checkpoint::to_json(&engine).replacen("\"version\":3", "\"version\":4", 1);
    let err = checkpoint::from_json(Path::new("x.json"), &newer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.json: checkpoint version 4, this build reads versions 1 to 3"
    );

    // A checkpoint whose directory does not exist: an IO error naming the temp file.
    let err = checkpoint::save(&dir.join("nope/engine.json"), &engine).unwrap_err();
    assert!(err.to_string().contains("nope/engine.json.tmp"), "{err}");
}

/// A restart under a configuration other than the checkpointed one.
struct Restart {
    /// Events applied under the default configuration before the checkpoint.
    split: usize,
    /// The configuration given at the restart, from the default.
    edit: fn(&mut Config),
    /// `Engine::violations` right after the restore: key, and symbol if any.
    violations: &'static [&'static str],
    /// A denial code that only the new configuration causes.
    denied: &'static str,
    state: TradingState,
}

fn check_restart(case: Restart) {
    let events = events();
    let mut whole = Engine::new(Config::default()).unwrap();
    let uninterrupted = feed(&mut whole, &events);

    let mut first = Engine::new(Config::default()).unwrap();
    feed(&mut first, &events[..case.split]);
    let loaded = checkpoint::from_json(Path::new("mem"), &checkpoint::to_json(&first)).unwrap();
    let mut config = Config::default();
    (case.edit)(&mut config);
    let mut second = Engine::restore(config.clone(), loaded.state).unwrap();
    assert_eq!(second.config(), &config);
    let violations: Vec<String> = second
        .violations()
        .iter()
        .map(|v| match &v.symbol {
            Some(symbol) => format!("{} {symbol}", v.key),
            None => v.key.to_owned(),
        })
        .collect();
    assert_eq!(violations, case.violations);

    let rest = feed(&mut second, &events[case.split..]);
    let code = format!("\"code\":\"{}\"", case.denied);
    assert!(rest.contains(&code), "no {code} after the restart:\n{rest}");
    assert!(!uninterrupted.contains(&code), "{code} without the new config");
    // Reducing orders are never blocked by an exposure limit.
    for line in rest.lines().filter(|l| l.contains("\"reason\":\"max_hold\"")) {
        assert!(line.contains("\"verdict\":\"accept\""), "{line}");
    }
    assert_eq!(second.state(), case.state);
}

#[test]
fn a_restart_applies_the_configuration_given_now() {
    // Flat at event 2,000: the TSLA short (52 shares, ~9,950, at 3,591) is
    // the next opening order.
    check_restart(Restart {
        split: 2000,
        edit: |c| c.risk.max_order_notional = 5_000.0,
        violations: &[],
        denied: "max_order_notional",
        state: TradingState::Active,
    });
    // Holding 10 NVDA at event 1,500: past a limit of 5, yet its close at
    // 1,794 goes through; the TSLA short is denied.
    check_restart(Restart {
        split: 1500,
        edit: |c| c.risk.max_position = 5,
        violations: &["risk.max_position NVDA"],
        denied: "max_position",
        state: TradingState::Active,
    });
    check_restart(Restart {
        split: 1500,
        edit: |c| c.risk.max_gross_exposure = 5_000.0,
        violations: &["risk.max_gross_exposure"],
        denied: "max_gross_exposure",
        state: TradingState::Active,
    });
    // Down 71.06 on the day at 2,000: beyond a limit of 50, the kill
    // switch trips at the next event and the TSLA short is denied.
    check_restart(Restart {
        split: 2000,
        edit: |c| c.risk.daily_loss_limit = 50.0,
        violations: &["risk.daily_loss_limit"],
        denied: "halted",
        state: TradingState::Halted,
    });
    // A strategy setting applies too: no shorts, so no TSLA decision.
    let events = events();
    let mut first = Engine::new(Config::default()).unwrap();
    feed(&mut first, &events[..2000]);
    let mut config = Config::default();
    config.strategy.allow_shorts = false;
    let mut second = Engine::restore(config, first.snapshot().clone()).unwrap();
    assert!(!feed(&mut second, &events[2000..]).contains("TSLA"));
}

/// A version 1 checkpoint (the state and the config then in force) is
/// read; its config is not used.
#[test]
fn a_version_1_checkpoint_is_read_and_its_config_ignored() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    feed(&mut engine, &events[..1500]);
    let mut v1 = serde_json::to_value(engine.snapshot()).unwrap();
    let mut old = Config::default();
    old.risk.max_position = 1;
    v1["config"] = serde_json::to_value(&old).unwrap();
    let text = serde_json::json!({ "version": 1, "engine": v1 }).to_string();

    let loaded = checkpoint::from_json(Path::new("v1.json"), &text).unwrap();
    assert_eq!((loaded.version, loaded.config_ignored()), (1, true));
    assert_eq!(&loaded.state, engine.snapshot());
    let restored = Engine::restore(Config::default(), loaded.state).unwrap();
    assert_eq!(restored.config().risk.max_position, 500);
    assert_eq!(restored, engine);

    let v3 = checkpoint::from_json(Path::new("v3.json"), &checkpoint::to_json(&engine)).unwrap();
    assert_eq!((v3.version, v3.config_ignored()), (3, false));
    assert!(!checkpoint::to_json(&engine).contains("\"config\""));
}

/// Well-typed nonsense (what no engine writes: money past any account, a
/// mark of 0, a share count past any float, counts that do not add up) is
/// refused at load, naming the field; a value an engine can reach is not.
#[test]
fn a_checkpoint_no_engine_could_write_is_refused_naming_the_field() {
    let mut engine = Engine::new(Config::default()).unwrap();
    let day = wire::fixture::parse("default", wire::fixture::DEFAULT).unwrap();
    for (i, payload) in day.into_iter().take(1500).enumerate() {
        let event = wire::Event {
            id: i as u64 + 1,
            pub_us: None,
            prev: None,
            payload,
        };
        engine.on_event(&event, decision::FeedHealth::Live);
    }
    let good: serde_json::Value = serde_json::from_str(&checkpoint::to_json(&engine)).unwrap();
    assert!(
        good["state"]["portfolio"]["positions"]["NVDA"].is_object(),
        "a position by 1500"
    );
    let edited = |pointer: &str, value: serde_json::Value| {
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
        checkpoint::from_json(Path::new("cp.json"), &v.to_string())
    };
    let decisions = good["state"]["counts"]["decisions"].as_u64().unwrap();
    for (pointer, value, field) in [
        (
            "/state/portfolio/cash",
            serde_json::json!(-1e308),
            "portfolio.cash",
        ),
        (
            "/state/portfolio/realised_pnl",
            serde_json::json!(1e308),
            "portfolio.realised_pnl",
        ),
        (
            "/state/portfolio/positions/NVDA/qty",
            serde_json::json!(1_000_000_000_000i64),
            "portfolio.positions.NVDA.qty",
        ),
        (
            "/state/portfolio/positions/NVDA/mark",
            serde_json::json!(0.0),
            "portfolio.positions.NVDA.mark",
        ),
        (
            "/state/market/quotes/AAPL/trusted",
            serde_json::json!(-5.0),
            "market.quotes.AAPL.trusted",
        ),
        (
            "/state/counts/decisions",
            serde_json::json!(decisions + 1),
            "counts.decisions",
        ),
        ("/state/last_event_id", serde_json::Value::Null, "last_event_id"),
    ] {
        match edited(pointer, value) {
            Err(e @ CheckpointError::Nonsense { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with("cp.json: refused: "), "{text}");
                assert!(text.contains(&format!("`{field}`")), "{pointer}: {text}");
            }
            other => panic!("{pointer}: {other:?}"),
        }
    }
    // Cash below zero is reachable (the rules bound exposure, not cash).
    assert!(edited("/state/portfolio/cash", serde_json::json!(-5000.0)).is_ok());
    assert!(
        edited(
            "/state/portfolio/cash",
            good["state"]["portfolio"]["cash"].clone()
        )
        .is_ok()
    );
}

fn epoch(bits: u64) -> wire::Epoch {
    wire::Epoch::from_random(bits)
}

/// Version 3 keeps the wire's epoch beside the last id, and reads back the
/// same; a state whose epoch is unknown writes none.
#[test]
fn the_epoch_round_trips_with_the_last_id() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    feed(&mut engine, &events[..100]);
    assert!(!checkpoint::to_json(&engine).contains("\"epoch\""));
    engine.adopt_epoch(epoch(0xe1));
    // A known epoch is never replaced by adopting another.
    engine.adopt_epoch(epoch(0xe2));
    let text = checkpoint::to_json(&engine);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 3);
    assert_eq!(json["state"]["epoch"], "0000000000e1");
    assert_eq!(json["state"]["last_event_id"], 100);
    let loaded = restore(checkpoint::from_json(Path::new("v3.json"), &text).unwrap());
    assert_eq!(
        (loaded.epoch(), loaded.last_event_id()),
        (Some(epoch(0xe1)), Some(100))
    );
    assert_eq!(loaded, engine);
}

/// A version 2 checkpoint (no epoch, no count of epoch changes) is read
/// with the epoch unknown: the resume cursor is then bare.
#[test]
fn a_version_2_checkpoint_is_read_with_the_epoch_unknown() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    feed(&mut engine, &events[..100]);
    let mut v2: serde_json::Value = serde_json::from_str(&checkpoint::to_json(&engine)).unwrap();
    v2["version"] = 2.into();
    v2["state"]["counts"]
        .as_object_mut()
        .unwrap()
        .remove("epoch_changes");
    let loaded = checkpoint::from_json(Path::new("v2.json"), &v2.to_string()).unwrap();
    assert_eq!(loaded.version, 2);
    let restored = restore(loaded);
    assert_eq!((restored.epoch(), restored.last_event_id()), (None, Some(100)));
    assert_eq!(restored.summary().counts.epoch_changes, 0);
}

/// A move to a new epoch keeps the book, restarts the skip rule there (the
/// new log's ids are below the old last id, yet applied), is counted, and
/// is recorded as one audit line that reads back.
#[test]
fn a_new_epoch_keeps_the_book_and_applies_the_new_logs_ids() {
    let events = events();
    let mut engine = Engine::new(Config::default()).unwrap();
    engine.adopt_epoch(epoch(0xe1));
    feed(&mut engine, &events[..1500]);
    let book = engine.portfolio().clone();
    let change = engine.change_epoch(epoch(0xe1), epoch(0xe2), 0);
    assert_eq!(
        change.to_json_line(),
        "{\"epoch_change\":{\"from\":\"0000000000e1\",\"to\":\"0000000000e2\",\"last_event_id\":1500,\"resume_after\":0}}"
    );
    assert_eq!(
        decision::EpochChange::from_json_line(&change.to_json_line()),
        Some(change)
    );
    assert_eq!(decision::EpochChange::from_json_line("{\"event_id\":3}"), None);
    assert_eq!(
        (engine.epoch(), engine.last_event_id()),
        (Some(epoch(0xe2)), Some(0))
    );
    assert_eq!(engine.portfolio(), &book);
    let before = engine.summary().counts;
    // The new log's event 1 (a tick) is applied, not skipped as repeated.
    let new_log = wire::Event {
        id: 1,
        ..events[1500].clone()
    };
    feed(&mut engine, &[new_log]);
    let after = engine.summary().counts;
    assert_eq!(
        (after.events, after.repeated),
        (before.events + 1, before.repeated)
    );
    assert_eq!(after.epoch_changes, 1);
    let back = restore(checkpoint::from_json(Path::new("m"), &checkpoint::to_json(&engine)).unwrap());
    assert_eq!(back, engine);
}
