//! The decision engine's guarantees, checked against what it did rather
//! than against the same engine run offline:
//!
//! - restarts, from `ClientRun::engine_runs` (the ids each incarnation of
//!   the engine really applied, reported by `desk::RunOptions::on_event`):
//!   every incarnation resumes one event after the checkpoint it restored,
//!   no checkpoint is past what was processed, the last one ends at the
//!   scenario's total;
//! - risk, from the audit log and the feed: a reference model written apart
//!   from `decision` (it shares no code with its market, risk or broker
//!   modules) replays the fills on its own book, cash and day P&L, and at
//!   every step checks the order notional, position and gross exposure
//!   limits, and that the kill switch halts: nothing that adds exposure is
//!   accepted with the day's loss beyond `risk.daily_loss_limit`, nor at all
//!   once the switch has tripped (the simulation never resumes, and a halt
//!   denies every order).

use std::collections::BTreeMap;

use super::{Class, Violation};
use crate::report::EngineRun;
use crate::{Report, Scenario};

/// The engine's rules, by name: a violation message starts with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Each incarnation's first processed id is its restored id + 1, and
    /// its ids then go up by one.
    ResumesAfterCheckpoint,
    /// A restored checkpoint is never past what the previous incarnation
    /// processed, nor behind the checkpoint that one restored.
    CheckpointNotAhead,
    /// The last incarnation ends at the scenario's total.
    ReachesTotal,
    /// Every audit line parses, and names a tick of its symbol at its price.
    AuditMatchesFeed,
    /// No accepted adding order above `risk.max_order_notional`.
    MaxOrderNotional,
    /// No position beyond `risk.max_position` shares either way.
    MaxPosition,
    /// No gross exposure beyond `risk.max_gross_exposure` after an adding fill.
    MaxGrossExposure,
    /// Nothing that adds exposure is accepted while the day's loss is
    /// beyond `risk.daily_loss_limit`.
    DailyLossLimit,
    /// Once the loss has gone beyond the limit the kill switch has halted:
    /// nothing is accepted any more, adding or not.
    KillSwitchHalts,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::ResumesAfterCheckpoint => "engine_resumes_after_checkpoint",
            Rule::CheckpointNotAhead => "engine_checkpoint_not_ahead",
            Rule::ReachesTotal => "engine_reaches_total",
            Rule::AuditMatchesFeed => "engine_audit_matches_feed",
            Rule::MaxOrderNotional => "risk_max_order_notional",
            Rule::MaxPosition => "risk_max_position",
            Rule::MaxGrossExposure => "risk_max_gross_exposure",
            Rule::DailyLossLimit => "risk_daily_loss_limit",
            Rule::KillSwitchHalts => "risk_kill_switch_halts",
        }
    }
}

/// A rule broken, before it is said of which client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Broken {
    pub rule: Rule,
    pub what: String,
}

fn broken(rule: Rule, what: String) -> Broken {
    Broken { rule, what }
}

pub(super) fn check(scenario: &Scenario, report: &Report) -> Result<(), Violation> {
    let config = crate::engine_config();
    let total = scenario.total_events() as u64;
    // Event `i + 1` is the day's payload `i` only on a wire without publishing.
    let feed = scenario
        .publishing
        .is_none()
        .then(|| &crate::engine::day()[..scenario.events.min(crate::engine::day().len())]);
    for (i, c) in report.clients.iter().enumerate() {
        let fail = |b: Broken| {
            super::violation(
                Class::Safety,
                c.done_at,
                format!("[{}] client {i}: {}", b.rule.name(), b.what),
            )
        };
        if !c.engine_runs.is_empty() {
            let end = scenario.expect_error.is_none().then_some(total);
            incarnations(&c.engine_runs, end).map_err(fail)?;
        }
        let Some(audit) = &c.audit else { continue };
        // The feed as far as the engine processed it.
        let seen = c.ids.last().map_or(0, |&id| id as usize);
        let feed = feed.map(|f| &f[..seen.min(f.len())]);
        let model = risk(audit, feed, &config).map_err(fail)?;
        if feed.is_some()
            && let Some((at, loss)) = model.tripped
            && (c.kill_switch_trips == 0 || c.engine_state != Some(decision::TradingState::Halted))
        {
            // Nothing in the simulation resumes: once tripped, halted.
            return Err(fail(broken(
                Rule::KillSwitchHalts,
                format!(
                    "the day's loss reached {loss:.2} at event {at}, beyond the limit of {}, but the engine ends {} with {} kill switch trips: it never halted",
                    config.risk.daily_loss_limit,
                    c.engine_state
                        .map_or("in no known state".to_string(), |s| s.to_string()),
                    c.kill_switch_trips
                ),
            )));
        }
    }
    Ok(())
}

