//! The `wire-stub` binary as a user runs it: a YAML config, a bad key named
//! at start, and a graceful shutdown that ends open streams promptly.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::start_binary as start;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wire-stub"))
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tickwire-stub-{name}-{}.yaml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn an_unknown_config_key_fails_at_start_naming_it() {
    let path = temp_file("bad", "addr: 127.0.0.1:0\nserver:\n  retension: 5\n");
    let out = bin().arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retension"), "{err}");

    for (yaml, named) in [
        (
            "server:\n  batch_events: 0\n",
            "server.batch_events: must be at least 1",
        ),
        ("server:\n  max_page: 0\n", "server.max_page: must be at least 1"),
        (
            "server:\n  heartbeat_ms: 18446744073709551615\n",
            "server.heartbeat_ms: must be at most",
        ),
        (
            "server:\n  write_delay_ms: 1001\n",
            "server.write_delay_ms: must be at most 1000",
        ),
        (
            "server:\n  heartbeat_ms: 500\n  write_delay_ms: 500\n",
            "under heartbeat_ms (500), not 500",
        ),
    ] {
        let path = temp_file("limits", &format!("addr: 127.0.0.1:0\n{yaml}"));
        let out = bin().arg("--config").arg(&path).output().unwrap();
        assert!(!out.status.success(), "{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{yaml}: {err}");
    }

    let out = bin()
        .args(["--addr", "127.0.0.1:0", "--rate=-3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("positive"));
}

#[allow(clippy::disallowed_methods)] // a real deadline for a real process
#[test]
fn sigterm_ends_open_streams_and_exits_promptly() {
    let path = temp_file(
        "ok",
        "addr: 127.0.0.1:0\nno_pace: true\nserver:\n  heartbeat_ms: 60000\n",
    );
    let mut child = bin()
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while !first.ends_with('\n') {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the address line");
        first.push(byte[0] as char);
    }
    let addr = first.trim().rsplit("http://").next().unwrap().to_owned();
    // A cursor at the head (a later one is 409 `cursor_ahead`): the stream
    // replays what the fixture published since, then stays open.
    let mut health = std::net::TcpStream::connect(&addr).unwrap();
    health
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    health.read_to_string(&mut answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let head = serde_json::from_str::<serde_json::Value>(body).unwrap()["head"]
        .as_u64()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(format!("GET /stream?cursor={head} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("text/event-stream"));

    let started = Instant::now();
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The stream ends (EOF) instead of hanging on its 60 s heartbeat.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("the stream did not end: {e}"),
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The status of `GET /events` with this bearer token (or none).
fn status_with(addr: &str, token: Option<&str>) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    stream
        .write_all(
            format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut head = String::new();
    stream.read_to_string(&mut head).unwrap();
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// One name for the token across the binaries: `--token`, then
/// `TICKWIRE_TOKEN`, then the older `WIRE_STUB_TOKEN`, then the file.
#[test]
fn the_token_comes_from_the_flag_then_tickwire_token_then_the_old_name() {
    let file = temp_file("token", "server:\n  token: file\n");
    let file = file.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["--config", file], &[], "file"),
        (&["--config", file], &[("TICKWIRE_TOKEN", "new")], "new"),
        (&[], &[("TICKWIRE_TOKEN", "new")], "new"),
        (&[], &[("WIRE_STUB_TOKEN", "old")], "old"),
        (
            &[],
            &[("TICKWIRE_TOKEN", "new"), ("WIRE_STUB_TOKEN", "old")],
            "new",
        ),
        (
            &["--token", "flag"],
            &[("TICKWIRE_TOKEN", "new"), ("WIRE_STUB_TOKEN", "old")],
            "flag",
        ),
    ];
    for (args, env, want) in cases {
        let (mut child, addr) = start(args, env);
        assert_eq!(status_with(&addr, None), 401, "{env:?}");
        for (_, other) in env.iter().filter(|(_, v)| *v != want) {
            assert_eq!(
                status_with(&addr, Some(other)),
                401,
                "{other} must not open {env:?}"
            );
        }
        assert_eq!(status_with(&addr, Some(want)), 200, "{args:?} {env:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// A user's mistake is one line on stderr, `wire-stub: ...`, and exit 2:
/// no `Error:` chain, no usage block; under --log-json a JSON line.
#[test]
fn a_busy_port_or_a_bad_key_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let bad = temp_file("one-line", "server:\n  retension: 5\n");
    for args in [
        vec!["--addr", &addr, "--no-fixture"],
        vec!["--config", bad.to_str().unwrap()],
        vec!["--no-such-flag"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("wire-stub: "), "{args:?}: {err}");
    }
    let out = bin().args(["--addr", &addr, "--no-fixture"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("wire-stub: binding {addr}: ")), "{err}");
    let out = bin()
        .args(["--addr", &addr, "--no-fixture", "--log-json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(line["level"], "ERROR", "{line}");
}

/// Under --log-json the `listening on` line is a JSON log line too.
#[test]
fn log_json_makes_the_listening_line_json() {
    let mut child = bin()
        .args(["--addr", "127.0.0.1:0", "--no-fixture", "--log-json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let listening = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "no listening line"
        );
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if json["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("wire-stub listening on http://"))
        {
            break json;
        }
    };
    assert!(
        listening["fields"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
