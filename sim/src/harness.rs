//! One run: the stub as a turmoil host (a bounce restarts it with a new
//! log, the same fixture and the same ids), each client a turmoil client,
//! faults applied between steps at their simulated times.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stub::{Log, Pace, Stub};
use transport::Client;

use crate::engine::engine_client;
use crate::net;
use crate::report::{Broke, ClientRun, Entry, Report};
use crate::scenario::{Fault, Scenario, client_config};

/// The simulated clock for publish times and latency, in µs since the epoch.
pub(crate) fn sim_clock_us() -> u64 {
    turmoil::since_epoch().map_or(0, |d| d.as_micros() as u64)
}

/// The simulation's tick: 10 ms. Every tick is a step of every host, so a
/// coarser tick runs faster; timelines are accurate to one tick.
pub const TICK: Duration = Duration::from_millis(10);

/// turmoil gives up after this much simulated time: a run still going then
/// never finished, which is a liveness failure, not a crash.
const SIM_DURATION: Duration = Duration::from_secs(3600);

/// State the harness shares with the simulated hosts.
#[derive(Default)]
struct Shared {
    stub: Option<Stub>,
    streaming: bool,
    drops_before: u64,
    clients: Vec<ClientRun>,
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let payloads: Vec<wire::Payload> = wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap_or_default()
        .into_iter()
        .take(scenario.events)
        .collect();
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_461_800))
        .tick_duration(scenario.tick)
        .simulation_duration(SIM_DURATION)
        // Room for every client's connection in the accept queue.
        .tcp_capacity(64.max(scenario.clients.len() * 4))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5));
    if scenario.random_order {
        builder.enable_random_order();
    }
    let mut sim = builder.build();
    let shared = Rc::new(RefCell::new(Shared {
        streaming: !scenario
            .faults
            .iter()
            .any(|(t, f)| *t == Duration::ZERO && *f == Fault::StreamingOff),
        clients: vec![ClientRun::default(); scenario.clients.len()],
        ..Shared::default()
    }));

    let host_shared = shared.clone();
    let stub_config = scenario.stub.clone();
    let rate = scenario.rate;
    let host_payloads = payloads.clone();
    sim.host("stub", move || {
        let shared = host_shared.clone();
        let config = stub_config.clone();
        let payloads = host_payloads.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind("0.0.0.0:8091").await?;
            let stub = Stub::new(
                config.clone(),
                Log::new(config.retention, wire::Epoch::from_random(0x5eed)),
                Arc::new(sim_clock_us),
            );
            {
                let mut s = shared.borrow_mut();
                if let Some(old) = s.stub.take() {
                    s.drops_before += overflow_drops(&old);
                }
                stub.set_streaming(s.streaming);
                s.stub = Some(stub.clone());
            }
            tokio::spawn(stub::replay(stub.clone(), payloads, Pace::Rate(rate)));
            stub::serve(net::Listener(listener), stub, std::future::pending()).await;
            Ok(())
        }
    });

    for (i, &kind) in scenario.clients.iter().enumerate() {
        let shared = shared.clone();
        if i == 0
            && let Some(kill_at) = scenario.engine
        {
            let config = client_config(kind, scenario.fallback, seed.wrapping_mul(31));
            let total = payloads.len() as u64;
            let delay = scenario.client_delay;
            let dir = std::env::temp_dir().join(format!(
                "tickwire-sim-{}-{seed}-{}",
                scenario.name,
                std::process::id()
            ));
            sim.client("client0", async move {
                tokio::time::sleep(delay).await;
                let run = engine_client(config, total, kill_at, &dir).await;
                let _ = std::fs::remove_dir_all(&dir);
                shared.borrow_mut().clients[0] = run?;
                Ok(())
            });
            continue;
        }
        let total = payloads.len() as u64;
        let slow = if i == 0 { scenario.slow_reader } else { None };
        let delay = scenario.client_delay;
        let mut config = client_config(
            kind,
            scenario.fallback,
            seed.wrapping_mul(31).wrapping_add(i as u64),
        );
        if slow.is_some() {
            // A slow reader with little buffer: the server sees it fall behind.
            config.buffer = 16;
        }
        sim.client(format!("client{i}"), async move {
            tokio::time::sleep(delay).await;
            let mut client = Client::connect(net::Connect, config).map_err(|e| e.to_string())?;
            let mut sub = client.subscribe().ok_or("no subscription")?;
            let mut run = ClientRun {
                kind: Some(kind),
                ..ClientRun::default()
            };
            while (run.ids.len() as u64) < total {
                match sub.next().await {
                    Some(Ok(event)) => {
                        run.ids.push(event.id);
                        run.done_at = turmoil::sim_elapsed();
                        if let Some(d) = slow {
                            tokio::time::sleep(d).await;
                        }
                    }
                    Some(Err(e)) => {
                        run.error = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            let m = client.metrics().snapshot();
            run.timeline = client.timeline().into_iter().map(Entry::Client).collect();
            run.reconnects = m.reconnect_attempts;
            run.fallbacks = m.fallbacks;
            run.upgrades = m.upgrades;
            run.gaps_repaired = m.gaps_repaired;
            run.duplicates = m.duplicates_dropped;
            client.close().await;
            shared.borrow_mut().clients[i] = run;
            Ok(())
        });
    }

    let mut schedule = scenario.faults.clone();
    schedule.sort_by_key(|(t, _)| *t);
    let mut schedule = schedule.into_iter().peekable();
    let mut applied = Vec::new();
    let mut max_connections = 0;
    let mut next_sample = Duration::ZERO;
    let names: Vec<String> = (0..scenario.clients.len())
        .map(|i| format!("client{i}"))
        .collect();
    let crashed = loop {
        while let Some((at, fault)) = schedule.next_if(|(at, _)| *at <= sim.elapsed()) {
            applied.push((sim.elapsed(), fault.clone()));
            let _ = at;
            let targets = |c: &Option<usize>| -> Vec<String> {
                match c {
                    Some(i) => vec![names[*i].clone()],
                    None => names.clone(),
                }
            };
            match &fault {
                Fault::Partition(c) => targets(c).iter().for_each(|n| sim.partition("stub", n.as_str())),
                Fault::Repair(c) => targets(c).iter().for_each(|n| sim.repair("stub", n.as_str())),
                Fault::Hold => names.iter().for_each(|n| sim.hold("stub", n.as_str())),
                Fault::Release => names.iter().for_each(|n| sim.release("stub", n.as_str())),
                Fault::Bounce => sim.bounce("stub"),
                Fault::Crash => sim.crash("stub"),
                Fault::Restart => sim.bounce("stub"),
                Fault::StreamingOff | Fault::StreamingOn => {
                    let on = fault == Fault::StreamingOn;
                    let mut s = shared.borrow_mut();
                    s.streaming = on;
                    if let Some(stub) = &s.stub {
                        stub.set_streaming(on);
                    }
                }
                Fault::Latency(max) => sim.set_max_message_latency((*max).max(Duration::from_millis(5))),
            }
        }
        if sim.elapsed() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(stub) = &shared.borrow().stub {
                max_connections = max_connections.max(stub.connections().len());
            }
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step())) {
            Ok(Ok(true)) => break None,
            Ok(Ok(false)) => {}
            Ok(Err(_)) if sim.elapsed() >= SIM_DURATION => break Some(Broke::OutOfTime(sim.elapsed())),
            Ok(Err(e)) => break Some(Broke::Error(e.to_string())),
            Err(p) => {
                break Some(Broke::Panic(
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                ));
            }
        }
    };
    let s = shared.borrow();
    Report {
        seed,
        clients: s.clients.clone(),
        applied,
        overflow_drops: s.drops_before + s.stub.as_ref().map_or(0, overflow_drops),
        elapsed: sim.elapsed(),
        max_connections,
        crashed,
    }
}

fn overflow_drops(stub: &Stub) -> u64 {
    stub.slow_consumer_drops()
}
