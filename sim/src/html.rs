//! The run as a picture: one self-contained HTML page (inline CSS and SVG,
//! no script, no fetches) with a lane per host and client, the faults as
//! shaded spans, the clients' lifecycle as marks, the delivered id over
//! simulated time, and the first violation where it shows. `render` (one
//! run) and `render_sweep` (a sweep's failing seeds) are pure: the same run
//! gives the same bytes. `faults.rs` pairs each fault with its heal, `lanes.rs` draws the
//! timeline, `plot.rs` the ids.

mod faults;
mod lanes;
mod plot;

use std::fmt::Write as _;
use std::time::Duration;

use crate::check::Violation;
use crate::{Report, Scenario};

use faults::{Span, spans};

/// One failing seed of a sweep, for [`render_sweep`].
#[derive(Debug, Clone, Copy)]
pub struct Failing<'a> {
    pub name: &'a str,
    pub seed: u64,
    /// What the seed drew (none: drawing it failed).
    pub scenario: Option<&'a Scenario>,
    /// What it produced (none: it crashed before it had a report).
    pub report: Option<&'a Report>,
    pub verdict: &'a Violation,
}

/// One run's page: `verdict` is the checks' first violation (`None`:
/// every invariant held).
pub fn render(report: &Report, scenario: &Scenario, verdict: Option<&Violation>) -> String {
    let mut out = String::new();
    head(&mut out, &format!("{} seed {}", scenario.name, report.seed));
    section(
        &mut out,
        scenario.name,
        report.seed,
        Some(scenario),
        Some(report),
        verdict,
    );
    foot(&mut out);
    out
}

/// A sweep's page: `title` says what ran, then one section per failing
/// seed, in the order given.
pub fn render_sweep(title: &str, failing: &[Failing<'_>]) -> String {
    let mut out = String::new();
    head(&mut out, title);
    let _ = writeln!(out, "<h1>{}</h1>", esc(title));
    if failing.is_empty() {
        out += "<p class=\"ok\">every seed passed</p>\n";
    } else {
        let _ = writeln!(out, "<p>{} failing seeds:</p>\n<ul>", failing.len());
        for f in failing {
            let _ = writeln!(
                out,
                "<li><a href=\"#{}\">{} seed {}</a>: {}</li>",
                anchor(f.name, f.seed),
                esc(f.name),
                f.seed,
                esc(&f.verdict.to_string())
            );
        }
        out += "</ul>\n";
    }
    for f in failing {
        section(&mut out, f.name, f.seed, f.scenario, f.report, Some(f.verdict));
    }
    foot(&mut out);
    out
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.25em;border-top:2px solid #ccc;padding-top:.6em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
th{background:#f4f4f4}code{background:#f4f4f4;padding:0 3px}
.ok{color:#176317;font-weight:bold}.fail{color:#b00;font-weight:bold;background:#fee;padding:.4em;border:1px solid #b00}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:.3em 0}.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px}
svg{display:block;margin:.4em 0}svg text{font:11px system-ui,sans-serif}";

fn head(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>tickwire sim: {}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>",
        esc(title)
    );
}

fn foot(out: &mut String) {
    out.push_str("</body>\n</html>\n");
}

/// The `id` of a seed's section.
fn anchor(name: &str, seed: u64) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("run-{name}-{seed}")
}

/// One seed: what it ran, its verdict, the timeline, the ids, the tables.
fn section(
    out: &mut String,
    name: &str,
    seed: u64,
    scenario: Option<&Scenario>,
    report: Option<&Report>,
    verdict: Option<&Violation>,
) {
    let _ = writeln!(
        out,
        "<section id=\"{}\">\n<h2>{} seed {seed}</h2>",
        anchor(name, seed),
        esc(name)
    );
    if let Some(sc) = scenario {
        let drawn = sc
            .drawn
            .clone()
            .unwrap_or_else(|| format!("{} clients, faults {:?}", sc.clients.len(), sc.faults));
        let _ = writeln!(out, "<p>{}</p>", esc(&drawn));
    }
    let _ = writeln!(
        out,
        "<p>replay: <code>cargo xtask sim replay --scenario {} --seed {seed}</code></p>",
        esc(name)
    );
    match verdict {
        Some(v) => {
            let _ = writeln!(out, "<p class=\"fail\">FAIL: {}</p>", esc(&v.to_string()));
        }
        None => out.push_str("<p class=\"ok\">ok: every invariant holds</p>\n"),
    }
    let (Some(sc), Some(report)) = (scenario, report) else {
        out.push_str("<p>no report: the run produced nothing to draw</p>\n</section>\n");
        return;
    };
    let _ = writeln!(
        out,
        "<p>{} simulated ms, trace hash <code>{:016x}</code>, slow-consumer drops {}{}</p>",
        report.elapsed.as_millis(),
        report.hash(),
        report.overflow_drops,
        report
            .crashed
            .as_ref()
            .map_or(String::new(), |b| format!(", broke: {}", esc(&b.to_string())))
    );
    let axis = Axis::new(report.elapsed.max(Duration::from_secs(1)));
    let spans = spans(report);
    let violation = verdict.and_then(|v| v.at.map(|at| (at, v.to_string())));
    out.push_str("<h3>Timeline</h3>\n");
    lanes::draw(out, &axis, sc, report, &spans, violation.as_ref());
    lanes::legend(out);
    out.push_str("<h3>Delivered id over simulated time</h3>\n");
    plot::draw(out, &axis, sc, report, &spans, violation.as_ref());
    clients_table(out, sc, report);
    faults_table(out, report, &spans);
    starts_table(out, report);
    out.push_str("</section>\n");
}

fn clients_table(out: &mut String, sc: &Scenario, report: &Report) {
    out.push_str("<h3>Clients</h3>\n<table>\n<tr><th>client</th><th>transport</th><th>delivered</th><th>last id</th><th>done at ms</th><th>reconnects</th><th>fallbacks</th><th>upgrades</th><th>failovers</th><th>gaps repaired</th><th>duplicates</th><th>error</th></tr>\n");
    for (i, c) in report.clients.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&client_label(sc, i)),
            c.kind.map_or("?", |k| k.as_str()),
            c.ids.len(),
            c.ids.last().map_or("none".into(), u64::to_string),
            c.done_at.map_or("never".into(), |d| d.as_millis().to_string()),
            c.reconnects,
            c.fallbacks,
            c.upgrades,
            c.failovers,
            c.gaps_repaired,
            c.duplicates,
            c.error.as_ref().map_or(String::new(), |e| esc(&e.to_string()))
        );
    }
    out.push_str("</table>\n");
}

