//! The timeline: a lane for the links, one per host (the stub, or each
//! node and the log service) and one per client, over simulated time.
//! Faults are shaded spans (over every lane, darker on the one they act
//! on), connections as the network saw them are bars, the client's
//! lifecycle (attempts, backoff waits, fallbacks, upgrades, failovers,
//! resets, ...) is marks; each with an SVG `<title>` saying what it is.

use std::fmt::Write as _;
use std::time::Duration;

use transport::Lifecycle;

use super::faults::{Span, Target, fault_colour};
use super::{Axis, WIDTH, client_label, esc, host_label, px};
use crate::net::{Closer, Conn, Path};
use crate::{Entry, Report, Scenario};

/// Above the lanes: the violation's label, then the time labels.
const TOP: f64 = 36.0;

/// What a mark looks like.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Dot,
    Ring,
    Up,
    Down,
    Diamond,
    Square,
    Cross,
}

/// The lanes, top to bottom, with their labels.
fn lanes(sc: &Scenario, report: &Report) -> Vec<(String, Target)> {
    let mut out = vec![("links (all clients)".to_string(), Target::Links)];
    for n in 0..sc.nodes.max(1) {
        out.push((format!("host {}", host_label(n)), Target::Host(n)));
    }
    if sc.nodes > 1 {
        out.push(("log service".to_string(), Target::Log));
    }
    for i in 0..report.clients.len().max(sc.clients.len()) {
        out.push((client_label(sc, i), Target::Client(i)));
    }
    out
}

/// The lanes a fault on `target` acts on: a client's is its host's, so
/// every client sharing that host.
fn shared_host(sc: &Scenario, target: Target) -> Vec<Target> {
    let per = sc.clients_per_host.max(1);
    match target {
        Target::Client(i) if per > 1 => (0..sc.clients.len())
            .filter(|j| j / per == i / per)
            .map(Target::Client)
            .collect(),
        t => vec![t],
    }
}

/// Lanes get thinner as there are more of them.
pub(super) fn lane_height(clients: usize) -> f64 {
    match clients {
        0..=16 => 28.0,
        17..=40 => 16.0,
        _ => 10.0,
    }
}

