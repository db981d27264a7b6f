//! `cargo xtask sim`: builds and runs the simulation runner (`sim/`), so
//! xtask itself stays free of turmoil and the server stack. With no
//! subcommand (or only `run`'s flags) it runs `run`: the swarm. Exit codes
//! are the runner's: 2 a bad flag or value, 3 crash, 4 safety, 5 liveness,
//! 6 only "sometimes" coverage failed.

use anyhow::Context;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (debug, args) = match args.first().map(String::as_str) {
        Some("--debug") => (true, &args[1..]),
        _ => (false, args),
    };
    let mut runner_args: Vec<String> = args.to_vec();
    if !matches!(
        runner_args.first().map(String::as_str),
        Some("list" | "run" | "replay" | "help" | "--help" | "-h")
    ) {
        runner_args.insert(0, "run".into());
    }
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["run", "--quiet", "-p", "sim", "--bin", "sim"]);
    if !debug {
        cmd.arg("--release");
    }
    cmd.arg("--").args(&runner_args);
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
