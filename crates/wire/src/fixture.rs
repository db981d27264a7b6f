//! JSONL fixtures: one payload per line (`{"kind": "tick", ...}`), in
//! publishing order. Blank lines are skipped. Ids are not stored: the stub
//! numbers the events 1, 2, 3, ... as it publishes them, so replaying the same
//! file always gives the same ids.

use std::path::Path;

use serde_json::Value;

use crate::{FieldError, Payload};

/// The default session, committed under `fixtures/` and built into the
/// binaries, so a fresh clone runs with no file at hand.
pub const DEFAULT: &str = include_str!("../../../fixtures/default.jsonl");

/// The name the default fixture is reported under.
pub const DEFAULT_NAME: &str = "fixtures/default.jsonl";

/// A fixture that cannot be read: the file, the line (from 1) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct FixtureError {
    pub file: String,
    /// 0 when the file itself could not be read.
    pub line: usize,
    pub error: FieldError,
}

impl FixtureError {
    /// No line when the file itself could not be read.
    fn describe(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.error.reason)
        } else {
            format!("{}:{}: {}", self.file, self.line, self.error)
        }
    }
}

/// Reads a fixture file.
pub fn load(path: &Path) -> Result<Vec<Payload>, FixtureError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FixtureError {
        file: file.clone(),
        line: 0,
        error: FieldError {
            field: String::new(),
            reason: e.to_string(),
        },
    })?;
    parse(&file, &text)
}

/// Parses fixture text; `file` only names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Payload>, FixtureError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(Payload::from_json(line).map_err(|error| FixtureError {
            file: file.to_owned(),
            line: n + 1,
            error,
        })?);
    }
    Ok(out)
}

/// Writes payloads as fixture text, one line each.
pub fn to_jsonl(payloads: &[Payload]) -> String {
    let mut out = String::new();
    for p in payloads {
        out.push_str(&Value::Object(p.to_fields()).to_string());
        out.push('\n');
    }
    out
}
