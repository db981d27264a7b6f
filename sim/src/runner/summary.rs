//! The sweep's summary: one table row per scenario family, the swarm's
//! spread (what the seeds drew, how fast clients caught up, which goals
//! were hit) and the goals' coverage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use sim::Sometimes;
use transport::Transport;

use super::sweep::Seed;

/// Every seed one scenario family ran, and the wall time it took.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub seeds: Vec<Seed>,
    /// Wall seconds, summed over the rounds.
    pub wall: f64,
}

/// A goal and the seeds that hit it.
#[derive(Debug, PartialEq)]
pub struct Goal {
    pub goal: Sometimes,
    pub hits: usize,
    pub first: Option<u64>,
}

impl Family {
    /// The family's goals: any seed's scenario's `goals()` (they agree).
    pub fn goals(&self) -> Vec<Sometimes> {
        self.seeds
            .iter()
            .find_map(|s| s.scenario.as_ref())
            .map_or_else(Vec::new, sim::Scenario::goals)
    }

    /// Each goal, in `goals()` order, with the seeds that hit it.
    pub fn coverage(&self) -> Vec<Goal> {
        self.goals()
            .into_iter()
            .map(|goal| {
                let mut hit = self.seeds.iter().filter(|s| s.outcome.hits.contains(&goal));
                let first = hit.next().map(|s| s.seed);
                Goal {
                    goal,
                    hits: usize::from(first.is_some()) + hit.count(),
                    first,
                }
            })
            .collect()
    }

    /// Simulated seconds over every finished run.
    pub fn simulated(&self) -> f64 {
        self.reports().map(|(_, r)| r.elapsed.as_secs_f64()).sum()
    }

    fn reports(&self) -> impl Iterator<Item = (&sim::Scenario, &sim::Report)> {
        self.seeds
            .iter()
            .filter_map(|s| Some((s.scenario.as_ref()?, s.outcome.report.as_ref()?)))
    }

    /// Each finished client's catch-up: its last event after the scenario
    /// settled (faults healed, fixture published), saturating at zero.
    pub fn catch_ups(&self) -> Vec<Duration> {
        let mut out: Vec<Duration> = self
            .reports()
            .flat_map(|(sc, r)| {
                let settled = sc.settles_at();
                r.clients
                    .iter()
                    .filter_map(move |c| c.done_at.map(|d| d.saturating_sub(settled)))
            })
            .collect();
        out.sort();
        out
    }

    /// The table row: runs, failures (seeds, plus one per goal never hit),
    /// reconnects, fallbacks, worst catch-up, sim s / wall s / core.
    pub fn row(&self, jobs: usize) -> String {
        let failures = self.seeds.iter().filter(|s| s.outcome.verdict.is_err()).count()
            + self.coverage().iter().filter(|g| g.hits == 0).count();
        let (mut reconnects, mut fallbacks) = (0, 0);
        for (_, r) in self.reports() {
            for c in &r.clients {
                reconnects += c.reconnects;
                fallbacks += c.fallbacks;
            }
        }
        let worst = self.catch_ups().last().map_or(0, Duration::as_millis);
        format!(
            "| {} | {} | {failures} | {reconnects} | {fallbacks} | {worst} | {:.0} |",
            self.name,
            self.seeds.len(),
            self.simulated() / (self.wall * jobs as f64).max(1e-9)
        )
    }

    /// What the seeds drew and how they went: clients, transports, engine,
    /// breaking faults by kind, catch-up percentiles, each goal's hits.
    pub fn spread(&self) -> String {
        let drawn: Vec<&sim::Scenario> = self.seeds.iter().filter_map(|s| s.scenario.as_ref()).collect();
        let mut out = format!("{} spread over {} seeds:\n", self.name, self.seeds.len());
        let count = |f: &dyn Fn(&sim::Scenario) -> bool| drawn.iter().filter(|s| f(s)).count();
        let _ = writeln!(
            out,
            "  clients per seed: 1: {}, 2-4: {}, 5-12: {}, more: {}",
            count(&|s| s.clients.len() <= 1),
            count(&|s| (2..=4).contains(&s.clients.len())),
            count(&|s| (5..=12).contains(&s.clients.len())),
            count(&|s| s.clients.len() > 12)
        );
        let kinds = [Transport::Sse, Transport::Ws, Transport::Poll];
        let per_kind: Vec<String> = kinds
            .iter()
            .map(|k| {
                let clients: usize = drawn
                    .iter()
                    .map(|s| s.clients.iter().filter(|c| *c == k).count())
                    .sum();
                let seeds = count(&|s| s.clients.contains(k));
                format!("{} {clients} clients in {seeds} seeds", k.as_str())
            })
            .collect();
        let _ = writeln!(
            out,
            "  transports: {}; auto fallback in {} seeds",
            per_kind.join(", "),
            count(&|s| s.fallback)
        );
        let _ = writeln!(
            out,
            "  engine: {} seeds ({} killed and restarted)",
            count(&|s| s.engine.is_some()),
            count(&|s| matches!(s.engine, Some(Some(_))))
        );
        let mut faults: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for s in &drawn {
            let mut kinds: Vec<&str> = s
                .faults
                .iter()
                .filter(|(_, f)| f.breaks())
                .map(|(_, f)| f.kind())
                .collect();
            for k in &kinds {
                faults.entry(k).or_default().0 += 1;
            }
            kinds.sort();
            kinds.dedup();
            for k in kinds {
                faults.entry(k).or_default().1 += 1;
            }
        }
        let faults: Vec<String> = faults
            .iter()
            .map(|(k, (n, seeds))| format!("{k} {n} in {seeds} seeds"))
            .collect();
        let _ = writeln!(
            out,
            "  faults that break: {}; none in {} seeds",
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(", ")
            },
            count(&|s| !s.faults.iter().any(|(_, f)| f.breaks()))
        );
        let catch_ups = self.catch_ups();
        let clients: usize = self.reports().map(|(_, r)| r.clients.len()).sum();
        let _ = writeln!(
            out,
            "  catch-up per client (ms after settling): p50 {}, p90 {}, max {} over {} clients ({} never finished)",
            percentile(&catch_ups, 50),
            percentile(&catch_ups, 90),
            catch_ups.last().map_or(0, Duration::as_millis),
            catch_ups.len(),
            clients - catch_ups.len()
        );
        out += "  goals (seeds that hit each):\n";
        for g in self.coverage() {
            let _ = writeln!(
                out,
                "    {:<22} {}{}",
                format!("{:?}", g.goal),
                g.hits,
                g.first
                    .map_or(" NEVER".to_string(), |s| format!(" (first seed {s})"))
            );
        }
        out
    }
}

/// The nearest-rank `p`th percentile of sorted `xs`, in ms (0 when empty).
pub fn percentile(xs: &[Duration], p: usize) -> u128 {
    if xs.is_empty() {
        return 0;
    }
    let rank = (p * xs.len()).div_ceil(100).clamp(1, xs.len());
    xs[rank - 1].as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms: Vec<Duration> = (1..=10).map(|i| Duration::from_millis(i * 100)).collect();
        assert_eq!(percentile(&ms, 50), 500);
        assert_eq!(percentile(&ms, 90), 900);
        assert_eq!(percentile(&ms, 100), 1_000);
        assert_eq!(percentile(&ms[..1], 90), 100);
        assert_eq!(percentile(&[], 50), 0);
    }
}