/// The restart rules over the incarnations, in order; `end`: the id the
/// last must end at, when the run is expected to finish.
pub(crate) fn incarnations(runs: &[EngineRun], end: Option<u64>) -> Result<(), Broken> {
    for (k, r) in runs.iter().enumerate() {
        if let Some(&first) = r.ids.first()
            && first != r.restored + 1
        {
            return Err(broken(
                Rule::ResumesAfterCheckpoint,
                format!(
                    "the engine resumed at {first} after its checkpoint at {} (incarnation {k})",
                    r.restored
                ),
            ));
        }
        if let Some(w) = r.ids.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(broken(
                Rule::ResumesAfterCheckpoint,
                format!(
                    "the engine processed {} right after {} (incarnation {k})",
                    w[1], w[0]
                ),
            ));
        }
        if k > 0 {
            let prev = &runs[k - 1];
            let reached = prev.ids.last().copied().unwrap_or(prev.restored);
            if r.restored > reached || r.restored < prev.restored {
                return Err(broken(
                    Rule::CheckpointNotAhead,
                    format!(
                        "incarnation {k} restored a checkpoint at {}, but incarnation {} restored {} and processed up to {reached}",
                        r.restored,
                        k - 1,
                        prev.restored
                    ),
                ));
            }
        }
    }
    if let (Some(end), Some(last)) = (end, runs.last()) {
        let reached = last.ids.last().copied().unwrap_or(last.restored);
        if reached != end || last.killed {
            return Err(broken(
                Rule::ReachesTotal,
                format!(
                    "the last incarnation ({}) ended at {reached}{}, not at the scenario's {end}",
                    runs.len() - 1,
                    if last.killed { ", killed" } else { "" }
                ),
            ));
        }
    }
    Ok(())
}

/// One line of the audit log, as the model reads it.
#[derive(Debug, serde::Deserialize)]
struct Line {
    event_id: u64,
    symbol: String,
    action: String,
    qty: u64,
    price: f64,
    verdict: String,
}

/// One symbol's price as the model trusts it: the price band with its
/// confirmation, from the configuration's documentation.
#[derive(Debug, Clone)]
struct Mark {
    trusted: f64,
    /// The first out-of-band price of a run of them, and how many.
    run: Option<(f64, u32)>,
}

/// The reference book: cash and shares, marked at trusted prices; the day
/// P&L is the change in (cash + marked shares) since the day started.
#[derive(Debug)]
struct Book {
    cash: f64,
    shares: BTreeMap<String, i64>,
    marks: BTreeMap<String, Mark>,
    now_s: Option<i64>,
    day: Option<i64>,
    day_start_value: f64,
    /// The loss went beyond the limit: the kill switch has tripped (the
    /// event, the loss then).
    halted_at: Option<(u64, f64)>,
}

impl Book {
    fn value(&self) -> f64 {
        self.cash
            + self
                .shares
                .iter()
                .map(|(s, &q)| q as f64 * self.marks.get(s).map_or(0.0, |m| m.trusted))
                .sum::<f64>()
    }

    fn day_loss(&self) -> f64 {
        self.day_start_value - self.value()
    }

    fn gross(&self) -> f64 {
        self.shares
            .iter()
            .map(|(s, &q)| q.unsigned_abs() as f64 * self.marks.get(s).map_or(0.0, |m| m.trusted))
            .sum()
    }

    fn advance(&mut self, ts_s: i64) {
        let now = self.now_s.map_or(ts_s, |n| n.max(ts_s));
        self.now_s = Some(now);
        let day = now.div_euclid(86_400);
        if self.day.is_none_or(|d| day > d) {
            self.day = Some(day);
            self.day_start_value = self.value();
        }
    }

