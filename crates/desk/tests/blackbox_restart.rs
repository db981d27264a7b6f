//! The three binaries as users run them, across a wire restart: publish,
//! restart `wire-stub`, publish different events, resume with the old
//! cursor. Without `--data-dir` the restart is a new epoch: SSE, WebSocket
//! and polling each answer with the reset (409 `epoch_changed` when
//! polling), and `wire-tail` and `decision` exit 3 saying what happened.
//! With `--data-dir` the same restart resumes exactly after the cursor.
//!
//! `wire-stub` and `wire-tail` are found beside `decision` in the target
//! directory (`cargo test --workspace` builds all three).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_decision")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo test --workspace)",
        path.display()
    );
    path
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickwire-blackbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Wire {
    child: Child,
    addr: String,
}

impl Drop for Wire {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Wire {
    fn start(data_dir: Option<&Path>) -> Wire {
        let mut cmd = Command::new(sibling("wire-stub"));
        cmd.args(["--addr", "127.0.0.1:0", "--no-fixture"])
            .env_remove("TICKWIRE_TOKEN")
            .env_remove("WIRE_STUB_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(dir) = data_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (mut first, mut byte) = (String::new(), [0u8; 1]);
        while !first.ends_with('\n') {
            assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the address line");
            first.push(byte[0] as char);
        }
        let addr = first.trim().rsplit("http://").next().unwrap().to_owned();
        Wire { child, addr }
    }

    /// SIGTERM, as systemd stops it, and wait for the exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(self.child.wait().unwrap().success());
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes news items whose headlines are `<tag>-<i>`.
    fn publish(&self, tag: &str, n: usize) -> Value {
        let items: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"kind":"news","symbol":"AAPL","headline":"{tag}-{i}","provider":"test","score":0.1,"ts_utc":"2026-03-02T14:30:00Z"}}"#
                )
            })
            .collect();
        let (status, _, body) = self.request(
            "POST",
            "/events",
            &[("Content-Type", "application/json")],
            &format!("[{}]", items.join(",")),
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// One request; the status, the head (status line and headers) and the
    /// body read until `until` appears in it (or the connection closes).
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        until: Option<&str>,
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if until.is_none() {
            req.push_str("Connection: close\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let (Some(until), Some((_, b))) = (until, text.split_once("\r\n\r\n"))
                && b.contains(until)
            {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        self.exchange(method, path, headers, body, None)
    }

    fn epoch(&self) -> String {
        let (_, _, body) = self.request("GET", "/healthz", &[], "");
        let health: Value = serde_json::from_str(&body).unwrap();
        health["epoch"].as_str().unwrap().to_owned()
    }

    /// The first WebSocket text message after `path`'s upgrade.
    fn first_ws_message(&self, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        // A server frame: FIN + opcode, then an unmasked length.
        let mut h = [0u8; 2];
        s.read_exact(&mut h).unwrap();
        assert_eq!(h[0] & 0x0f, 1, "a text frame");
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).unwrap();
                u16::from_be_bytes(l) as usize
            }
            127 => panic!("a first message this long is not a reset or an event"),
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        String::from_utf8(payload).unwrap()
    }
}

fn wire_tail(url: &str, transport: &str, from: &str, max: &str) -> Output {
    Command::new(sibling("wire-tail"))
        .args([
            "--url",
            url,
            "--transport",
            transport,
            "--from",
            from,
            "--max-events",
            max,
        ])
        .env_remove("RUST_LOG")
        .env_remove("TICKWIRE_TOKEN")
        .output()
        .unwrap()
}

fn decision(url: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--wire-url", url, "--metrics-addr", "127.0.0.1:0"])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("TICKWIRE_CONFIG")
        .env_remove("TICKWIRE_WIRE_URL")
        .output()
        .unwrap()
}

fn checkpoint(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state/checkpoint.json")).unwrap()).unwrap()
}

