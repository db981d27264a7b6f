//! Fan-out: N streaming clients each receiving every event at R events/s,
//! the stub against the baseline a Rust user would write instead (axum's
//! `Sse`, and axum's WebSocket, over `tokio::sync::broadcast`), in the same
//! run.
//!
//! Three processes: this one orchestrates; the server runs in a child
//! pinned to core 0 (`taskset`), the load generator ([`load`]) in another
//! pinned to core 1. Events go in through `POST /events`, one per request;
//! latency is from the publisher's write to the client's read. Server CPU
//! is the server process's user + system time over the measured window;
//! "core 0 busy" is everything that ran on its core, softirqs included
//! (on loopback, the receiving half of every segment the server sends).
//!
//! Run: `cargo bench -p stub --bench fanout` (every row, both servers,
//! SSE and WebSocket; about 6 minutes). Choose with environment variables:
//! - `FANOUT_ROWS=100x1000,1000x1000` (clients x events/s);
//! - `FANOUT_SERVERS=tickwire,axum`, `FANOUT_TRANSPORTS=sse,ws`;
//! - `FANOUT_WINDOW_S=5` (measured seconds, after 2 s of warm-up);
//! - `FANOUT_SATURATION=1`: also find, for SSE, the most deliveries/s each
//!   server holds with p99 under 100 ms (1,000 events/s, clients doubled,
//!   then bisected).
//! - `FANOUT_FLOOR=1`: instead, the floor: what one write of one event to
//!   one loopback socket costs the writing core, with no server at all.
//! - `FANOUT_CALLGRIND=1`: instead, the server's user-space instructions
//!   per delivery under valgrind's callgrind (the difference between two
//!   runs, so start-up and connection set-up cancel out).
//!
//! Without `--bench` (as under `cargo test --benches`) it runs a smoke check:
//! 20 clients of each kind get every event, in order, from both servers.

mod callgrind;
mod floor;
mod load;
mod report;
mod servers;
mod smoke;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use load::{Plan, Transport};
use report::Sample;
use servers::Server;

/// What `wire-stub` allocates with (see its `main.rs`): the server child
/// measured here is the binary's, allocator included.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ROLE_ENV: &str = "TICKWIRE_FANOUT_ROLE";
const PLAN_ENV: &str = "TICKWIRE_FANOUT_PLAN";

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("load") => load_main(),
        Ok(role) => match role.strip_prefix("server:").and_then(Server::parse) {
            Some(server) => {
                exit_when_stdin_closes();
                servers::run(server);
            }
            None => fail(&format!("{ROLE_ENV}={role:?} is not a role")),
        },
        Err(_) => orchestrate(),
    }
}

/// The real clock, for the load generator's timings; the servers never
/// read it.
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn fail(message: &str) -> ! {
    eprintln!("fanout: {message}");
    std::process::exit(2);
}

/// The orchestrator closes a server's stdin to stop it: a clean exit, so a
/// server under callgrind writes its counts.
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_row(row: &str) -> (usize, u64) {
    let parsed = row
        .split_once('x')
        .and_then(|(n, r)| Some((n.trim().parse().ok()?, r.trim().parse().ok()?)));
    parsed.unwrap_or_else(|| fail(&format!("row {row:?} is not CLIENTSxRATE")))
}

fn orchestrate() {
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        return smoke::run();
    }
    if std::env::var("FANOUT_CALLGRIND").is_ok() {
        return callgrind::run();
    }
    if std::env::var("FANOUT_FLOOR").is_ok() {
        return floor::run();
    }
    let rows: Vec<(usize, u64)> = env_list("FANOUT_ROWS", "100x1000,1000x1000,10000x100,10000x1000")
        .iter()
        .map(|r| parse_row(r))
        .collect();
    let servers: Vec<Server> = env_list("FANOUT_SERVERS", "tickwire,axum")
        .iter()
        .map(|s| Server::parse(s).unwrap_or_else(|| fail(&format!("no server {s:?}"))))
        .collect();
    let transports: Vec<Transport> = env_list("FANOUT_TRANSPORTS", "sse,ws")
        .iter()
        .map(|t| match t.as_str() {
            "sse" => Transport::Sse,
            "ws" => Transport::Ws,
            _ => fail(&format!("no transport {t:?}")),
        })
        .collect();
    let window_s: u64 = std::env::var("FANOUT_WINDOW_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!("{}", Sample::header());
    let mut runner = Runner::default();
    for &transport in &transports {
        for &(clients, rate) in &rows {
            for &server in &servers {
                runner.row(server, transport, clients, rate, Duration::from_secs(window_s));
            }
        }
    }
    if std::env::var("FANOUT_SATURATION").is_ok() {
        for &server in &servers {
            runner.saturation(server, Duration::from_secs(window_s));
        }
    }
}

