//! One seed's result, and the panic accounting: a seed whose run panics is
//! a Crash-class failure with the panic's message, never a lost seed.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use sim::check::{Class, Violation};
use sim::{Report, Sometimes};

/// What one seed produced.
#[derive(Debug)]
pub struct Outcome {
    /// The run's report; `None` when the seed panicked before it had one.
    pub report: Option<Report>,
    pub verdict: Result<(), Violation>,
    /// The scenario's goals this run hit, in `goals()` order.
    pub hits: Vec<Sometimes>,
}

impl Outcome {
    /// A seed that never produced a report: a crash saying why.
    pub fn crashed(what: impl Into<String>) -> Outcome {
        Outcome {
            report: None,
            verdict: Err(Violation {
                class: Class::Crash,
                at: None,
                what: what.into(),
                invariant: None,
            }),
            hits: Vec::new(),
        }
    }
}

/// The text a panic carried (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// `f()`, or the message of its panic.
pub fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()))
}

/// Runs one seed's work; a panic in it becomes that seed's Crash.
pub fn run_seed(f: impl FnOnce() -> Outcome) -> Outcome {
    catching(f).unwrap_or_else(|msg| Outcome::crashed(format!("panic: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_a_crash_with_its_message() {
        let o = run_seed(|| panic!("boom at seed {}", 7));
        let v = o.verdict.expect_err("a panic fails the seed");
        assert_eq!(v.class, Class::Crash);
        assert_eq!(v.class.exit_code(), 3);
        assert!(v.what.contains("boom at seed 7"), "{}", v.what);
        assert!(o.report.is_none() && o.hits.is_empty());
        let v = run_seed(|| panic!("static")).verdict.expect_err("fails");
        assert_eq!(v.what, "panic: static");
    }

    #[test]
    fn a_run_that_returns_is_kept_as_it_is() {
        let o = run_seed(|| Outcome {
            report: Some(Report {
                seed: 4,
                ..Report::default()
            }),
            verdict: Ok(()),
            hits: vec![Sometimes::Fallback],
        });
        assert!(o.verdict.is_ok());
        assert_eq!(o.report.map(|r| r.seed), Some(4));
        assert_eq!(o.hits, vec![Sometimes::Fallback]);
    }

    #[test]
    fn a_returned_failure_keeps_its_class() {
        let o = run_seed(|| Outcome {
            verdict: Err(Violation {
                class: Class::Safety,
                at: None,
                what: "duplicate".into(),
                invariant: None,
            }),
            ..Outcome::crashed("unused")
        });
        assert_eq!(o.verdict.expect_err("fails").class, Class::Safety);
    }
}
