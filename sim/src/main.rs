//! The simulation runner behind `cargo xtask sim`: `list`, `run` over
//! scenarios and seeds, `replay` of one seed with its full trace.
//!
//! Exit codes: 0 every seed passed, 2 a bad flag or value, 3 crash,
//! 4 safety, 5 liveness (the worst failure's class), 6 only "sometimes"
//! coverage failed (a goal no seed hit).

mod runner;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use sim::check::{Class, Violation, check};
use sim::scenarios;

use runner::Seeds;
use runner::outcome::catching;

#[derive(Debug, Parser)]
#[command(
    name = "sim",
    about = "Deterministic simulation of tickwire: sweeps and replays"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The scenario families: the swarm, then every named scenario.
    List,
    /// Runs and checks seeds of scenarios; prints failures and a summary.
    Run(RunArgs),
    /// Runs one seed and prints its full trace.
    Replay {
        /// A scenario name (see `sim list`).
        #[arg(long, value_parser = one_scenario)]
        scenario: &'static str,
        #[arg(long)]
        seed: u64,
        /// Also draw the run as a self-contained HTML page in this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A scenario name (see `sim list`), or `all` for every named one (the
    /// swarm is its own sweep: its goals need hundreds of seeds).
    #[arg(long, default_value = scenarios::SWARM, value_parser = scenario_or_all)]
    scenario: Vec<&'static str>,
    /// Seeds 0..N (default 8); with --until-coverage, the most seeds to run
    /// (default 10000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// Just this seed.
    #[arg(long, conflicts_with_all = ["seeds", "until_coverage"])]
    seed: Option<u64>,
    /// Seeds run in parallel, one run per thread.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: u64,
    /// Seeds 0, 1, 2, … in rounds until every goal has been hit and the
    /// last round added no new one.
    #[arg(long)]
    until_coverage: bool,
    /// Also write one HTML page with a section per failing seed to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// Names `for_seed` knows, `'static` as `names()` gives them.
fn lookup(name: &str) -> Option<&'static str> {
    scenarios::names().into_iter().find(|n| *n == name)
}

fn unknown(name: &str, all: bool) -> String {
    format!(
        "no scenario {name:?}; one of: {}{} (see `sim list`)",
        if all { "all, " } else { "" },
        scenarios::names().join(", ")
    )
}

fn one_scenario(name: &str) -> Result<&'static str, String> {
    lookup(name).ok_or_else(|| unknown(name, false))
}

/// One name, or every named scenario for `all` (flattened by `run`).
fn scenario_or_all(name: &str) -> Result<&'static str, String> {
    if name == "all" {
        return Ok("all");
    }
    lookup(name).ok_or_else(|| unknown(name, true))
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::List => {
            list();
            0
        }
        Command::Run(args) => {
            let mut names: Vec<&'static str> = Vec::new();
            for n in args.scenario {
                let more = if n == "all" {
                    scenarios::names()
                        .into_iter()
                        .filter(|m| *m != scenarios::SWARM && *m != scenarios::CLUSTER_SWARM)
                        .collect()
                } else {
                    vec![n]
                };
                for m in more {
                    if !names.contains(&m) {
                        names.push(m);
                    }
                }
            }
            let seeds = match (args.seed, args.until_coverage) {
                (Some(s), _) => Seeds::One(s),
                (None, true) => Seeds::UntilCoverage {
                    cap: args.seeds.unwrap_or(10_000),
                },
                (None, false) => Seeds::First(args.seeds.unwrap_or(8)),
            };
            runner::run(&names, seeds, args.jobs as usize, args.html.as_deref())
        }
        Command::Replay { scenario, seed, html } => replay(scenario, seed, html.as_deref()),
    };
    std::process::exit(code);
}

fn list() {
    for name in scenarios::names() {
        match scenarios::by_name(name) {
            Some(s) => println!(
                "{:<26} {} clients, {} events, {} faults",
                s.name,
                s.clients.len(),
                s.events,
                s.faults.len()
            ),
            None => println!(
                "{name:<26} a whole configuration drawn per seed, {} goals",
                sim::Sometimes::SWARM.len()
            ),
        }
    }
}

fn replay(name: &'static str, seed: u64, html: Option<&Path>) -> i32 {
    let Some(sc) = scenarios::for_seed(name, seed) else {
        eprintln!("{}", unknown(name, false));
        return 2;
    };
    eprintln!("{name} seed {seed}: {}", runner::sweep::describe(&sc));
    let report = match catching(|| sim::run(&sc, seed)) {
        Ok(r) => r,
        Err(msg) => {
            let v = Violation {
                class: Class::Crash,
                at: None,
                what: format!("panic: {msg}"),
                invariant: None,
            };
            println!("FAIL: {v}");
            let page = || {
                let failing = sim::html::Failing {
                    name,
                    seed,
                    scenario: Some(&sc),
                    report: None,
                    verdict: &v,
                };
                sim::html::render_sweep(&format!("{name} seed {seed}"), &[failing])
            };
            return html
                .and_then(|_| runner::write_page(html, &page()))
                .unwrap_or(v.class.exit_code());
        }
    };
    print!("{}", report.trace());
    println!("trace hash {:016x}", report.hash());
    let verdict = catching(|| check(&sc, &report)).unwrap_or_else(|msg| {
        Err(Violation {
            class: Class::Crash,
            at: None,
            what: format!("panic in the checks: {msg}"),
            invariant: None,
        })
    });
    let code = match &verdict {
        Ok(()) => {
            println!("ok: every invariant holds");
            0
        }
        Err(v) => {
            println!("FAIL: {v}");
            v.class.exit_code()
        }
    };
    html.and_then(|_| runner::write_page(html, &sim::html::render(&report, &sc, verdict.as_ref().err())))
        .unwrap_or(code)
}