/// Runs the rows one after another, each from its own source address.
#[derive(Default)]
struct Runner {
    runs: u8,
}

impl Runner {
    fn row(
        &mut self,
        server: Server,
        transport: Transport,
        clients: usize,
        rate: u64,
        window: Duration,
    ) -> Line {
        let line = self.measure(server, transport, clients, rate, Duration::from_secs(2), window);
        println!("{}", line.row);
        line
    }

    fn measure(
        &mut self,
        server: Server,
        transport: Transport,
        clients: usize,
        rate: u64,
        warmup: Duration,
        window: Duration,
    ) -> Line {
        self.runs = self.runs.wrapping_add(1);
        // A profiler around the server (`FANOUT_WRAP="perf record -g --"`);
        // the pid measured is then the wrapper's, so the server CPU and RSS
        // columns show the wrapper's, not the server's (use the profile).
        let wrap = std::env::var("FANOUT_WRAP").ok();
        let wrap: Option<Vec<&str>> = wrap.as_deref().map(|w| w.split_whitespace().collect());
        let mut child = spawn_server(server, wrap.as_deref());
        let addr = server_addr(&mut child);
        let plan = Plan {
            addr,
            server_pid: child.id(),
            transport,
            clients,
            rate,
            warmup,
            window,
            source: Ipv4Addr::new(127, 0, 1, self.runs.max(1)),
            drain: Duration::from_secs(1),
        };
        let line = run_load(&plan, Some(1), server.name());
        stop(child);
        line
    }

    /// The most deliveries/s held with p99 under 100 ms, at 1,000
    /// events/s: clients doubled from 1,000 until p99 passes 100 ms, then
    /// bisected between the last good and the first bad count.
    fn saturation(&mut self, server: Server, window: Duration) {
        let warmup = Duration::from_secs(2);
        let rate = 1_000;
        let ok = |l: &Line| l.p99_ms < 100.0 && l.ended == 0;
        let (mut good, mut bad) = (0usize, 0usize);
        let mut n = 1_000;
        while n <= 16_000 {
            let line = self.measure(server, Transport::Sse, n, rate, warmup, window);
            println!("{}", line.row);
            if ok(&line) {
                good = n;
                n *= 2;
            } else {
                bad = n;
                break;
            }
        }
        while bad > 0 && bad - good > bad / 8 {
            let mid = (good + bad) / 2;
            let line = self.measure(server, Transport::Sse, mid, rate, warmup, window);
            println!("{}", line.row);
            if ok(&line) { good = mid } else { bad = mid }
        }
        println!(
            "saturation, {}: {} clients x {rate}/s = {:.2} M deliveries/s with p99 under 100 ms",
            server.name(),
            good,
            good as f64 * rate as f64 / 1e6
        );
    }
}

/// What the orchestrator reads back from a load run.
#[derive(Debug)]
pub struct Line {
    pub row: String,
    pub p99_ms: f64,
    pub ended: usize,
    pub total: u64,
    pub published: u64,
    pub out_of_order: u64,
}

/// Starts a server child: pinned to core 0, or under `wrap` (valgrind).
fn spawn_server(server: Server, wrap: Option<&[&str]>) -> Child {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = pinned(0);
    if let Some(wrap) = wrap {
        cmd = Command::new(wrap[0]);
        cmd.args(&wrap[1..]);
    }
    cmd.arg(exe)
        .env(
            ROLE_ENV,
            format!(
                "server:{}",
                if server == Server::Tickwire {
                    "tickwire"
                } else {
                    "axum"
                }
            ),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("starting the server: {e}")))
}

