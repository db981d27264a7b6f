//! Project automation, run as `cargo xtask <command>`.
//!
//! A plain binary with few dependencies (the rust-analyzer habit): each
//! command is a function in its own module.

mod fixtures;
mod sim;
mod tidy;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  fixtures [--check]   regenerate fixtures/default.jsonl from its seed (or check it is current)
  sim [--debug] [list | run ARGS | replay ARGS]
                       the deterministic simulation (release build unless --debug):
                       run [--scenario swarm|NAME|all] [--seeds N | --seed S] [--jobs J] [--until-coverage]
                           [--html FILE]
                         (the swarm by default: every seed draws its own configuration;
                          --html: one page with a section per failing seed)
                       replay --scenario NAME --seed S [--html FILE]
                         (--html: the run as a timeline page: lanes, faults, marks, ids)
  tidy                 layout rules: a `//!` header on every .rs file, no source file over 450 lines";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Commands work on paths relative to the workspace root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(e) = std::env::set_current_dir(&root) {
        eprintln!("xtask: cannot enter the workspace root: {e}");
        std::process::exit(2);
    }
    let result = match args.first().map(String::as_str) {
        Some("fixtures") => fixtures::run(&args[1..]),
        Some("sim") => sim::run(&args[1..]),
        Some("tidy") => tidy::run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}
