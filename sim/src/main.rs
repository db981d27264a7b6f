//! The simulation runner behind `cargo xtask sim`: `list`, `run` over
//! scenarios and seeds, `replay` of one seed with its full trace.

use std::time::Instant;

use sim::check::{Class, check};
use sim::scenarios;

const USAGE: &str = "usage: sim list
       sim run [--scenario NAME|all] [--seeds N | --seed S] [--jobs J]
       sim replay --scenario NAME --seed S";

/// Failing seeds are appended here; `cargo test -p sim` replays them.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus.txt");

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
        Some(name) => scenarios::for_seed(name, 0)
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
    let jobs: usize = flag(args, "--jobs")
        .and_then(|j| j.parse().ok())
        .unwrap_or(2)
        .max(1);
    let total = scenarios.len() * seeds.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut worst: Option<Class> = None;
    let mut coverage_failed = false;
    let mut rows = Vec::new();
    let (mut sim_total, mut wall_total) = (0.0, 0.0);
    for sc in &scenarios {
        for &seed in &seeds {
            eprintln!(
                "{} seed {seed}: {} clients, faults {:?}",
                sc.name,
                sc.clients.len(),
                sc.faults
            );
        }
        let started = Instant::now();
        // Seeds in parallel, `jobs` at a time; each run is single-threaded.
        let results: Vec<(u64, sim::Report, Result<(), sim::check::Violation>)> =
            std::thread::scope(|scope| {
                let chunks: Vec<Vec<u64>> = (0..jobs)
                    .map(|j| seeds.iter().copied().skip(j).step_by(jobs).collect())
                    .collect();
                let handles: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        let done = &done;
                        scope.spawn(move || {
                            chunk
                                .into_iter()
                                .map(|seed| {
                                    let sc = &scenarios::for_seed(sc.name, seed).unwrap_or_else(|| sc.clone());
                                    let report = sim::run(sc, seed);
                                    let verdict = check(sc, &report);
                                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                    eprint!("\r[{n}/{total}] {} ", "#".repeat(n * 30 / total.max(1)));
                                    (seed, report, verdict)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all: Vec<_> = handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect();
                all.sort_by_key(|(seed, _, _)| *seed);
                all
            });
        eprintln!();
        let wall = started.elapsed().as_secs_f64();
        let (mut failures, mut reconnects, mut fallbacks, mut worst_done, mut simulated) =
            (0, 0, 0, 0u128, 0.0);
        for (seed, report, verdict) in &results {
            simulated += report.elapsed.as_secs_f64();
            for c in &report.clients {
                reconnects += c.reconnects;
                fallbacks += c.fallbacks;
                worst_done = worst_done.max(c.done_at.map_or(0, |d| d.as_millis()));
            }
            if let Err(v) = verdict {
                failures += 1;
                eprintln!("FAIL {} seed {seed}: {v}", sc.name);
                eprintln!(
                    "  replay: cargo xtask sim replay --scenario {} --seed {seed}",
                    sc.name
                );
                record_failure(sc.name, *seed);
                worst = Some(match (worst, v.class) {
                    (Some(Class::Crash), _) | (_, Class::Crash) => Class::Crash,
                    (Some(Class::Safety), _) | (_, Class::Safety) => Class::Safety,
                    _ => Class::Liveness,
                });
            }
        }
        if let Some(path) = sc.sometimes
            && !results.iter().any(|(_, report, _)| path.hit(sc, report))
        {
            failures += 1;
            eprintln!(
                "FAIL {}: {path:?} never happened in {} seeds (sometimes coverage)",
                sc.name,
                results.len()
            );
            worst.get_or_insert(Class::Liveness);
            coverage_failed = true;
        }
        sim_total += simulated;
        wall_total += wall * jobs as f64;
        rows.push(format!(
            "| {} | {} | {failures} | {reconnects} | {fallbacks} | {worst_done} | {:.0} |",
            sc.name,
            results.len(),
            simulated / (wall * jobs as f64).max(1e-9)
        ));
    }
    println!(
        "| scenario | runs | failures | reconnects | fallbacks | worst catch-up ms | sim s / wall s / core |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!(
        "tick {} ms (many_clients: 50 ms); {:.0} simulated s in {:.1} wall s on {jobs} jobs: {:.0} sim s / wall s / core",
        sim::TICK.as_millis(),
        sim_total,
        wall_total / jobs as f64,
        sim_total / wall_total.max(1e-9)
    );
    if coverage_failed && worst == Some(Class::Liveness) {
        // Only coverage failed: its own exit code.
        return 6;
    }
    worst.map_or(0, Class::exit_code)
}

/// Appends a failing seed to the corpus (once).
fn record_failure(scenario: &str, seed: u64) {
    let line = format!("{scenario} {seed}");
    let corpus = std::fs::read_to_string(CORPUS).unwrap_or_default();
    if !corpus.lines().any(|l| l.trim() == line) {
        let _ = std::fs::write(CORPUS, format!("{corpus}{line}\n"));
    }
}

fn replay(args: &[String]) -> i32 {
    let (Some(name), Some(seed)) = (
        flag(args, "--scenario"),
        flag(args, "--seed").and_then(|s| s.parse().ok()),
    ) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let Some(sc) = scenarios::for_seed(name, seed) else {
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
