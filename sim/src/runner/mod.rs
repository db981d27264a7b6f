//! `sim run`: sweeps of scenario families over seeds, their failures (each
//! with its replay command, appended to the corpus), the summary and the
//! exit code. Used by the `sim` binary only.

pub mod outcome;
pub mod summary;
pub mod sweep;

use std::path::Path;
use std::time::Instant;

use sim::check::Class;

use summary::Family;
use sweep::{Progress, sweep};

/// Failing seeds are appended here; `cargo test -p sim` replays them.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus.txt");

/// The seeds a `run` covers.
#[derive(Debug, Clone, Copy)]
pub enum Seeds {
    /// Seeds `0..n`.
    First(u64),
    One(u64),
    /// Seeds 0, 1, 2, … in rounds until every goal is hit and a round adds
    /// none, at most `cap` seeds.
    UntilCoverage {
        cap: u64,
    },
}

/// Seeds per round of `--until-coverage`, per job.
const ROUND_PER_JOB: u64 = 8;

/// Runs `names` over `seeds` on `jobs` workers, prints failures and the
/// summary, and writes the failing seeds' page to `html` when given;
/// returns the exit code (the worst failure's class; 6 when only coverage
/// failed; 2 when the page could not be written).
pub fn run(names: &[&'static str], seeds: Seeds, jobs: usize, html: Option<&Path>) -> i32 {
    let mut families = Vec::new();
    let mut worst: Option<Class> = None;
    let mut coverage_failed = false;
    for &name in names {
        let family = match seeds {
            Seeds::First(n) => timed(name, &(0..n).collect::<Vec<_>>(), jobs, Some(n as usize)),
            Seeds::One(s) => timed(name, &[s], jobs, Some(1)),
            Seeds::UntilCoverage { cap } => until_coverage(name, cap, jobs),
        };
        for s in &family.seeds {
            if let Err(v) = &s.outcome.verdict {
                eprintln!("FAIL {name} seed {}: {v}", s.seed);
                eprintln!(
                    "  replay: cargo xtask sim replay --scenario {name} --seed {}",
                    s.seed
                );
                record_failure(name, s.seed);
                worst = Some(match (worst, v.class) {
                    (Some(Class::Crash), _) | (_, Class::Crash) => Class::Crash,
                    (Some(Class::Safety), _) | (_, Class::Safety) => Class::Safety,
                    _ => Class::Liveness,
                });
            }
        }
        for g in family.coverage().iter().filter(|g| g.hits == 0) {
            eprintln!(
                "FAIL {name}: {:?} never happened in {} seeds (sometimes coverage)",
                g.goal,
                family.seeds.len()
            );
            coverage_failed = true;
        }
        families.push(family);
    }
    summarize(&families, jobs);
    if let Some(code) = write_page(html, &failures_page(&families)) {
        return code;
    }
    match worst {
        Some(class) => class.exit_code(),
        // Only coverage failed: its own exit code.
        None if coverage_failed => 6,
        None => 0,
    }
}

/// The sweep's page: a section per failing seed, in the order they ran.
fn failures_page(families: &[Family]) -> String {
    let failing: Vec<sim::html::Failing<'_>> = families
        .iter()
        .flat_map(|f| {
            f.seeds.iter().filter_map(|s| {
                Some(sim::html::Failing {
                    name: f.name,
                    seed: s.seed,
                    scenario: s.scenario.as_ref(),
                    report: s.outcome.report.as_ref(),
                    verdict: s.outcome.verdict.as_ref().err()?,
                })
            })
        })
        .collect();
    let runs: Vec<String> = families
        .iter()
        .map(|f| format!("{} ({} seeds)", f.name, f.seeds.len()))
        .collect();
    sim::html::render_sweep(&format!("sweep: {}", runs.join(", ")), &failing)
}

/// Writes `page` to `path` when there is one: `Some(2)` when that failed
/// (said on stderr), `None` when it worked or there was no path.
pub fn write_page(path: Option<&Path>, page: &str) -> Option<i32> {
    let path = path?;
    match std::fs::write(path, page) {
        Ok(()) => {
            eprintln!("wrote {} ({} bytes)", path.display(), page.len());
            None
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            Some(2)
        }
    }
}

/// One sweep of `seeds`, timed (wall time for the speed report only).
#[allow(clippy::disallowed_methods)]
fn timed(name: &'static str, seeds: &[u64], jobs: usize, total: Option<usize>) -> Family {
    let started = Instant::now();
    let progress = Progress::new(total);
    let seeds = sweep(name, seeds, jobs, &progress);
    eprintln!();
    Family {
        name,
        seeds,
        wall: started.elapsed().as_secs_f64(),
    }
}

/// Rounds of `ROUND_PER_JOB × jobs` seeds from 0 until every goal has been
/// hit and the last round added no new goal, or `cap` seeds ran.
fn until_coverage(name: &'static str, cap: u64, jobs: usize) -> Family {
    let round = ROUND_PER_JOB * jobs as u64;
    let mut family = Family {
        name,
        seeds: Vec::new(),
        wall: 0.0,
    };
    let covered = |f: &Family| f.coverage().iter().filter(|g| g.hits > 0).count();
    let mut rounds = 0;
    loop {
        let start = family.seeds.len() as u64;
        let end = (start + round).min(cap);
        if start >= end {
            break;
        }
        let before = covered(&family);
        let part = timed(name, &(start..end).collect::<Vec<_>>(), jobs, None);
        family.seeds.extend(part.seeds);
        family.wall += part.wall;
        rounds += 1;
        let after = covered(&family);
        let goals = family.goals().len();
        eprintln!("{name}: round {rounds}, {end} seeds, {after} of {goals} goals hit");
        if after == goals && after == before {
            break;
        }
    }
    let coverage = family.coverage();
    let missing: Vec<String> = coverage
        .iter()
        .filter(|g| g.hits == 0)
        .map(|g| format!("{:?}", g.goal))
        .collect();
    if missing.is_empty() {
        // The seed that hit the last goal first: how many seeds it took.
        let took = coverage.iter().filter_map(|g| g.first).max().map_or(0, |s| s + 1);
        println!(
            "{name}: every goal hit within the first {took} seeds ({} seeds run in {rounds} rounds)",
            family.seeds.len()
        );
    } else {
        println!(
            "{name}: {} of {} goals hit after {} seeds (cap {cap}); never: {}",
            coverage.len() - missing.len(),
            coverage.len(),
            family.seeds.len(),
            missing.join(", ")
        );
    }
    family
}

fn summarize(families: &[Family], jobs: usize) {
    println!(
        "| scenario | runs | failures | reconnects | fallbacks | worst catch-up ms | sim s / wall s / core |"
    );
    println!("|---|---|---|---|---|---|---|");
    for f in families {
        println!("{}", f.row(jobs));
    }
    for f in families.iter().filter(|f| f.name == sim::scenarios::SWARM) {
        print!("{}", f.spread());
    }
    let simulated: f64 = families.iter().map(Family::simulated).sum();
    let wall: f64 = families.iter().map(|f| f.wall).sum();
    println!(
        "tick {} ms (many_clients: 50 ms); {:.0} simulated s in {:.1} wall s on {jobs} jobs: {:.0} sim s / wall s / core",
        sim::TICK.as_millis(),
        simulated,
        wall,
        simulated / (wall * jobs as f64).max(1e-9)
    );
}

/// Appends a failing seed to the corpus (once), as `scenario seed`: the
/// swarm's as `swarm SEED`.
fn record_failure(scenario: &str, seed: u64) {
    let line = format!("{scenario} {seed}");
    let corpus = std::fs::read_to_string(CORPUS).unwrap_or_default();
    if !corpus.lines().any(|l| l.trim() == line) {
        let _ = std::fs::write(CORPUS, format!("{corpus}{line}\n"));
    }
}
