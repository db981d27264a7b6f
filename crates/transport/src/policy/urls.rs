//! Several wire URLs serving the same stream: the order they are tried in
//! ([`UrlOrder`], [`url_order`]) and the rotation the policy keeps
//! (`Rotation`): which URL is current, and which have failed since the last
//! successful connection. Sans-IO, like the rest of the policy.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// How the client orders its URLs, once, at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlOrder {
    /// As given: the first URL first.
    #[default]
    InOrder,
    /// A shuffle seeded by `ClientConfig::seed`: the same seed gives the
    /// same order, so clients given different seeds spread over the nodes.
    Random,
}

impl std::str::FromStr for UrlOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<UrlOrder, String> {
        match s {
            "in-order" => Ok(UrlOrder::InOrder),
            "random" => Ok(UrlOrder::Random),
            _ => Err(format!("URL order must be in-order or random, not {s:?}")),
        }
    }
}

/// Keeps the shuffle's draws apart from the jitter's (both seeded by the
/// same `seed`).
const SHUFFLE_SALT: u64 = 0x7572_6c5f_6f72_6465;

/// The indices `0..n` in the order they are tried: as given, or a
/// Fisher–Yates shuffle by a generator seeded with `seed` (no OS
/// randomness).
pub fn url_order(n: usize, order: UrlOrder, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if order == UrlOrder::Random {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SHUFFLE_SALT);
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            v.swap(i, j);
        }
    }
    v
}

/// Where a failure moved the client: `from` and `to` are indices in the
/// URLs as configured; `round_over` when every URL has failed since the
/// last successful connection (then, and only then, the backoff applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    pub from: usize,
    pub to: usize,
    pub round_over: bool,
}

/// The current URL and the round: which URLs failed since the last success.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    /// Configured indices, in the order tried.
    order: Vec<usize>,
    /// Position in `order` of the current URL.
    at: usize,
    /// By position: failed since the last success (or the last full round).
    failed: Vec<bool>,
}

impl Rotation {
    /// `order` must be non-empty (a client has at least one URL).
    pub(crate) fn new(order: Vec<usize>) -> Rotation {
        let order = if order.is_empty() { vec![0] } else { order };
        Rotation {
            failed: vec![false; order.len()],
            order,
            at: 0,
        }
    }

    /// The configured index of the URL the next attempt uses.
    pub(crate) fn current(&self) -> usize {
        self.order[self.at]
    }

    /// A connection succeeded: a new round starts.
    pub(crate) fn succeeded(&mut self) {
        self.failed.fill(false);
    }

    /// The current URL failed: the next one (wrapping) becomes current.
    /// When it too has failed since the last success, the round is over:
    /// it is forgotten, and a new one starts.
    pub(crate) fn failed(&mut self) -> Moved {
        let from = self.current();
        self.failed[self.at] = true;
        self.at = (self.at + 1) % self.order.len();
        let round_over = self.failed[self.at];
        if round_over {
            self.failed.fill(false);
        }
        Moved {
            from,
            to: self.current(),
            round_over,
        }
    }
}
