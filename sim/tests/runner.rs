//! The `sim` binary as a user runs it: flags, exit codes, the summary,
//! and determinism across processes.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_seed_is_an_error_naming_it() {
    let out = sim(&["run", "--seed", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("abc") && err.contains("--seed"), "{err}");
    assert!(text(&out.stdout).is_empty(), "nothing ran");
}

#[test]
fn an_unknown_scenario_is_an_error_naming_it() {
    for args in [
        &["run", "--scenario", "nonesuch"][..],
        &["replay", "--scenario", "nonesuch", "--seed", "1"],
        &["replay", "--scenario", "all", "--seed", "1"],
    ] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("no scenario") && err.contains("swarm"), "{err}");
    }
}

#[test]
fn conflicting_or_missing_flags_are_errors() {
    for args in [
        &["run", "--seed", "1", "--seeds", "3"][..],
        &["run", "--seed", "1", "--until-coverage"],
        &["run", "--jobs", "0"],
        &["run", "--seeds", "-1"],
        &["replay", "--scenario", "swarm"],
        &["frobnicate"],
        &[],
    ] {
        assert_eq!(sim(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn list_names_the_swarm_first_then_the_named_scenarios() {
    let out = sim(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, sim::scenarios::names(), "{stdout}");
}

#[test]
fn a_run_of_two_seeds_shows_two_runs() {
    let out = sim(&["run", "--scenario", "normal_sse", "--seeds", "2"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("| normal_sse | 2 | 0 |")),
        "{stdout}"
    );
    // Each seed with its configuration, before it runs.
    assert!(
        stderr.contains("normal_sse seed 0: 1 clients, faults []"),
        "{stderr}"
    );
    assert!(stderr.contains("normal_sse seed 1: "), "{stderr}");
}

/// Two processes, one seed: the same trace (nothing process-wide, such as
/// a random hasher or an address, reaches the run).
#[test]
fn a_swarm_seed_replays_the_same_in_two_processes() {
    let args = ["replay", "--scenario", "swarm", "--seed", "5"];
    let (a, b) = (sim(&args), sim(&args));
    let (a, b) = (text(&a.stdout), text(&b.stdout));
    let hash = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("trace hash "))
            .map(str::to_string)
    };
    assert!(hash(&a).is_some(), "no trace hash in:\n{a}");
    let first_difference = a.lines().zip(b.lines()).find(|(x, y)| x != y);
    assert_eq!(
        hash(&a),
        hash(&b),
        "the traces first differ at {first_difference:?}"
    );
}

#[test]
fn until_coverage_stops_at_its_cap_and_says_how_many_seeds_it_took() {
    let out = sim(&[
        "run",
        "--scenario",
        "short_partition",
        "--until-coverage",
        "--seeds",
        "3",
        "--jobs",
        "1",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("| short_partition | 3 | 0 |")),
        "{stdout}"
    );
    assert!(
        stdout.contains("short_partition: every goal hit within the first ")
            && stdout.contains("(3 seeds run in 1 rounds)"),
        "{stdout}"
    );
}