fn faults_table(out: &mut String, report: &Report, spans: &[Span<'_>]) {
    out.push_str("<h3>Faults as applied</h3>\n");
    if report.applied.is_empty() {
        out.push_str("<p>none</p>\n");
        return;
    }
    out.push_str("<table>\n<tr><th>at ms</th><th>fault</th><th>kind</th><th>until ms</th></tr>\n");
    for (k, (t, f)) in report.applied.iter().enumerate() {
        let until = spans.iter().find(|s| s.index == k).map_or(String::new(), |s| {
            format!(
                "{}{}",
                s.to.as_millis(),
                if s.healed { "" } else { " (never healed)" }
            )
        });
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{until}</td></tr>",
            t.as_millis(),
            esc(&format!("{f:?}")),
            f.kind()
        );
    }
    out.push_str("</table>\n");
}

fn starts_table(out: &mut String, report: &Report) {
    out.push_str("<h3>Stub starts</h3>\n<table>\n<tr><th>at ms</th><th>host</th><th>epoch</th><th>log</th><th>head</th><th>fixture</th><th>failed opens</th></tr>\n");
    for (k, s) in report.starts.iter().enumerate() {
        let node = report.node_starts.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.at.as_millis(),
            host_label(node),
            s.epoch,
            s.incarnation,
            s.head,
            s.fixture_done,
            s.open_failures
        );
    }
    out.push_str("</table>\n");
}

/// A host's name, as turmoil knows it (`cluster::node_name`).
fn host_label(node: usize) -> String {
    if node == 0 {
        "stub".into()
    } else {
        format!("stub{node}")
    }
}

/// `client 3 (sse)`, and its host where several clients share one.
fn client_label(sc: &Scenario, i: usize) -> String {
    let kind = sc.clients.get(i).map_or("?", |k| k.as_str());
    let engine = if i == 0 && sc.engine.is_some() {
        ", engine"
    } else {
        ""
    };
    if sc.clients_per_host > 1 {
        format!("client {i} ({kind}{engine}) on client{}", i / sc.clients_per_host)
    } else {
        format!("client {i} ({kind}{engine})")
    }
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Left of the plots: the lanes' labels.
const LEFT: f64 = 190.0;
/// The plots' width, labels included.
const WIDTH: f64 = 1200.0;

/// Simulated time along x, shared by the timeline and the id plot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    end_ms: f64,
}

impl Axis {
    fn new(end: Duration) -> Axis {
        Axis {
            end_ms: end.as_secs_f64() * 1000.0,
        }
    }

    /// The x of simulated time `t` (clamped to the run).
    pub(crate) fn x(&self, t: Duration) -> f64 {
        let ms = (t.as_secs_f64() * 1000.0).min(self.end_ms);
        LEFT + ms / self.end_ms * (WIDTH - LEFT - 20.0)
    }

    /// Grid lines: at most about 12, on a round step, with their labels.
    pub(crate) fn ticks(&self) -> Vec<(f64, String)> {
        let steps: [u32; 13] = [
            100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        ];
        let step = steps
            .into_iter()
            .find(|s| self.end_ms / f64::from(*s) <= 12.0)
            .unwrap_or(1_200_000);
        (0..)
            .map(|k: u64| k * u64::from(step))
            .take_while(|ms| *ms as f64 <= self.end_ms)
            .map(|ms| {
                let label = if ms % 1000 == 0 {
                    format!("{} s", ms / 1000)
                } else {
                    format!("{:.1} s", ms as f64 / 1000.0)
                };
                (self.x(Duration::from_millis(ms)), label)
            })
            .collect()
    }
}

/// The clients' colours, in turn.
pub(crate) const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf",
];

/// `x` with one decimal: coordinates stay short and exact across runs.
pub(crate) fn px(x: f64) -> String {
    format!("{x:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"a<b & "c" > 'd'"#),
            "a&lt;b &amp; &quot;c&quot; &gt; &#39;d&#39;"
        );
    }

    #[test]
    fn ticks_are_round_and_few() {
        let ticks = Axis::new(Duration::from_secs(60)).ticks();
        assert_eq!(ticks.len(), 13);
        assert_eq!(ticks[1].1, "5 s");
        assert_eq!(px(ticks[0].0), px(LEFT));
    }
}
