//! Instructions per delivery, counted by valgrind's callgrind: the same
//! for the same binary and inputs whatever else the machine is doing.
//!
//! Each server runs twice under callgrind with the same clients, publishing
//! for `T` and for `2T`; the difference in instructions over the difference
//! in deliveries is the cost of one more delivery, with start-up and the
//! clients' connections cancelled out. User space only: the kernel's TCP
//! work (the larger part on loopback) is not in it.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::load::{Plan, Transport};
use crate::servers::Server;
use crate::{fail, run_load, server_addr, spawn_server, stop};

const CLIENTS: usize = 100;
const RATE: u64 = 100;

pub fn run() {
    let out = std::env::temp_dir().join(format!("tickwire-fanout-callgrind-{}", std::process::id()));
    let mut source = 0u8;
    let servers: &[Server] = match std::env::var("FANOUT_SERVERS").as_deref() {
        Ok("tickwire") => &[Server::Tickwire],
        Ok("axum") => &[Server::Baseline],
        _ => &[Server::Tickwire, Server::Baseline],
    };
    for transport in [Transport::Sse, Transport::Ws] {
        for &server in servers {
            let mut counts = Vec::new();
            for secs in [2u64, 4] {
                source += 1;
                let file = out.with_extension(format!("{source}"));
                let arg = format!("--callgrind-out-file={}", file.display());
                let wrap = ["valgrind", "--tool=callgrind", "--quiet", arg.as_str()];
                let mut child = spawn_server(server, Some(&wrap));
                let addr = server_addr(&mut child);
                let plan = Plan {
                    addr,
                    server_pid: child.id(),
                    transport,
                    clients: CLIENTS,
                    rate: RATE,
                    warmup: Duration::ZERO,
                    window: Duration::from_secs(secs),
                    source: Ipv4Addr::new(127, 0, 3, source),
                    drain: Duration::from_secs(20),
                };
                let line = run_load(&plan, None, server.name());
                stop(child);
                let instructions = totals(&file);
                // `FANOUT_CALLGRIND=keep`: the files stay, for callgrind_annotate.
                if std::env::var("FANOUT_CALLGRIND").as_deref() == Ok("keep") {
                    println!("  kept {}", file.display());
                } else {
                    let _ = std::fs::remove_file(&file);
                }
                counts.push((instructions, line.total));
            }
            let (a, b) = (counts[0], counts[1]);
            let per = (b.0 - a.0) as f64 / (b.1 as f64 - a.1 as f64).max(1.0);
            println!(
                "callgrind, {} over {transport:?}, {CLIENTS} clients x {RATE}/s: {per:.0} instructions per delivery \
                 ({} and {} instructions for {} and {} deliveries)",
                server.name(),
                a.0,
                b.0,
                a.1,
                b.1
            );
        }
    }
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn totals(file: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
        fail(&format!(
            "reading {}: {e} (is valgrind installed?)",
            file.display()
        ))
    });
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(&format!("no totals in {}", file.display())))
}
