//! Seeds of one scenario family in parallel: each seed builds its own
//! scenario (`for_seed`), runs and is checked on a worker; every requested
//! seed comes back with an outcome, in seed order.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sim::check::check;
use sim::{Scenario, scenarios};

use super::outcome::{Outcome, catching, run_seed};

/// One seed of a sweep.
#[derive(Debug)]
pub struct Seed {
    pub seed: u64,
    /// What this seed drew; `None` when building it failed (see `outcome`).
    pub scenario: Option<Scenario>,
    pub outcome: Outcome,
}

/// The progress bar on stderr, shared by the workers.
#[derive(Debug)]
pub struct Progress {
    done: AtomicUsize,
    /// Seeds expected in all, when known (`--until-coverage` stops early).
    total: Option<usize>,
}

impl Progress {
    pub fn new(total: Option<usize>) -> Progress {
        Progress {
            done: AtomicUsize::new(0),
            total,
        }
    }

    fn tick(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match self.total {
            Some(total) => eprint!("\r[{n}/{total}] {} ", "#".repeat(n * 30 / total.max(1))),
            None => eprint!("\r[{n} seeds] "),
        }
        let _ = std::io::stderr().flush();
    }
}

/// One line saying what a seed runs: the swarm's draw, or a named
/// scenario's clients and (shifted) faults.
pub fn describe(sc: &Scenario) -> String {
    match &sc.drawn {
        Some(d) => d.clone(),
        None => format!("{} clients, faults {:?}", sc.clients.len(), sc.faults),
    }
}

/// The scenario `name` draws for `seed`, caught if drawing panics.
fn prepare(name: &str, seed: u64) -> Result<Scenario, String> {
    match catching(|| scenarios::for_seed(name, seed)) {
        Ok(Some(sc)) => Ok(sc),
        Ok(None) => Err(format!("no scenario {name:?}")),
        Err(msg) => Err(format!("panic while drawing the scenario: {msg}")),
    }
}

/// Runs and checks `seeds` of `name` on `jobs` workers. Prints each seed's
/// configuration to stderr first.
pub fn sweep(name: &str, seeds: &[u64], jobs: usize, progress: &Progress) -> Vec<Seed> {
    let prepared: Vec<Result<Scenario, String>> = seeds.iter().map(|&s| prepare(name, s)).collect();
    for (seed, sc) in seeds.iter().zip(&prepared) {
        match sc {
            Ok(sc) => eprintln!("{name} seed {seed}: {}", describe(sc)),
            Err(e) => eprintln!("{name} seed {seed}: {e}"),
        }
    }
    let slots: Vec<Mutex<Option<Outcome>>> = seeds.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.clamp(1, seeds.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let (Some(&seed), Some(sc)) = (seeds.get(i), prepared.get(i)) else {
                            break;
                        };
                        let outcome = match sc {
                            Ok(sc) => run_seed(|| {
                                let report = sim::run(sc, seed);
                                let verdict = check(sc, &report);
                                let hits = sc.goals().into_iter().filter(|g| g.hit(sc, &report)).collect();
                                Outcome {
                                    report: Some(report),
                                    verdict,
                                    hits,
                                }
                            }),
                            Err(e) => Outcome::crashed(e.clone()),
                        };
                        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
                        progress.tick();
                    }
                })
            })
            .collect();
        // Joined here, so that a worker's panic cannot take the scope down:
        // its unfinished seed is accounted for below.
        for h in handles {
            let _ = h.join();
        }
    });
    seeds
        .iter()
        .zip(prepared)
        .zip(slots)
        .map(|((&seed, sc), slot)| Seed {
            seed,
            scenario: sc.ok(),
            outcome: slot
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Outcome::crashed("the worker running this seed died")),
        })
        .collect()
}
