//! The risk reference model: the audit log's fills replayed on a book of
//! its own (cash, shares, trusted marks, the day's P&L), every risk rule
//! checked at every step. It shares no code with `decision`.

use std::collections::BTreeMap;

use super::{Broken, Rule, broken};

/// One line of the audit log, as the model reads it.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Line {
    pub(super) event_id: u64,
    pub(super) symbol: String,
    pub(super) action: String,
    pub(super) qty: u64,
    pub(super) price: f64,
    pub(super) verdict: String,
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
