//! The delivered id over simulated time: a step line per client (each id
//! at the time it was handed to the subscriber), the stub's head dashed,
//! the faults shaded, ids that break the order circled, and the first
//! violation's line. Deliveries within one pixel column share one step.

use std::fmt::Write as _;
use std::time::Duration;

use super::faults::{Span, fault_colour};
use super::{Axis, LEFT, PALETTE, WIDTH, client_label, esc, px};
use crate::{Report, Scenario};

const HEIGHT: f64 = 280.0;
/// Above the plot: the violation's label.
const TOP: f64 = 20.0;
/// Below it: the time labels.
const BOTTOM: f64 = 22.0;
/// Ids out of order circled per client, at most.
const MAX_CIRCLES: usize = 40;

/// The plot's `<svg>`, then its legend.
pub(super) fn draw(
    out: &mut String,
    axis: &Axis,
    sc: &Scenario,
    report: &Report,
    spans: &[Span<'_>],
    violation: Option<&(Duration, String)>,
) {
    let top_id = report
        .clients
        .iter()
        .flat_map(|c| c.ids.iter().copied())
        .chain(report.heads.iter().map(|(_, h)| *h))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_bottom = HEIGHT - BOTTOM;
    let y = |id: u64| TOP + (1.0 - id as f64 / top_id as f64) * (plot_bottom - TOP);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ids\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        w = px(WIDTH),
        h = px(HEIGHT)
    );
    let _ = writeln!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fcfcfc\" stroke=\"#ccc\"/>",
        px(LEFT),
        px(TOP),
        px(axis.x(Duration::MAX) - LEFT),
        px(plot_bottom - TOP)
    );
    for id in id_ticks(top_id) {
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">id {id}</text>",
            px(LEFT),
            px(axis.x(Duration::MAX)),
            px(LEFT - 6.0),
            px(y(id) + 4.0),
            y = px(y(id))
        );
    }
    for (x, label) in axis.ticks() {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#e4e4e4\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            px(TOP),
            px(plot_bottom),
            px(plot_bottom + 15.0),
            x = px(x)
        );
    }
    for s in spans {
        let (x0, x1) = (axis.x(s.from), axis.x(s.to).max(axis.x(s.from) + 2.0));
        let _ = writeln!(
            out,
            "<rect class=\"fault\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.12\"><title>{} at {} ms</title></rect>",
            px(x0),
            px(TOP),
            px(x1 - x0),
            px(plot_bottom - TOP),
            fault_colour(s.fault),
            esc(&format!("{:?}", s.fault)),
            s.from.as_millis()
        );
    }
    if !report.heads.is_empty() {
        let steps: Vec<(f64, f64)> = report.heads.iter().map(|(t, h)| (axis.x(*t), y(*h))).collect();
        let _ = writeln!(
            out,
            "<path class=\"head\" d=\"{}\" fill=\"none\" stroke=\"#555\" stroke-width=\"1\" stroke-dasharray=\"4 3\"><title>the stub's head</title></path>",
            step_path((LEFT, y(0)), &steps, axis.x(report.elapsed))
        );
    }
    let mut circles = String::new();
    for (i, c) in report.clients.iter().enumerate() {
        if c.at.len() != c.ids.len() || c.ids.is_empty() {
            continue;
        }
        let colour = PALETTE[i % PALETTE.len()];
        let steps: Vec<(f64, f64)> =
            c.at.iter()
                .zip(&c.ids)
                .map(|(t, id)| (axis.x(*t), y(*id)))
                .collect();
        let last = c.ids.last().copied().unwrap_or(0);
        let end = c.at.last().copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "<path class=\"client-ids\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}: last id {last} at {} ms</title></path>",
            step_path(
                (axis.x(sc.client_delay), y(0)),
                &steps,
                steps.last().map_or(0.0, |s| s.0)
            ),
            esc(&client_label(sc, i)),
            end.as_millis()
        );
        let mut prev = 0;
        let mut drawn = 0;
        for (t, id) in c.at.iter().zip(&c.ids) {
            if *id != prev + 1 && drawn < MAX_CIRCLES {
                drawn += 1;
                let _ = writeln!(
                    circles,
                    "<circle class=\"out-of-order\" cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"none\" stroke=\"#b00\" stroke-width=\"1.5\"><title>client {i}: id {id} after id {prev} at {} ms</title></circle>",
                    px(axis.x(*t)),
                    px(y(*id)),
                    t.as_millis()
                );
            }
            prev = *id;
        }
    }
    out.push_str(&circles);
    if let Some((at, text)) = violation {
        let x = axis.x(*at);
        let _ = writeln!(
            out,
            "<g class=\"violation\"><title>{}</title><line x1=\"{x}\" y1=\"4\" x2=\"{x}\" y2=\"{}\" stroke=\"#b00\" stroke-width=\"2\"/><text x=\"{}\" y=\"14\" fill=\"#b00\" text-anchor=\"{}\">first violation at {} ms</text></g>",
            esc(text),
            px(plot_bottom),
            px(if x > WIDTH * 0.6 { x - 4.0 } else { x + 4.0 }),
            if x > WIDTH * 0.6 { "end" } else { "start" },
            at.as_millis(),
            x = px(x)
        );
    }
    out.push_str("</svg>\n");
    legend(out, sc, report);
}

