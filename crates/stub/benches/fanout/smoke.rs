//! The benchmark's check under `cargo test --benches`.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::load::{Plan, Transport};
use crate::servers::Server;
use crate::{run_load, server_addr, spawn_server, stop};

/// Under `cargo test --benches`: both servers, both transports, 20 clients
/// at 200 events/s for a second: every client gets every event, in order.
pub fn run() {
    let mut runs = 0u8;
    for server in [Server::Tickwire, Server::Baseline] {
        for transport in [Transport::Sse, Transport::Ws] {
            runs += 1;
            let mut child = spawn_server(server, None);
            let addr = server_addr(&mut child);
            let plan = Plan {
                addr,
                server_pid: child.id(),
                transport,
                clients: 20,
                rate: 200,
                warmup: Duration::ZERO,
                window: Duration::from_secs(1),
                source: Ipv4Addr::new(127, 0, 2, runs),
                drain: Duration::from_secs(10),
            };
            let line = run_load(&plan, None, server.name());
            stop(child);
            assert!(
                line.published > 100,
                "{}: published {}",
                server.name(),
                line.published
            );
            assert_eq!(
                line.total,
                line.published * 20,
                "{} over {transport:?}: every client gets every event",
                server.name()
            );
            assert_eq!(line.out_of_order, 0, "{} over {transport:?}", server.name());
            println!("{}", line.row);
        }
    }
}