    fn tick(&mut self, symbol: &str, price: f64, band_pct: f64, confirm: u32) {
        let near = |p: f64, reference: f64| (p - reference).abs() <= reference * band_pct / 100.0;
        let Some(m) = self.marks.get_mut(symbol) else {
            self.marks.insert(
                symbol.to_owned(),
                Mark {
                    trusted: price,
                    run: None,
                },
            );
            return;
        };
        if near(price, m.trusted) {
            m.trusted = price;
            m.run = None;
            return;
        }
        let run = match m.run {
            Some((first, n)) if near(price, first) => (first, n + 1),
            _ => (price, 1),
        };
        if confirm > 0 && run.1 >= confirm {
            m.trusted = price;
            m.run = None;
        } else {
            m.run = Some(run);
        }
    }

    /// Trips the switch when the loss is beyond the limit (with a margin
    /// for the rounding of two ways of adding the same money).
    fn trip(&mut self, id: u64, limit: f64) {
        let loss = self.day_loss();
        if self.halted_at.is_none() && loss > limit + LOSS_MARGIN {
            self.halted_at = Some((id, loss));
        }
    }
}

/// Money the reference model and the engine may disagree by: they add the
/// same fills in another order.
const LOSS_MARGIN: f64 = 1e-6;

/// What the reference model saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    /// The event at which the day's loss first went beyond the limit, and
    /// the loss then.
    pub tripped: Option<(u64, f64)>,
}

/// Replays `audit` over `feed` (event `i + 1` is `feed[i]`; None: the feed
/// is not known, each order's symbol is marked at its price) on the
/// reference book, checking every risk rule at every step.
pub(crate) fn risk(
    audit: &str,
    feed: Option<&[wire::Payload]>,
    config: &decision::Config,
) -> Result<Model, Broken> {
    let limits = &config.risk;
    let mut lines = Vec::new();
    for (n, text) in audit.lines().enumerate() {
        // Epoch changes share the log; they move no money.
        if text.starts_with("{\"epoch_change\"") || text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| {
            broken(
                Rule::AuditMatchesFeed,
                format!("audit line {} does not parse as a decision: {e}: {text}", n + 1),
            )
        })?;
        if let Some(prev) = lines.last().map(|(_, l): &(usize, Line)| l.event_id)
            && line.event_id < prev
        {
            return Err(broken(
                Rule::AuditMatchesFeed,
                format!(
                    "audit line {} is for event {} after one for event {prev}",
                    n + 1,
                    line.event_id
                ),
            ));
        }
        lines.push((n + 1, line));
    }
    let mut book = Book {
        cash: config.broker.starting_cash,
        shares: BTreeMap::new(),
        marks: BTreeMap::new(),
        now_s: None,
        day: None,
        day_start_value: config.broker.starting_cash,
        halted_at: None,
    };
    let last_id = lines.last().map_or(0, |(_, l)| l.event_id);
    let feed_len = feed.map_or(last_id, |f| f.len() as u64);
    let mut next = 0usize;
    for id in 1..=feed_len.max(last_id) {
        let payload = feed.and_then(|f| f.get(id as usize - 1));
        let tick = match payload {
            Some(p) if p.validate().is_err() => None,
            Some(wire::Payload::Tick(t)) => {
                book.advance(t.ts_utc.as_second());
                book.tick(
                    &t.symbol,
                    t.last,
                    limits.price_band_pct,
                    limits.band_confirm_ticks,
                );
                Some(t)
            }
            Some(wire::Payload::News(news)) => {
                book.advance(news.ts_utc.as_second());
                None
            }
            _ => None,
        };
        book.trip(id, limits.daily_loss_limit);
        while let Some((n, line)) = lines.get(next).filter(|(_, l)| l.event_id == id) {
            next += 1;
            match (feed, tick) {
                (Some(_), Some(t)) if t.symbol == line.symbol && t.last == line.price => {}
                (Some(_), _) => {
                    return Err(broken(
                        Rule::AuditMatchesFeed,
                        format!(
                            "audit line {n} is an order for {} at {} on event {id}, which is no tick of it at that price",
                            line.symbol, line.price
                        ),
                    ));
                }
                (None, _) => {
                    book.tick(
                        &line.symbol,
                        line.price,
                        limits.price_band_pct,
                        limits.band_confirm_ticks,
                    );
                    book.trip(id, limits.daily_loss_limit);
                }
            }
            order(&mut book, *n, line, id, config)?;
        }
    }
    Ok(Model {
        tripped: book.halted_at,
    })
}