#[test]
fn a_restart_without_a_journal_is_a_reset_on_every_transport_and_both_clients_stop() {
    let dir = temp("nojournal");
    let wire = Wire::start(None);
    wire.publish("before", 5);
    let e1 = wire.epoch();
    let run = decision(&wire.url(), &dir, &["--max-events", "5"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(checkpoint(&dir)["state"]["epoch"], e1.as_str());
    wire.stop();

    let wire = Wire::start(None);
    let answer = wire.publish("after", 8);
    let e2 = wire.epoch();
    assert_ne!(e1, e2, "a restart without a journal is a new epoch");
    assert_eq!(
        (answer["first_id"].as_u64(), answer["epoch"].as_str()),
        (Some(1), Some(e2.as_str()))
    );
    let old = format!("{e1}-5");

    // SSE: by query and by Last-Event-ID, the reset is the first message.
    for (path, headers) in [
        (format!("/stream?cursor={old}"), vec![]),
        ("/stream".to_owned(), vec![("Last-Event-ID", old.as_str())]),
    ] {
        let (status, head, body) = wire.exchange("GET", &path, &headers, "", Some("\n\n"));
        assert_eq!(status, 200, "{head}");
        let first = body.split("\n\n").find(|b| b.contains("event:")).unwrap();
        assert!(
            first.starts_with("event: reset\n") || first.contains("\nevent: reset\n"),
            "{body}"
        );
        assert!(
            first.contains(&format!(r#""from":"{e1}""#)) && first.contains(&format!(r#""epoch":"{e2}""#)),
            "{first}"
        );
    }
    // WebSocket: the first message is the reset.
    let ws: Value = serde_json::from_str(&wire.first_ws_message(&format!("/ws?cursor={old}"))).unwrap();
    assert_eq!(
        (ws["type"].as_str(), ws["from"].as_str(), ws["epoch"].as_str()),
        (Some("reset"), Some(e1.as_str()), Some(e2.as_str()))
    );
    // Polling: 409 epoch_changed.
    let (status, _, body) = wire.request("GET", &format!("/events?cursor={old}"), &[], "");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("epoch_changed"), "{body}");

    // wire-tail on each transport: exit 3, one line saying what happened,
    // and none of the new epoch's events printed.
    for transport in ["sse", "ws", "poll"] {
        let out = wire_tail(&wire.url(), transport, &old, "100");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{transport}: {stderr}");
        assert!(stderr.contains("changed epoch"), "{transport}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{transport}: printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // decision on its checkpoint: exit 3, naming the checkpoint and the flag;
    // the checkpoint is left as it was.
    let before = checkpoint(&dir);
    let run = decision(&wire.url(), &dir, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("checkpoint.json") && stderr.contains("--accept-new-epoch"),
        "{stderr}"
    );
    assert_eq!(checkpoint(&dir), before);
}

#[test]
fn a_restart_with_a_journal_resumes_exactly_after_the_cursor() {
    let dir = temp("journal");
    let data = dir.join("wire");
    let wire = Wire::start(Some(&data));
    wire.publish("before", 5);
    let e1 = wire.epoch();
    let run = decision(&wire.url(), &dir, &["--max-events", "5"]);
    assert!(run.status.success(), "{run:?}");
    wire.stop();

    let wire = Wire::start(Some(&data));
    assert_eq!(wire.epoch(), e1, "the journal keeps its epoch");
    let answer = wire.publish("after", 8);
    assert_eq!(answer["first_id"].as_u64(), Some(6));
    let old = format!("{e1}-5");

    let (status, _, body) = wire.exchange(
        "GET",
        &format!("/stream?cursor={old}"),
        &[],
        "",
        Some("caught_up"),
    );
    assert_eq!(status, 200);
    assert!(!body.contains("event: reset"), "{body}");
    let ids: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    let expected: Vec<String> = (6..=13).map(|i| format!("{e1}-{i}")).collect();
    assert_eq!(ids, expected);
    let ws: Value = serde_json::from_str(&wire.first_ws_message(&format!("/ws?cursor={old}"))).unwrap();
    assert_eq!((ws["type"].as_str(), ws["id"].as_u64()), (Some("event"), Some(6)));
    let (status, _, body) = wire.request("GET", &format!("/events?cursor={old}"), &[], "");
    assert_eq!(status, 200);
    let page: Value = serde_json::from_str(&body).unwrap();
    let got: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, (6..=13).collect::<Vec<_>>());

    for transport in ["sse", "ws", "poll"] {
        let out = wire_tail(&wire.url(), transport, &old, "8");
        assert!(
            out.status.success(),
            "{transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<u64> = lines.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (6..=13).collect::<Vec<_>>(), "{transport}");
        assert!(
            lines
                .iter()
                .all(|e| e["headline"].as_str().unwrap().starts_with("after-"))
        );
    }

    let run = decision(&wire.url(), &dir, &["--max-events", "8"]);
    assert!(run.status.success(), "{run:?}");
    let cp = checkpoint(&dir);
    assert_eq!(
        (
            cp["state"]["epoch"].as_str(),
            cp["state"]["last_event_id"].as_u64()
        ),
        (Some(e1.as_str()), Some(13))
    );
}