/// `taskset -c <core>` with the file limit raised, or no pinning where
/// `taskset` is missing.
fn pinned(core: usize) -> Command {
    // `FANOUT_PIN=0`: no pinning (to see what pinning itself costs).
    let pin_wanted = std::env::var("FANOUT_PIN").as_deref() != Ok("0");
    let have_taskset = pin_wanted
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let mut cmd = Command::new("sh");
    let pin = if have_taskset {
        format!("taskset -c {core} ")
    } else {
        String::new()
    };
    cmd.arg("-c")
        .arg(format!("ulimit -n $(ulimit -Hn) 2>/dev/null; exec {pin}\"$0\""));
    cmd
}

fn server_addr(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("server stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("server address");
    line.trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| fail(&format!("the server said {line:?}")))
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    if child.wait_timeout_or_kill(Duration::from_secs(30)).is_none() {
        eprintln!("fanout: the server did not exit; killed");
    }
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        while waited < limit {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(step);
            waited += step;
        }
        let _ = self.kill();
        let _ = self.wait();
        None
    }
}

/// Runs the load generator in a child on core `core` (or unpinned).
fn run_load(plan: &Plan, core: Option<usize>, server: &str) -> Line {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = match core {
        Some(core) => pinned(core),
        None => Command::new("sh"),
    };
    if core.is_none() {
        cmd.arg("-c")
            .arg("ulimit -n $(ulimit -Hn) 2>/dev/null; exec \"$0\"");
    }
    let transport = match plan.transport {
        Transport::Sse => "sse",
        Transport::Ws => "ws",
    };
    let spec = format!(
        "{} {} {transport} {} {} {} {} {} {} {server}",
        plan.addr,
        plan.server_pid,
        plan.clients,
        plan.rate,
        plan.warmup.as_millis(),
        plan.window.as_millis(),
        plan.source,
        plan.drain.as_millis(),
    );
    let out = cmd
        .arg(exe)
        .env(ROLE_ENV, "load")
        .env(PLAN_ENV, spec)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| fail(&format!("starting the load generator: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        fail(&format!("the load generator failed ({}): {text}", out.status));
    }
    let row = text.lines().find(|l| l.starts_with('|')).unwrap_or("").to_owned();
    let nums: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if nums.len() < 5 {
        fail(&format!("the load generator said {text:?}"));
    }
    Line {
        row,
        p99_ms: nums[0],
        ended: nums[1] as usize,
        total: nums[2] as u64,
        published: nums[3] as u64,
        out_of_order: nums[4] as u64,
    }
}

fn load_main() {
    let spec = std::env::var(PLAN_ENV).unwrap_or_default();
    let f: Vec<&str> = spec.split_whitespace().collect();
    if f.len() != 10 {
        fail(&format!("{PLAN_ENV}={spec:?}"));
    }
    let num = |i: usize| {
        f[i].parse::<u64>()
            .unwrap_or_else(|_| fail(&format!("{PLAN_ENV}: {}", f[i])))
    };
    let plan = Plan {
        addr: f[0].parse().unwrap_or_else(|_| fail("address")),
        server_pid: num(1) as u32,
        transport: if f[2] == "ws" {
            Transport::Ws
        } else {
            Transport::Sse
        },
        clients: num(3) as usize,
        rate: num(4),
        warmup: Duration::from_millis(num(5)),
        window: Duration::from_millis(num(6)),
        source: f[7].parse().unwrap_or_else(|_| fail("source")),
        drain: Duration::from_millis(num(8)),
    };
    let outcome = load::run(&plan);
    let s = &outcome.sample;
    println!("{}", s.row(f[9], f[2], plan.clients, plan.rate, outcome.ended));
    println!(
        "RESULT {} {} {} {} {}",
        s.p(0.99),
        outcome.ended,
        outcome.total,
        s.published,
        s.out_of_order
    );
}
