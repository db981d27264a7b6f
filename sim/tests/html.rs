//! The run as a page (`sim::html`, `sim replay --html`, `sim run --html`):
//! the faults with their times, the delivered ids, the first violation,
//! well-formed and byte-identical for a seed, for every named scenario.

use std::process::Command;

use sim::check::{Class, Violation, check};
use sim::html::{Failing, esc, render, render_sweep};
use sim::{Report, Scenario, run, scenarios};

fn for_seed(name: &str, seed: u64) -> Scenario {
    scenarios::for_seed(name, seed).unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A page is whole: the doctype first, the end last, every `<svg>` closed.
fn well_formed(page: &str, what: &str) {
    assert!(
        page.starts_with("<!doctype html>\n"),
        "{what}: {}",
        &page[..page.len().min(80)]
    );
    assert!(page.ends_with("</body>\n</html>\n"), "{what}");
    let (open, close) = (page.matches("<svg").count(), page.matches("</svg>").count());
    assert_eq!(open, close, "{what}: {open} <svg> but {close} </svg>");
    for fetch in ["<script", "<link", " src=", "url("] {
        assert!(
            !page.contains(fetch),
            "{what}: {fetch}: nothing runs or is fetched"
        );
    }
}

fn checked(sc: &Scenario, seed: u64) -> Report {
    let report = run(sc, seed);
    check(sc, &report).unwrap_or_else(|v| panic!("{} seed {seed}: {v}", sc.name));
    report
}

#[test]
fn a_page_shows_each_fault_at_its_time_and_every_client_s_ids() {
    for (name, seed) in [("crash_restart", 2), ("flapping_link", 1), ("node_failover", 3)] {
        let sc = for_seed(name, seed);
        let report = checked(&sc, seed);
        assert!(!report.applied.is_empty(), "{name} has faults");
        let page = render(&report, &sc, None);
        well_formed(&page, name);
        assert!(page.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\""));
        assert!(page.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ids\""));
        assert!(page.contains("ok: every invariant holds"), "{name}");
        for (t, f) in &report.applied {
            let row = format!(
                "<tr><td>{}</td><td>{}</td>",
                t.as_millis(),
                esc(&format!("{f:?}"))
            );
            assert!(page.contains(&row), "{name}: no row {row}");
            if f.breaks() {
                let span = format!(
                    "<title>{} from {} ms to ",
                    esc(&format!("{f:?} ({})", f.kind())),
                    t.as_millis()
                );
                assert!(page.contains(&span), "{name}: no span {span}");
            }
        }
        let plotted = page.matches("<path class=\"client-ids\"").count();
        assert_eq!(plotted, report.clients.len(), "{name}: one id line per client");
        for (i, c) in report.clients.iter().enumerate() {
            let last = c.ids.last().copied().expect("every client got events");
            assert!(
                page.contains(&format!(": {} ids, last id {last}</span>", c.ids.len())),
                "{name}: client {i}'s last id {last} not in the legend"
            );
            let end = c.at.last().expect("delivery times").as_millis();
            assert!(
                page.contains(&format!(": last id {last} at {end} ms</title>")),
                "{name}: client {i}"
            );
        }
        // Connections and the client's steps are drawn.
        assert!(page.contains("<rect class=\"conn\""), "{name}");
        assert!(page.contains("<line class=\"attempt\""), "{name}");
        assert!(!page.contains("class=\"violation\""), "{name}: nothing broke");
        // The same seed, the same bytes.
        assert_eq!(
            page,
            render(&checked(&sc, seed), &sc, None),
            "{name}: deterministic"
        );
    }
}

