//! `cargo xtask tidy`: the layout rules a reviewer would otherwise check by
//! hand. Every tracked `.rs` file opens with a `//!` line saying what it
//! does, and no source file (under a `src/` directory) is longer than
//! [`MAX_LINES`] lines outside its `#[cfg(test)]` module.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// A file past this has more than one job.
const MAX_LINES: usize = 450;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = args.first() {
        bail!("tidy takes no arguments, not {extra:?}");
    }
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "*.rs"])
        .output()
        .context("running git ls-files")?;
    if !listed.status.success() {
        bail!("git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    }
    let mut problems = Vec::new();
    for path in String::from_utf8(listed.stdout)?.lines() {
        if !Path::new(path).exists() {
            continue; // deleted in the work tree, not yet in the index
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        problems.extend(check(path, &text));
    }
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("{} layout problem(s)", problems.len())
}

/// What is wrong with one file.
fn check(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !text.starts_with("//!") {
        problems.push(format!(
            "{path}: does not open with a `//!` line saying what it does"
        ));
    }
    let is_source = path.split('/').any(|part| part == "src");
    let lines = lines_outside_tests(text);
    if is_source && lines > MAX_LINES {
        problems.push(format!(
            "{path}: {lines} lines outside its test module (at most {MAX_LINES}): split it along its jobs"
        ));
    }
    problems
}

/// Lines of `text` not inside a `#[cfg(test)]` module. A test module runs
/// from its attribute to the first later line that is a lone `}` at the
/// start of a line (rustfmt puts a top-level module's closing brace there).
fn lines_outside_tests(text: &str) -> usize {
    let mut count = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|next| is_mod_open(next)) {
            for inner in lines.by_ref() {
                if inner == "}" {
                    break;
                }
            }
            continue;
        }
        count += 1;
    }
    count
}

fn is_mod_open(line: &str) -> bool {
    let line = line.trim_start();
    let line = line.strip_prefix("pub ").unwrap_or(line);
    line.starts_with("mod ") && line.trim_end().ends_with('{')
}

#[cfg(test)]
mod tests {
    use super::{check, lines_outside_tests};

    #[test]
    fn test_modules_do_not_count() {
        let text = "//! x\nfn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\nfn c() {}\n";
        assert_eq!(lines_outside_tests(text), 3);
        // An attribute on something else is counted like any line.
        let text = "//! x\n#[cfg(test)]\nfn helper() {}\n";
        assert_eq!(lines_outside_tests(text), 3);
        // `mod tests;` (a file of its own) is one line here.
        let text = "//! x\n#[cfg(test)]\nmod tests;\n";
        assert_eq!(lines_outside_tests(text), 3);
    }

    #[test]
    fn long_sources_and_missing_headers_are_named() {
        let long = format!("//! x\n{}", "fn f() {}\n".repeat(450));
        assert_eq!(
            check("crates/a/src/big.rs", &long),
            vec![
                "crates/a/src/big.rs: 451 lines outside its test module (at most 450): split it along its jobs"
            ]
        );
        // Test files may be long.
        assert!(check("crates/a/tests/big.rs", &long).is_empty());
        assert_eq!(
            check("crates/a/src/x.rs", "fn f() {}\n"),
            vec!["crates/a/src/x.rs: does not open with a `//!` line saying what it does"]
        );
        let fine = format!("//! x\n{}", "fn f() {}\n".repeat(449));
        assert!(check("crates/a/src/ok.rs", &fine).is_empty());
    }
}
