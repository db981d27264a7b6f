//! What tickwire's binaries (`wire-stub`, `wire-tail`, `decision`) share:
//! structured logs on stderr, YAML config files, the production clock, and
//! the stop signals a service manager sends.
//! Libraries never use this crate: they take time from outside.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The parser's message names the key and the line at fault.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// The command line parsed, or, for a user's mistake, one line on stderr
/// (`NAME: the error (see --help)`, no usage block, no backtrace) and exit
/// code 2; `--help` and `--version` print and exit 0 as usual.
pub fn parse_args<T: clap::Parser>(name: &str) -> T {
    T::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            e.exit();
        }
        eprintln!("{name}: {} (see --help)", one_line(&e.to_string()));
        std::process::exit(2);
    })
}

/// clap's message without its `error: ` prefix, tips and usage: its first line.
fn one_line(message: &str) -> &str {
    let first = message.lines().next().unwrap_or(message).trim();
    first.strip_prefix("error: ").unwrap_or(first)
}

/// Logs to stderr: `RUST_LOG` or `default_level`; JSON lines when `json`;
/// colours only on a terminal.
pub fn init_logs(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
#[test]
fn a_clap_error_is_its_first_line() {
    let text = "error: unexpected argument '--nope' found\n\n  tip: to pass '--nope' as a value, use '-- --nope'\n\nUsage: x [OPTIONS]\n";
    assert_eq!(one_line(text), "unexpected argument '--nope' found");
}

/// Reads a YAML config file, or the defaults when there is none. Errors
/// name the file and, from the parser, the key and line at fault.
pub fn load_yaml<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigFileError> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    // The parser's first line names the line, column and key; the source
    // snippet it adds below would make a multi-line error.
    serde_saphyr::from_str(&text).map_err(|e| ConfigFileError::Parse {
        path: path.to_owned(),
        message: e.to_string().lines().next().unwrap_or_default().trim().to_owned(),
    })
}

/// 64 bits from the operating system's entropy (through std's hasher
/// seeding): for minting a new log's epoch in a binary. Library code takes
/// its randomness from its caller instead.
pub fn os_random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// The production clock, in microseconds since the Unix epoch: the one
/// place tickwire reads the system time.
#[allow(clippy::disallowed_methods)]
pub fn system_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what systemd, Docker
/// and Kubernetes send to stop a service): both mean "stop cleanly".
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