/// The timeline's `<svg>`.
pub(super) fn draw(
    out: &mut String,
    axis: &Axis,
    sc: &Scenario,
    report: &Report,
    spans: &[Span<'_>],
    violation: Option<&(Duration, String)>,
) {
    let lanes = lanes(sc, report);
    let lh = lane_height(sc.clients.len());
    let bottom = TOP + lanes.len() as f64 * lh;
    let height = bottom + 6.0;
    let lane_top = |t: Target| {
        lanes
            .iter()
            .position(|(_, l)| *l == t)
            .map(|k| TOP + k as f64 * lh)
    };
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        w = px(WIDTH),
        h = px(height)
    );
    let font = if lh < 16.0 { " font-size=\"8\"" } else { "" };
    for (k, (label, _)) in lanes.iter().enumerate() {
        let y = TOP + k as f64 * lh;
        let fill = if k % 2 == 0 { "#f7f7f7" } else { "#ffffff" };
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/><text x=\"4\" y=\"{}\"{font}>{}</text>",
            px(y),
            px(WIDTH),
            px(lh),
            px(y + lh / 2.0 + 4.0),
            esc(label)
        );
    }
    for (x, label) in axis.ticks() {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            px(TOP - 4.0),
            px(bottom),
            px(TOP - 8.0),
            x = px(x)
        );
    }
    for s in spans {
        let (x0, x1) = (axis.x(s.from), axis.x(s.to).max(axis.x(s.from) + 2.0));
        let colour = fault_colour(s.fault);
        let title = span_title(s);
        let _ = writeln!(
            out,
            "<rect class=\"fault\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" fill-opacity=\"0.08\"/>",
            px(x0),
            px(TOP),
            px(x1 - x0),
            px(bottom - TOP)
        );
        for y in shared_host(sc, s.target).into_iter().filter_map(lane_top) {
            let _ = writeln!(
                out,
                "<rect class=\"fault\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" fill-opacity=\"0.4\"><title>{}</title></rect>",
                px(x0),
                px(y + 1.0),
                px(x1 - x0),
                px(lh - 2.0),
                esc(&title)
            );
            if x1 - x0 > 60.0 && lh >= 16.0 {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" fill=\"#000\">{}</text>",
                    px(x0 + 3.0),
                    px(y + lh / 2.0 + 4.0),
                    s.fault.kind()
                );
            }
        }
    }
    if let Some(y) = lane_top(Target::Host(0)) {
        for (k, s) in report.starts.iter().enumerate() {
            let node = report.node_starts.get(k).copied().unwrap_or(0);
            let y = lane_top(Target::Host(node)).unwrap_or(y);
            let title = format!(
                "{} ms: {} started: epoch {} (log {}), head {}, fixture {}, failed opens {}",
                s.at.as_millis(),
                host_label(node),
                s.epoch,
                s.incarnation,
                s.head,
                s.fixture_done,
                s.open_failures
            );
            mark(out, Shape::Up, axis.x(s.at), y + lh / 2.0, lh, "#2ca02c", &title);
        }
    }
    for (i, c) in report.clients.iter().enumerate() {
        let Some(y) = lane_top(Target::Client(i)) else {
            continue;
        };
        for conn in report.conns.iter().filter(|c| c.client == i) {
            connection(out, axis, conn, report.elapsed, y, lh);
        }
        for entry in &c.timeline {
            lifecycle(out, axis, sc, i, entry, y, lh);
        }
    }
    if let Some((at, text)) = violation {
        let x = axis.x(*at);
        let anchor = if x > WIDTH * 0.6 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let mut short: String = text.chars().take(110).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        let _ = writeln!(
            out,
            "<g class=\"violation\"><title>{}</title><line x1=\"{x}\" y1=\"2\" x2=\"{x}\" y2=\"{}\" stroke=\"#b00\" stroke-width=\"2\"/><text x=\"{}\" y=\"12\" fill=\"#b00\" text-anchor=\"{anchor}\">{}</text></g>",
            esc(text),
            px(bottom),
            px(x + dx),
            esc(&short),
            x = px(x)
        );
    }
    out.push_str("</svg>\n");
}

fn span_title(s: &Span<'_>) -> String {
    format!(
        "{:?} ({}) from {} ms to {} ms{}",
        s.fault,
        s.fault.kind(),
        s.from.as_millis(),
        s.to.as_millis(),
        if s.healed { "" } else { ", never healed" }
    )
}

/// A connection as the network saw it: a bar from its connect to its
/// close, by endpoint; a refused connect is a red tick.
fn connection(out: &mut String, axis: &Axis, c: &Conn, end: Duration, y: f64, lh: f64) {
    let (path, colour) = match c.path() {
        Path::Stream => ("/stream", "#1f77b4"),
        Path::Ws => ("/ws", "#9467bd"),
        Path::Events => ("/events", "#17becf"),
        Path::Other => ("no request", "#999999"),
    };
    let ms = |t: Option<Duration>| t.map_or("never".to_string(), |t| format!("{} ms", t.as_millis()));
    let title = format!(
        "client {} connection to {path}: asked {} ms, connected {}, status {}, retry {}, last read {}, closed {}{}",
        c.client,
        c.opened.as_millis(),
        ms(c.connected),
        c.status.map_or("none".into(), |s| s.to_string()),
        c.retry_ms.map_or("none".into(), |r| format!("{r} ms")),
        ms(c.last_read),
        ms(c.closed_at()),
        c.closer()
            .map_or(String::new(), |w| format!(" by {w:?}").to_lowercase()),
    );
    let x0 = axis.x(c.opened);
    if c.closer() == Some(Closer::Refused) {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#d62728\" stroke-width=\"1.5\"><title>{}</title></line>",
            px(y + lh * 0.3),
            px(y + lh * 0.7),
            esc(&title),
            x = px(x0)
        );
        return;
    }
    let x1 = axis.x(c.closed_at().unwrap_or(end)).max(x0 + 1.0);
    let _ = writeln!(
        out,
        "<rect class=\"conn\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"><title>{}</title></rect>",
        px(x0),
        px(y + lh * 0.42),
        px(x1 - x0),
        px(lh * 0.16),
        esc(&title)
    );
}