#[test]
fn a_failing_run_marks_its_first_violation() {
    let sc = for_seed("short_partition", 1);
    let mut report = run(&sc, 1);
    // Client 1 loses an event: the checks must say so, and the page show it.
    report.clients[1].ids.remove(150);
    report.clients[1].at.remove(150);
    let v = check(&sc, &report).expect_err("a lost event is a violation");
    assert_eq!(v.class, Class::Safety, "{v}");
    let at = v.at.expect("the violation has a time").as_millis();
    let page = render(&report, &sc, Some(&v));
    well_formed(&page, "failing");
    assert!(page.contains(&format!("<p class=\"fail\">FAIL: {}</p>", esc(&v.to_string()))));
    assert_eq!(
        page.matches("<g class=\"violation\">").count(),
        2,
        "on the timeline and the id plot"
    );
    assert!(page.contains(&format!("first violation at {at} ms")));
    assert!(
        page.contains("<circle class=\"out-of-order\""),
        "the skipped id is circled"
    );
    assert!(page.contains("client 1: id 152 after id 150 at "), "{v}");
    // Kept to look at: target/tmp/html-failing.html.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-failing.html"),
        &page,
    );
    // Text from the run is escaped.
    let odd = Violation {
        what: "a <b> & \"c\"".into(),
        ..v
    };
    let page = render(&report, &sc, Some(&odd));
    assert!(page.contains("a &lt;b&gt; &amp; &quot;c&quot;") && !page.contains("a <b>"));
}

#[test]
fn a_sweep_page_has_a_section_per_failing_seed() {
    let sc = for_seed("normal_sse", 3);
    let report = run(&sc, 3);
    let v = Violation {
        class: Class::Liveness,
        at: Some(report.elapsed),
        what: "client 0 got 1 of 2 events".into(),
        invariant: None,
    };
    let crash = Violation {
        class: Class::Crash,
        at: None,
        what: "panic: boom".into(),
        invariant: None,
    };
    let page = render_sweep(
        "sweep: normal_sse (8 seeds)",
        &[
            Failing {
                name: "normal_sse",
                seed: 3,
                scenario: Some(&sc),
                report: Some(&report),
                verdict: &v,
            },
            Failing {
                name: "normal_sse",
                seed: 5,
                scenario: None,
                report: None,
                verdict: &crash,
            },
        ],
    );
    well_formed(&page, "sweep");
    assert_eq!(page.matches("<section id=").count(), 2);
    assert!(
        page.contains("<section id=\"run-normal_sse-3\">") && page.contains("href=\"#run-normal_sse-5\"")
    );
    assert!(page.contains("cargo xtask sim replay --scenario normal_sse --seed 5"));
    assert!(page.contains("FAIL: Crash: panic: boom") && page.contains("no report"));
    assert_eq!(
        page.matches("class=\"timeline\"").count(),
        1,
        "only seed 3 has a run to draw"
    );
    assert!(render_sweep("sweep", &[]).contains("every seed passed"));
}

fn sim_bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

/// `replay --html` for every name `sim list` gives, seed 1 (about 10 s in
/// a debug build); the swarm's twice, for the same bytes.
#[test]
fn replay_writes_a_page_for_every_named_scenario() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-replay");
    std::fs::create_dir_all(&dir).expect("a directory for the pages");
    for name in scenarios::names() {
        let file = dir.join(format!("{name}.html"));
        let _ = std::fs::remove_file(&file);
        let path = file.to_str().expect("a UTF-8 path");
        let out = sim_bin(&["replay", "--scenario", name, "--seed", "1", "--html", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        let page = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}: no page: {e}"));
        assert!(
            stderr.contains(&format!("wrote {path} ({} bytes)", page.len())),
            "{stderr}"
        );
        well_formed(&page, name);
        assert!(page.contains(&format!("<h2>{name} seed 1</h2>")), "{name}");
        assert!(page.contains("ok: every invariant holds"), "{name}");
    }
    let again = dir.join("swarm-again.html");
    let out = sim_bin(&[
        "replay",
        "--scenario",
        "swarm",
        "--seed",
        "1",
        "--html",
        again.to_str().expect("UTF-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(&again).expect("written"),
        std::fs::read(dir.join("swarm.html")).expect("written"),
        "two processes, one seed: the same page"
    );
}

#[test]
fn run_html_writes_the_sweep_page_and_a_bad_path_is_an_error() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-run");
    std::fs::create_dir_all(&dir).expect("a directory for the page");
    let file = dir.join("sweep.html");
    let out = sim_bin(&[
        "run",
        "--scenario",
        "normal_ws",
        "--seeds",
        "2",
        "--html",
        file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&file).expect("the sweep's page");
    well_formed(&page, "sweep");
    assert!(page.contains("sweep: normal_ws (2 seeds)") && page.contains("every seed passed"));
    let out = sim_bin(&[
        "replay",
        "--scenario",
        "normal_ws",
        "--seed",
        "1",
        "--html",
        "/nonexistent/dir/x.html",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write /nonexistent/dir/x.html"));
}
