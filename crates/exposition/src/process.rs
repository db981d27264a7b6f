//! The `process_*` metrics every Prometheus exporter has, read from /proc
//! at each scrape (Linux only; elsewhere there are none, rather than
//! zeros that would lie). The names, units and sources are those of the Go
//! client's process collector, so dashboards made for it work: CPU and the
//! start time in clock ticks of 1/100 s (the kernel's USER_HZ), memory in
//! bytes, the soft limit of open files.

use prometheus_client::registry::Registry;

/// Adds the process collector to `registry` (nothing off Linux).
pub fn register(registry: &mut Registry) {
    #[cfg(target_os = "linux")]
    registry.register_collector(Box::new(linux::Process));
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
}

/// The figures of one read, each absent when its file could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Clock ticks per second in /proc (USER_HZ, 100 on every Linux ABI).
const TICKS: f64 = 100.0;

/// The figures from the texts of /proc/self/stat, /proc/self/status,
/// /proc/self/limits and /proc/stat, and the count of /proc/self/fd.
pub fn parse(stat: &str, status: &str, limits: &str, system: &str, open_fds: Option<u64>) -> Figures {
    // After the command's closing parenthesis: field 3 (state) onwards.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    let boot = system
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    Figures {
        cpu_seconds: field(14).zip(field(15)).map(|(u, s)| (u + s) as f64 / TICKS),
        resident_bytes: kib("VmRSS:"),
        virtual_bytes: field(23),
        open_fds,
        max_fds,
        start_time_seconds: boot.zip(field(22)).map(|(b, t)| b as f64 + t as f64 / TICKS),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    use super::{Figures, parse};

    #[derive(Debug)]
    pub(super) struct Process;

    fn read(path: &str) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub(super) fn figures() -> Figures {
        let fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        parse(
            &read("/proc/self/stat"),
            &read("/proc/self/status"),
            &read("/proc/self/limits"),
            &read("/proc/stat"),
            fds,
        )
    }

    impl Collector for Process {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let f = figures();
            if let Some(v) = f.cpu_seconds {
                let c = ConstCounter::new(v);
                c.encode(encoder.encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds",
                    None,
                    c.metric_type(),
                )?)?;
            }
            let gauges = [
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    f.resident_bytes.map(|v| v as f64),
                ),
                (
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes",
                    f.virtual_bytes.map(|v| v as f64),
                ),
                (
                    "process_open_fds",
                    "Number of open file descriptors",
                    f.open_fds.map(|v| v as f64),
                ),
                (
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    f.max_fds.map(|v| v as f64),
                ),
                (
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds",
                    f.start_time_seconds,
                ),
            ];
            for (name, help, value) in gauges {
                if let Some(v) = value {
                    let g = ConstGauge::new(v);
                    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
                }
            }
            Ok(())
        }
    }

    #[cfg(test)]
    #[test]
    fn this_process_has_every_figure() {
        let f = figures();
        assert!(f.cpu_seconds.is_some_and(|v| v >= 0.0), "{f:?}");
        assert!(f.resident_bytes.is_some_and(|v| v > 0), "{f:?}");
        assert!(f.virtual_bytes >= f.resident_bytes, "{f:?}");
        assert!(f.open_fds.is_some_and(|v| v >= 3), "{f:?}");
        assert!(f.max_fds >= f.open_fds, "{f:?}");
        // Started after 2020, and not in the future of the boot.
        assert!(f.start_time_seconds.is_some_and(|v| v > 1.58e9), "{f:?}");
    }
}