/// One decision on the reference book: the rules it must keep if accepted,
/// then its fill.
fn order(book: &mut Book, n: usize, line: &Line, id: u64, config: &decision::Config) -> Result<(), Broken> {
    let limits = &config.risk;
    let sign: i64 = match line.action.as_str() {
        "buy" => 1,
        "sell" => -1,
        other => {
            return Err(broken(
                Rule::AuditMatchesFeed,
                format!("audit line {n}: action {other:?} is neither buy nor sell"),
            ));
        }
    };
    match line.verdict.as_str() {
        "accept" => {}
        "deny" => return Ok(()),
        other => {
            return Err(broken(
                Rule::AuditMatchesFeed,
                format!("audit line {n}: verdict {other:?} is neither accept nor deny"),
            ));
        }
    }
    let held = book.shares.get(&line.symbol).copied().unwrap_or(0);
    let qty = i64::try_from(line.qty).unwrap_or(i64::MAX);
    let after = held.saturating_add(sign * qty);
    // Toward zero without crossing it (closing to flat counts).
    let reducing = held != 0 && held.signum() != sign && line.qty <= held.unsigned_abs();
    let what = format!(
        "event {id} (audit line {n}): {} {} {} at {} accepted",
        line.action, line.qty, line.symbol, line.price
    );
    let loss = book.day_loss();
    if !reducing {
        if loss > limits.daily_loss_limit + LOSS_MARGIN {
            return Err(broken(
                Rule::DailyLossLimit,
                format!(
                    "{what}, adding exposure with the day's loss at {loss:.2}, beyond the limit of {}",
                    limits.daily_loss_limit
                ),
            ));
        }
        if let Some((at, _)) = book.halted_at {
            return Err(broken(
                Rule::KillSwitchHalts,
                format!(
                    "{what}, adding exposure after the kill switch tripped at event {at} (the day's loss went beyond {}; now {loss:.2}): it never halted",
                    limits.daily_loss_limit
                ),
            ));
        }
        let notional = line.qty as f64 * line.price;
        if notional > limits.max_order_notional {
            return Err(broken(
                Rule::MaxOrderNotional,
                format!(
                    "{what}: a notional of {notional:.2}, above the limit of {}",
                    limits.max_order_notional
                ),
            ));
        }
    } else if let Some((at, _)) = book.halted_at {
        return Err(broken(
            Rule::KillSwitchHalts,
            format!("{what} after the kill switch tripped at event {at}: a halt denies every order"),
        ));
    }
    // The fill: all of it, slippage against the trader.
    let slip = config.broker.slippage_bps / 10_000.0;
    let paid = line.price * (1.0 + sign as f64 * slip);
    book.cash -= (sign * qty) as f64 * paid;
    if after == 0 {
        book.shares.remove(&line.symbol);
    } else {
        book.shares.insert(line.symbol.clone(), after);
    }
    if after.unsigned_abs() > limits.max_position {
        return Err(broken(
            Rule::MaxPosition,
            format!(
                "{what}: {} now holds {after} shares, beyond the limit of {}",
                line.symbol, limits.max_position
            ),
        ));
    }
    let gross = book.gross();
    if !reducing && gross > limits.max_gross_exposure + LOSS_MARGIN {
        return Err(broken(
            Rule::MaxGrossExposure,
            format!(
                "{what}: the gross exposure is now {gross:.2}, above the limit of {}",
                limits.max_gross_exposure
            ),
        ));
    }
    book.trip(id, limits.daily_loss_limit);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[(&str, f64, &str)]) -> Vec<wire::Payload> {
        let text: String = lines
            .iter()
            .map(|(symbol, last, ts)| {
                format!(
                    "{{\"kind\":\"tick\",\"symbol\":\"{symbol}\",\"last\":{last},\"ts_utc\":\"2026-03-02T14:{ts}Z\"}}\n"
                )
            })
            .collect();
        wire::fixture::parse("test", &text).unwrap()
    }

    fn line(id: u64, symbol: &str, action: &str, qty: u64, price: f64, verdict: &str) -> String {
        let code = if verdict == "accept" {
            "null".to_string()
        } else {
            "\"halted\"".to_string()
        };
        format!(
            "{{\"event_id\":{id},\"ts\":\"2026-03-02T14:30:00Z\",\"symbol\":\"{symbol}\",\"action\":\"{action}\",\"qty\":{qty},\"price\":{price},\"reason\":\"news_momentum_long\",\"verdict\":\"{verdict}\",\"code\":{code}}}\n"
        )
    }

    fn rule(audit: &str, feed: &[wire::Payload]) -> Option<Rule> {
        risk(audit, Some(feed), &crate::engine_config())
            .err()
            .map(|b| b.rule)
    }

    #[test]
    fn the_real_offline_audit_keeps_every_rule() {
        let day = crate::engine::day();
        for events in [1500, day.len()] {
            let audit = crate::offline_audit(events);
            assert!(
                audit.lines().any(|l| l.contains("\"accept\"")),
                "{events}: no fills"
            );
            let model = risk(&audit, Some(&day[..events]), &crate::engine_config()).unwrap();
            // The NVDA bought at event 1299 has lost 55.45 by event 1368,
            // where the engine halts too (worked out with the engine's own
            // state, offline).
            let (at, loss) = model.tripped.expect("the model's switch trips");
            assert_eq!(at, 1368);
            assert!((loss - 55.446_65).abs() < 1e-6, "{loss}");
        }
    }

    #[test]
    fn the_offline_audit_accepting_its_first_halted_order_is_rejected() {
        let day = crate::engine::day();
        let audit = crate::offline_audit(day.len());
        let mut lines: Vec<String> = audit.lines().map(|l| format!("{l}\n")).collect();
        let at = lines
            .iter()
            .position(|l| l.contains("\"halted\""))
            .expect("the sim's day trips the kill switch");
        let denied: Line = serde_json::from_str(&lines[at]).unwrap();
        lines[at] = line(
            denied.event_id,
            &denied.symbol,
            &denied.action,
            denied.qty,
            denied.price,
            "accept",
        );
        let got = rule(&lines.concat(), day);
        assert!(
            matches!(got, Some(Rule::DailyLossLimit | Rule::KillSwitchHalts)),
            "{got:?}"
        );
    }

    #[test]
    fn a_position_beyond_the_limit_is_rejected() {
        let f = feed(&[("X", 10.0, "30:00"), ("X", 10.0, "30:01")]);
        let audit = line(1, "X", "buy", 400, 10.0, "accept") + &line(2, "X", "buy", 200, 10.0, "accept");
        assert_eq!(rule(&audit, &f), Some(Rule::MaxPosition));
        let short = line(1, "X", "sell", 300, 10.0, "accept") + &line(2, "X", "sell", 201, 10.0, "accept");
        assert_eq!(rule(&short, &f), Some(Rule::MaxPosition));
        let within = line(1, "X", "buy", 400, 10.0, "accept") + &line(2, "X", "buy", 100, 10.0, "accept");
        assert_eq!(rule(&within, &f), None);
    }

    #[test]
    fn an_order_notional_or_gross_exposure_beyond_the_limit_is_rejected() {
        let f = feed(&[
            ("X", 100.0, "30:00"),
            ("Y", 100.0, "30:01"),
            ("Z", 100.0, "30:02"),
        ]);
        assert_eq!(
            rule(&line(1, "X", "buy", 300, 100.0, "accept"), &f),
            Some(Rule::MaxOrderNotional)
        );
        let gross = line(1, "X", "buy", 200, 100.0, "accept")
            + &line(2, "Y", "buy", 200, 100.0, "accept")
            + &line(3, "Z", "buy", 200, 100.0, "accept");
        assert_eq!(rule(&gross, &f), Some(Rule::MaxGrossExposure));
    }

    #[test]
    fn adding_with_the_loss_beyond_the_limit_is_rejected() {
        // 100 X bought at 100 (plus 5 bps), then X at 99: a loss of 105.
        let f = feed(&[("X", 100.0, "30:00"), ("X", 99.0, "30:01"), ("X", 99.0, "30:02")]);
        let audit = line(1, "X", "buy", 100, 100.0, "accept") + &line(3, "X", "buy", 10, 99.0, "accept");
        assert_eq!(rule(&audit, &f), Some(Rule::DailyLossLimit));
        // Denied, as the engine must: nothing broken.
        let denied = line(1, "X", "buy", 100, 100.0, "accept") + &line(3, "X", "buy", 10, 99.0, "deny");
        assert_eq!(rule(&denied, &f), None);
    }

    #[test]
    fn anything_accepted_after_the_switch_tripped_is_rejected() {
        // The loss goes beyond 50 at event 2, then X recovers: still halted.
        let f = feed(&[
            ("X", 100.0, "30:00"),
            ("X", 99.0, "30:01"),
            ("X", 101.0, "30:02"),
            ("Y", 50.0, "30:03"),
        ]);
        let bought = line(1, "X", "buy", 100, 100.0, "accept");
        let adding = bought.clone() + &line(4, "Y", "buy", 10, 50.0, "accept");
        assert_eq!(rule(&adding, &f), Some(Rule::KillSwitchHalts));
        let reducing = bought.clone() + &line(3, "X", "sell", 100, 101.0, "accept");
        assert_eq!(rule(&reducing, &f), Some(Rule::KillSwitchHalts));
        let denied =
            bought + &line(3, "X", "sell", 100, 101.0, "deny") + &line(4, "Y", "buy", 10, 50.0, "deny");
        assert_eq!(rule(&denied, &f), None);
    }

    #[test]
    fn a_bad_tick_does_not_move_the_model_marks() {
        // One tick at 10x is outside the band: not trusted, no loss.
        let f = feed(&[("X", 100.0, "30:00"), ("X", 10.0, "30:01"), ("X", 100.0, "30:02")]);
        let audit = line(1, "X", "buy", 100, 100.0, "accept") + &line(3, "X", "buy", 10, 100.0, "accept");
        assert_eq!(rule(&audit, &f), None);
    }

    #[test]
    fn an_audit_line_that_is_not_the_feed_is_rejected() {
        let f = feed(&[("X", 100.0, "30:00")]);
        assert_eq!(
            rule(&line(1, "Y", "buy", 1, 100.0, "accept"), &f),
            Some(Rule::AuditMatchesFeed)
        );
        assert_eq!(
            rule(&line(1, "X", "buy", 1, 99.0, "accept"), &f),
            Some(Rule::AuditMatchesFeed)
        );
        assert_eq!(rule("{not json\n", &f), Some(Rule::AuditMatchesFeed));
    }

    fn inc(restored: u64, ids: std::ops::RangeInclusive<u64>, killed: bool) -> EngineRun {
        EngineRun {
            restored,
            ids: ids.collect(),
            killed,
        }
    }

    #[test]
    fn restarts_resume_one_after_the_checkpoint() {
        let good = [inc(0, 1..=1299, true), inc(1250, 1251..=1500, false)];
        assert_eq!(incarnations(&good, Some(1500)), Ok(()));
        assert_eq!(
            crate::engine::effective_ids(&good),
            (1..=1500).collect::<Vec<_>>()
        );
        let skipped = [inc(0, 1..=1299, true), inc(1250, 1252..=1500, false)];
        let b = incarnations(&skipped, Some(1500)).unwrap_err();
        assert_eq!(b.rule, Rule::ResumesAfterCheckpoint);
        assert_eq!(
            b.what,
            "the engine resumed at 1252 after its checkpoint at 1250 (incarnation 1)"
        );
        let ahead = [inc(0, 1..=1240, true), inc(1250, 1251..=1500, false)];
        assert_eq!(
            incarnations(&ahead, Some(1500)).unwrap_err().rule,
            Rule::CheckpointNotAhead
        );
        let short = [inc(0, 1..=1499, false)];
        assert_eq!(
            incarnations(&short, Some(1500)).unwrap_err().rule,
            Rule::ReachesTotal
        );
        let gap = [EngineRun {
            restored: 0,
            ids: vec![1, 2, 4],
            killed: false,
        }];
        assert_eq!(
            incarnations(&gap, None).unwrap_err().rule,
            Rule::ResumesAfterCheckpoint
        );
    }
}