/// One timeline entry of client `i` as a mark; the client's own times
/// count from its start (`client_delay`), the harness's are simulated.
fn lifecycle(out: &mut String, axis: &Axis, sc: &Scenario, i: usize, entry: &Entry, y: f64, lh: f64) {
    let at = match entry {
        Entry::Client(t) => t.at + sc.client_delay,
        Entry::Harness { at, .. } => *at,
    };
    let title = format!("{} ms: client {i}: {entry}", at.as_millis());
    let x = axis.x(at);
    let top = y + lh * 0.22;
    let Entry::Client(t) = entry else {
        mark(out, Shape::Cross, x, y + lh / 2.0, lh * 1.6, "#b00", &title);
        return;
    };
    let (shape, colour) = match &t.event {
        Lifecycle::Connecting { .. } => {
            let _ = writeln!(
                out,
                "<line class=\"attempt\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#444\" stroke-width=\"0.8\"><title>{}</title></line>",
                px(y + 2.0),
                px(y + lh - 2.0),
                esc(&title),
                x = px(x)
            );
            return;
        }
        Lifecycle::Backoff { wait, .. } => {
            let x1 = axis.x(at + *wait).max(x + 1.0);
            let _ = writeln!(
                out,
                "<rect class=\"backoff\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ff9800\"><title>{}</title></rect>",
                px(x),
                px(y + lh * 0.72),
                px(x1 - x),
                px(lh * 0.14),
                esc(&title)
            );
            return;
        }
        Lifecycle::Connected { .. } | Lifecycle::Epoch { .. } => return,
        Lifecycle::Disconnected { .. } => (Shape::Cross, "#d62728"),
        Lifecycle::Reset => (Shape::Dot, "#2ca02c"),
        Lifecycle::Fallback { .. } => (Shape::Down, "#ff7f0e"),
        Lifecycle::Upgrade { .. } => (Shape::Up, "#2ca02c"),
        Lifecycle::Failover { .. } => (Shape::Diamond, "#9467bd"),
        Lifecycle::Probe { .. } => (Shape::Ring, "#1f77b4"),
        Lifecycle::ProbeFailed { .. } => (Shape::Ring, "#d62728"),
        Lifecycle::Gap { .. } => (Shape::Square, "#e6b800"),
        Lifecycle::Stopped { .. } => (Shape::Square, "#000000"),
    };
    mark(out, shape, x, top, lh, colour, &title);
}

