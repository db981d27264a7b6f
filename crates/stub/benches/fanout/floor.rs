//! The floor under any fan-out server on this machine: what one write of
//! one event to one loopback TCP socket costs the writing core, with no
//! HTTP, no runtime, no encoding. A thread pinned to core 0 writes a
//! 230-byte block to each of N sockets in turn (`TCP_NODELAY`, as a
//! server must); a thread pinned to core 1 reads them all. On loopback the
//! writing core also runs the receiving half of TCP (softirq), which on a
//! real network runs on the client's machine.
//!
//! A server that writes every event to every client as it arrives can do
//! no better than this per delivery; below it, only fewer writes help.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::report::Cpu;

fn pin_this_thread(core: usize) {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if let Some(tid) = tid {
        let _ = std::process::Command::new("taskset")
            .args(["-p", "-c", &core.to_string(), &tid])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> f64 {
    crate::report::stat_seconds("/proc/thread-self/stat")
}

pub fn run() {
    for (clients, size) in [(100, 230), (1_000, 230), (1_000, 2_300), (5_000, 230)] {
        let (per_write, busy) = measure(clients, size, Duration::from_secs(3));
        println!(
            "floor: {clients} sockets, {size}-byte writes: {per_write:.2} us of the writer's CPU per write \
             (core 0 busy {:.0}%): at most {:.0} k writes/s per core",
            busy * 100.0,
            1e3 / per_write
        );
    }
}

fn measure(clients: usize, size: usize, window: Duration) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut readers = Vec::with_capacity(clients);
    let mut writers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let reader = TcpStream::connect(addr).expect("connect");
        reader.set_nonblocking(true).expect("nonblocking");
        readers.push(reader);
        let (writer, _) = listener.accept().expect("accept");
        writer.set_nodelay(true).expect("nodelay");
        writers.push(writer);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pin_this_thread(1);
            let mut buf = vec![0u8; 64 << 10];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for r in readers.iter_mut() {
                    let _ = r.read(&mut buf);
                }
            }
        })
    };
    pin_this_thread(0);
    std::thread::sleep(Duration::from_millis(50));
    let block = vec![b'x'; size];
    let (cpu0, core0) = (thread_cpu(), Cpu::core(0));
    let start = crate::now();
    let mut writes = 0u64;
    while start.elapsed() < window {
        for w in writers.iter_mut() {
            w.write_all(&block).expect("write");
            writes += 1;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu, busy) = (thread_cpu() - cpu0, Cpu::core(0).since(&core0));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reading.join();
    (cpu * 1e6 / writes as f64, busy / wall)
}
