//! CPU and memory from `/proc`, and one row of the results table.

use hdrhistogram::Histogram;

/// CPU seconds used so far (user + system), from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Cpu(f64);

impl Cpu {
    /// A process's, from `/proc/<pid>/stat` (all its threads).
    pub fn of(pid: u32) -> Cpu {
        Cpu(stat_seconds(&format!("/proc/{pid}/stat")))
    }

    /// This process's.
    pub fn own() -> Cpu {
        Cpu(stat_seconds("/proc/self/stat"))
    }

    /// A core's busy time, whoever ran on it: softirq time included, which
    /// on loopback is the receiving half of every TCP segment the server
    /// sends.
    pub fn core(core: usize) -> Cpu {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let name = format!("cpu{core} ");
        let Some(line) = text.lines().find(|l| l.starts_with(&name)) else {
            return Cpu(0.0);
        };
        let fields: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let busy: f64 = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .take(8)
            .map(|(_, v)| v)
            .sum();
        Cpu(busy / ticks_per_second())
    }

    pub fn since(&self, earlier: &Cpu) -> f64 {
        self.0 - earlier.0
    }
}

fn ticks_per_second() -> f64 {
    // USER_HZ: 100 on every Linux that matters.
    100.0
}

/// User + system seconds from a `stat` file (a process's or a thread's).
pub fn stat_seconds(path: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses.
    let fields: Vec<&str> = text.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line.
    (field(11) + field(12)) / ticks_per_second()
}

/// A process's write system calls so far (`syscw` in `/proc/<pid>/io`):
/// one per socket write, so deliveries over writes is the batching.
pub fn writes(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A process's resident memory, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One measured run.
pub struct Sample {
    pub offered: f64,
    pub achieved: f64,
    pub published: u64,
    pub latency: Histogram<u64>,
    /// The server process's CPU, in cores.
    pub server_cpu: f64,
    /// Core 0's busy time (the server's core), in cores.
    pub core0_busy: f64,
    pub load_cpu: f64,
    pub server_rss_kib: u64,
    pub out_of_order: u64,
    /// The server's write calls per second.
    pub writes: f64,
}

impl Sample {
    pub fn p(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Deliveries per second of server CPU.
    pub fn efficiency(&self) -> f64 {
        if self.server_cpu > 0.0 {
            self.achieved / self.server_cpu
        } else {
            0.0
        }
    }

    pub fn header() -> &'static str {
        "| server | transport | clients x events/s | offered/s | achieved/s | p50 ms | p99 ms | p99.9 ms | server CPU | core 0 busy | load CPU | deliveries per CPU-s | server RSS MiB | writes/s | deliveries per write | ended |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    }

    pub fn row(&self, server: &str, transport: &str, clients: usize, rate: u64, ended: usize) -> String {
        // `syscw` counts `writev`, hyper's; tungstenite's `send` is not in it.
        let writes = if transport == "sse" && self.writes > 0.0 {
            (si(self.writes), format!("{:.1}", self.achieved / self.writes))
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        format!(
            "| {server} | {transport} | {clients} x {rate} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0}% | {:.0}% | {:.0}% | {} | {:.0} | {} | {} | {ended} |",
            si(self.offered),
            si(self.achieved),
            self.p(0.5),
            self.p(0.99),
            self.p(0.999),
            self.server_cpu * 100.0,
            self.core0_busy * 100.0,
            self.load_cpu * 100.0,
            si(self.efficiency()),
            self.server_rss_kib as f64 / 1024.0,
            writes.0,
            writes.1,
        )
    }
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