/// Each client's colour and last delivered id.
fn legend(out: &mut String, sc: &Scenario, report: &Report) {
    out.push_str("<div class=\"legend\">\n<span><svg width=\"18\" height=\"12\"><line x1=\"0\" y1=\"6\" x2=\"18\" y2=\"6\" stroke=\"#555\" stroke-dasharray=\"4 3\"/></svg> the stub's head</span>\n");
    for (i, c) in report.clients.iter().enumerate() {
        let last = c.ids.last().map_or("none".to_string(), u64::to_string);
        let note = if c.at.len() != c.ids.len() {
            " (no delivery times: not plotted)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<span class=\"client\"><span class=\"sw\" style=\"background:{}\"></span>{}: {} ids, last id {last}{note}</span>",
            PALETTE[i % PALETTE.len()],
            esc(&client_label(sc, i)),
            c.ids.len()
        );
    }
    out.push_str("</div>\n");
}

/// A step line from `start` through `steps` (each a new level at its x),
/// held level to `end_x`. Steps in one pixel column are one vertical
/// stroke over their range, ending at the last one's level.
fn step_path(start: (f64, f64), steps: &[(f64, f64)], end_x: f64) -> String {
    let mut d = format!("M{},{}", px(start.0), px(start.1));
    let mut level = start.1;
    let mut i = 0;
    while i < steps.len() {
        let column = steps[i].0.floor();
        let mut j = i;
        while j + 1 < steps.len() && steps[j + 1].0.floor() == column {
            j += 1;
        }
        let group = &steps[i..=j];
        let lo = group.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        let hi = group.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let last = group[group.len() - 1].1;
        let mut ys = vec![level];
        ys.extend(if last == lo {
            vec![hi, lo]
        } else if last == hi {
            vec![lo, hi]
        } else {
            vec![lo, hi, last]
        });
        // A stop between its neighbours adds nothing to the stroke.
        let mut k = 1;
        while k < ys.len() {
            let between = k + 1 < ys.len()
                && ((ys[k - 1] <= ys[k] && ys[k] <= ys[k + 1]) || (ys[k - 1] >= ys[k] && ys[k] >= ys[k + 1]));
            if between || px(ys[k]) == px(ys[k - 1]) {
                ys.remove(k);
            } else {
                k += 1;
            }
        }
        let _ = write!(d, "H{}", px(group[0].0));
        for v in &ys[1..] {
            let _ = write!(d, "V{}", px(*v));
        }
        level = last;
        i = j + 1;
    }
    let _ = write!(d, "H{}", px(end_x));
    d
}

/// Round ids for the y axis: at most 6 lines, 0 included.
fn id_ticks(top: u64) -> Vec<u64> {
    let mut step = 1;
    while top / step > 5 {
        step = match step.to_string().as_bytes()[0] {
            b'1' => step * 2,
            b'2' => step / 2 * 5,
            _ => step * 2,
        };
    }
    (0..=top / step).map(|k| k * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_ticks_are_round() {
        assert_eq!(id_ticks(400), vec![0, 100, 200, 300, 400]);
        assert_eq!(id_ticks(1), vec![0, 1]);
        assert_eq!(id_ticks(7), vec![0, 2, 4, 6]);
        assert_eq!(id_ticks(130), vec![0, 50, 100]);
    }

    #[test]
    fn steps_in_one_column_are_one_step() {
        let d = step_path((0.0, 10.0), &[(5.2, 8.0), (5.7, 6.0), (9.0, 4.0)], 12.0);
        assert_eq!(d, "M0.0,10.0H5.2V6.0H9.0V4.0H12.0");
        // Out of order within a column: the stroke covers the range and
        // ends at the last level.
        let d = step_path((0.0, 10.0), &[(5.2, 4.0), (5.7, 8.0)], 12.0);
        assert_eq!(d, "M0.0,10.0H5.2V4.0V8.0H12.0");
    }
}
