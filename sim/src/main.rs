//! The simulation runner behind `cargo xtask sim`: `list`, `run` over
//! scenarios and seeds, `replay` of one seed with its full trace.

use std::time::Instant;

use sim::check::{Class, check};
use sim::scenarios;

const USAGE: &str = "usage: sim list
       sim run [--scenario NAME|all] [--seeds N | --seed S]
       sim replay --scenario NAME --seed S";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("list") => {
            for s in scenarios::all() {
                println!(
                    "{:<26} {} clients, {} events, {} faults",
                    s.name,
                    s.clients.len(),
                    s.events,
                    s.faults.len()
                );
            }
            0
        }
        Some("run") => run(&args[1..]),
        Some("replay") => replay(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn selected(args: &[String]) -> Result<Vec<sim::Scenario>, String> {
    match flag(args, "--scenario") {
        None | Some("all") => Ok(scenarios::all()),
        Some(name) => scenarios::by_name(name)
            .map(|s| vec![s])
            .ok_or(format!("no scenario {name:?}: see `sim list`")),
    }
}

#[allow(clippy::disallowed_methods)] // wall time for the speed report only
fn run(args: &[String]) -> i32 {
    let scenarios = match selected(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let seeds: Vec<u64> = match (flag(args, "--seed"), flag(args, "--seeds")) {
        (Some(s), _) => vec![s.parse().unwrap_or(0)],
        (None, n) => (0..n.and_then(|n| n.parse().ok()).unwrap_or(8)).collect(),
    };
    let mut worst: Option<Class> = None;
    println!("| scenario | runs | failures | reconnects | fallbacks | worst catch-up ms | sim s / wall s |");
    println!("|---|---|---|---|---|---|---|");
    for sc in &scenarios {
        let (mut failures, mut reconnects, mut fallbacks, mut worst_done) = (0, 0, 0, 0u128);
        let started = Instant::now();
        let mut simulated = 0.0;
        for &seed in &seeds {
            eprintln!("{} seed {seed}: faults {:?}", sc.name, sc.faults);
            let report = sim::run(sc, seed);
            simulated += report.elapsed.as_secs_f64();
            for c in &report.clients {
                reconnects += c.reconnects;
                fallbacks += c.fallbacks;
                worst_done = worst_done.max(c.done_at.map_or(0, |d| d.as_millis()));
            }
            if let Err(v) = check(sc, &report) {
                failures += 1;
                eprintln!("FAIL {} seed {seed}: {v}", sc.name);
                eprintln!(
                    "  replay: cargo xtask sim replay --scenario {} --seed {seed}",
                    sc.name
                );
                worst = Some(match (worst, v.class) {
                    (Some(Class::Crash), _) | (_, Class::Crash) => Class::Crash,
                    (Some(Class::Safety), _) | (_, Class::Safety) => Class::Safety,
                    _ => Class::Liveness,
                });
            }
        }
        let wall = started.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {failures} | {reconnects} | {fallbacks} | {worst_done} | {:.0} |",
            sc.name,
            seeds.len(),
            simulated / wall.max(1e-9)
        );
    }
    worst.map_or(0, Class::exit_code)
}

fn replay(args: &[String]) -> i32 {
    let (Some(name), Some(seed)) = (
        flag(args, "--scenario"),
        flag(args, "--seed").and_then(|s| s.parse().ok()),
    ) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let Some(sc) = scenarios::by_name(name) else {
        eprintln!("no scenario {name:?}");
        return 2;
    };
    let report = sim::run(&sc, seed);
    print!("{}", report.trace());
    match check(&sc, &report) {
        Ok(()) => {
            println!("ok: every invariant holds (trace hash {:016x})", report.hash());
            0
        }
        Err(v) => {
            println!("FAIL: {v}");
            v.class.exit_code()
        }
    }
}
