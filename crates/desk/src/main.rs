//! `decision`: the paper-trading engine on a live wire. With no wire URL it
//! starts the stub in-process on the built-in trading day and runs over SSE
//! (auto: falling back to polling), so `cargo run --release --bin decision`
//! does the whole job and prints a summary. Options: flags win over the
//! environment, which wins over the YAML file (`desk::options`). Thin:
//! parse, set up logs, bind, then `desk` does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use transport::{Preference, Start};

/// The environment is read by `desk::options::resolve`, not by clap, so
/// that a flag (even `--streaming`) wins over it the same way every time.
/// The exit codes, for `--help`.
const EXIT_CODES: &str = "Exit codes:
  0  done (the day, --max-events) or stopped by a signal, checkpointed
  1  the wire stopped the client (refused, gave up, a cursor expired)
  2  a bad option, configuration, checkpoint or audit log
  3  the wire's log was recreated (its epoch changed): rerun with --accept-new-epoch, or start from scratch
  4  the checkpoint is past the wire's head: another wire's checkpoint, or the wire lost events";

#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Args {
    /// YAML config (`wire`, `strategy`, `risk`, `broker` sections); or
    /// TICKWIRE_CONFIG.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The wire's base URL, or several separated by commas (`A,B`: nodes
    /// serving the same stream, failed over between in turn); or
    /// TICKWIRE_WIRE_URL (also comma-separated), or `wire.url` / `wire.urls`;
    /// none: an embedded stub on the built-in day.
    #[arg(long)]
    wire_url: Option<String>,
    /// A streaming transport: auto (SSE, falling back to polling) unless
    /// --transport names sse or ws; refused with --transport poll.
    #[arg(long)]
    streaming: bool,
    /// auto (the default: SSE, falling back to polling and probing back),
    /// or strictly sse, ws or poll (`http` is the same as poll); or
    /// TICKWIRE_TRANSPORT, or `wire.transport`.
    #[arg(long)]
    transport: Option<Preference>,
    /// Trust only the CA certificates in this PEM file for https/wss (a
    /// private CA) instead of the platform's roots; or TICKWIRE_CA_CERT, or
    /// `wire.ca_cert`.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Bearer token for the wire; or TICKWIRE_TOKEN, or `wire.token`.
    #[arg(long)]
    token: Option<String>,
    /// Where to start without a checkpoint: head (after the wire's newest
    /// event) or an event id to start after. With a checkpoint only its own
    /// last id is accepted.
    #[arg(long)]
    from: Option<Start>,
    /// When the wire's log was recreated (its epoch changed): carry the
    /// portfolio over and read the new epoch from its oldest event, the
    /// change recorded in the audit log and the checkpoint; or
    /// TICKWIRE_ACCEPT_NEW_EPOCH=true, or `wire.accept_new_epoch`. Without
    /// it the run stops with exit code 3.
    #[arg(long)]
    accept_new_epoch: bool,
    /// Append every decision here, one JSON line each; or TICKWIRE_AUDIT_LOG.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Keep checkpoints here and resume from them; or TICKWIRE_STATE_DIR.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// /metrics, /metrics.json, /healthz and /readyz; port 0 picks a free
    /// port; or TICKWIRE_METRICS_ADDR. Default 127.0.0.1:9464.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Exit cleanly after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Events between checkpoints (at least 1).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Embedded wire only: publish the built-in day at this many events/s
    /// (about 3 s at the default), so the engine reads it live, as from a
    /// wire; `all`: everything at once (a burst, whose latency is queueing).
    #[arg(long, value_name = "N|all", default_value = "2000", value_parser = events_per_second)]
    fixture_rate: FixtureRate,
    /// Every line as JSON: logs, the start banner and advice on stderr,
    /// and the summary on stdout as one JSON object.
    #[arg(long)]
    log_json: bool,
    /// At exit, also write the summary as JSON (engine figures, the wire
    /// client's, how the run ended and its exit code) to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
}

/// Logs: warnings, and the desk's info lines (the 10 s status line, the
/// banner under --log-json); RUST_LOG overrides.
const DEFAULT_LOGS: &str = "warn,desk=info,decision=info";

/// `--fixture-rate`: events per second, or none (all at once).
#[derive(Debug, Clone, Copy)]
struct FixtureRate(Option<f64>);

/// `all`, or a rate that ends: finite and above 0 (0, a negative or NaN
/// would schedule the day's events forever away).
fn events_per_second(text: &str) -> Result<FixtureRate, String> {
    match text.parse::<f64>() {
        _ if text == "all" => Ok(FixtureRate(None)),
        Ok(r) if r.is_finite() && r > 0.0 => Ok(FixtureRate(Some(r))),
        _ => Err(format!(
            "{text:?} is not a positive number of events per second, nor all"
        )),
    }
}

fn main() {
    let args: Args = cli::parse_args("decision");
    let json = args.log_json;
    cli::init_logs(json, DEFAULT_LOGS);
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(args)).unwrap_or_else(|e| {
            say(json, Say::Error, &format!("decision: {e:#}"));
            2
        }),
        Err(e) => {
            say(json, Say::Error, &format!("decision: {e}"));
            2
        }
    };
    std::process::exit(code);
}

enum Say {
    Info,
    Error,
}

/// A line for the operator on stderr: as it is, or under --log-json as a
/// log line (JSON like every other).
fn say(json: bool, level: Say, line: &str) {
    match (json, level) {
        (false, _) => eprintln!("{line}"),
        (true, Say::Info) => tracing::info!("{line}"),
        (true, Say::Error) => tracing::error!("{line}"),
    }
}

async fn run(args: Args) -> anyhow::Result<i32> {
    let flags = desk::options::Flags {
        config: args.config,
        wire_url: args.wire_url,
        streaming: args.streaming,
        transport: args.transport,
        audit_log: args.audit_log,
        state_dir: args.state_dir,
        metrics_addr: args.metrics_addr,
        token: args.token,
        from: args.from,
        ca_cert: args.ca_cert,
        accept_new_epoch: args.accept_new_epoch,
    };
    let env: desk::options::Env = std::env::vars()
        .filter(|(k, _)| k.starts_with("TICKWIRE_"))
        .collect();
    let path = desk::options::config_path(&flags, &env);
    let file: desk::FileConfig = cli::load_yaml(path.as_deref())?;
    let o = desk::options::resolve(&flags, &env, &file)?;
    let metrics = tokio::net::TcpListener::bind(o.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", o.metrics_addr))?;
    let options = desk::Options {
        file,
        wire_urls: o.wire_urls,
        transport: o.transport,
        token: o.token,
        from: o.from,
        ca_cert: o.ca_cert,
        run: desk::RunOptions {
            audit_log: o.audit_log,
            state_dir: o.state_dir,
            max_events: args.max_events,
            until_id: None,
            checkpoint_every: args.checkpoint_every,
            accept_new_epoch: o.accept_new_epoch,
            on_event: None,
        },
        fixture_rate: args.fixture_rate.0,
        clock: Arc::new(cli::system_clock_us),
    };
    let session = desk::start(options, metrics).await?;
    say(args.log_json, Say::Info, &session.banner());
    let ended = session.run(cli::shutdown_signal()).await?;
    let summary = session.summary_json(&ended);
    if args.log_json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", session.summary(&ended));
    }
    if let Some(path) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        std::fs::write(path, text).with_context(|| format!("--summary-json {}", path.display()))?;
    }
    if let Some(advice) = session.advice(&ended) {
        say(args.log_json, Say::Error, &advice);
    }
    Ok(desk::session::exit_code(&ended))
}