/// A mark centred at (`x`, `y`), sized for lanes `lh` high.
fn mark(out: &mut String, shape: Shape, x: f64, y: f64, lh: f64, colour: &str, title: &str) {
    let r = (lh / 7.0).clamp(1.5, 4.5);
    let p = |dx: f64, dy: f64| format!("{},{}", px(x + dx * r), px(y + dy * r));
    let (xf, yf) = (x, y);
    let (x, y) = (px(x), px(y));
    let body = match shape {
        Shape::Dot => format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"{}\" fill=\"{colour}\">", px(r)),
        Shape::Ring => format!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\">",
            px(r)
        ),
        Shape::Up => format!(
            "<polygon points=\"{} {} {}\" fill=\"{colour}\">",
            p(0.0, -1.2),
            p(1.1, 0.9),
            p(-1.1, 0.9)
        ),
        Shape::Down => format!(
            "<polygon points=\"{} {} {}\" fill=\"{colour}\">",
            p(0.0, 1.2),
            p(1.1, -0.9),
            p(-1.1, -0.9)
        ),
        Shape::Diamond => format!(
            "<polygon points=\"{} {} {} {}\" fill=\"{colour}\">",
            p(0.0, -1.3),
            p(1.0, 0.0),
            p(0.0, 1.3),
            p(-1.0, 0.0)
        ),
        Shape::Square => format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{s}\" height=\"{s}\" fill=\"{colour}\">",
            px(xf - r),
            px(yf - r),
            s = px(2.0 * r)
        ),
        Shape::Cross => format!(
            "<path d=\"M{}L{}M{}L{}\" stroke=\"{colour}\" stroke-width=\"1.5\" fill=\"none\">",
            p(-1.0, -1.0),
            p(1.0, 1.0),
            p(-1.0, 1.0),
            p(1.0, -1.0)
        ),
    };
    let close = match shape {
        Shape::Dot | Shape::Ring => "</circle>",
        Shape::Up | Shape::Down | Shape::Diamond => "</polygon>",
        Shape::Square => "</rect>",
        Shape::Cross => "</path>",
    };
    let _ = writeln!(out, "{body}<title>{}</title>{close}", esc(title));
}

/// What the marks mean: one small `<svg>` per entry.
pub(super) fn legend(out: &mut String) {
    out.push_str("<div class=\"legend\">\n");
    let bar = |colour: &str| {
        format!(
            "<svg width=\"18\" height=\"12\"><rect x=\"0\" y=\"4\" width=\"18\" height=\"4\" fill=\"{colour}\"/></svg>"
        )
    };
    let items: [(String, &str); 5] = [
        (bar("#1f77b4"), "/stream connection"),
        (bar("#9467bd"), "/ws connection"),
        (bar("#17becf"), "/events (polling) request"),
        (bar("#ff9800"), "backoff wait"),
        (
            "<svg width=\"18\" height=\"12\"><rect x=\"0\" y=\"0\" width=\"18\" height=\"12\" fill=\"#d62728\" fill-opacity=\"0.4\"/></svg>".into(),
            "fault span (colour by kind)",
        ),
    ];
    for (icon, text) in &items {
        let _ = writeln!(out, "<span>{icon} {text}</span>");
    }
    let marks: [(Shape, &str, &str); 10] = [
        (Shape::Up, "#2ca02c", "stub start / upgrade"),
        (Shape::Cross, "#d62728", "disconnected"),
        (Shape::Dot, "#2ca02c", "backoff reset"),
        (Shape::Down, "#ff7f0e", "fallback to polling"),
        (Shape::Diamond, "#9467bd", "failover to another URL"),
        (Shape::Ring, "#1f77b4", "probe"),
        (Shape::Ring, "#d62728", "probe failed"),
        (Shape::Square, "#e6b800", "gap being repaired"),
        (Shape::Square, "#000000", "stopped"),
        (Shape::Cross, "#b00", "engine killed (large)"),
    ];
    out.push_str("<span><svg width=\"12\" height=\"12\"><line x1=\"6\" y1=\"0\" x2=\"6\" y2=\"12\" stroke=\"#444\"/></svg> connection attempt</span>\n");
    for (shape, colour, text) in marks {
        let mut icon = String::new();
        mark(&mut icon, shape, 6.0, 6.0, 28.0, colour, text);
        let _ = writeln!(
            out,
            "<span><svg width=\"12\" height=\"12\">{}</svg> {text}</span>",
            icon.trim_end()
        );
    }
    out.push_str("<span><svg width=\"12\" height=\"12\"><line x1=\"6\" y1=\"0\" x2=\"6\" y2=\"12\" stroke=\"#b00\" stroke-width=\"2\"/></svg> first violation</span>\n</div>\n");
}
