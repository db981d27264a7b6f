//! `decision`: the paper-trading engine on a live wire. With no wire URL it
//! starts the stub in-process on the built-in trading day and runs over SSE,
//! so `cargo run --release --bin decision` does the whole job and prints a
//! summary. Options: YAML file, then environment, then flags. Thin: parse,
//! set up logs, bind, then `desk` does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use transport::Preference;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// YAML config (`wire`, `strategy`, `risk`, `broker` sections).
    #[arg(long, env = "TICKWIRE_CONFIG")]
    config: Option<PathBuf>,
    /// The wire's base URL; none: an embedded stub on the built-in day.
    #[arg(long, env = "TICKWIRE_WIRE_URL")]
    wire_url: Option<String>,
    /// A streaming transport: auto (SSE, falling back to polling) unless
    /// --transport names sse or ws; refused with --transport poll.
    #[arg(long)]
    streaming: bool,
    /// auto (SSE, falling back to polling and probing back), or strictly
    /// sse, ws or poll (`http` is the same as poll).
    #[arg(long, env = "TICKWIRE_TRANSPORT")]
    transport: Option<Preference>,
    /// Append every decision here, one JSON line each.
    #[arg(long, env = "TICKWIRE_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Keep checkpoints here and resume from them.
    #[arg(long, env = "TICKWIRE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// /metrics, /metrics.json, /healthz and /readyz; port 0 picks a free port.
    #[arg(long, env = "TICKWIRE_METRICS_ADDR", default_value = "127.0.0.1:9090")]
    metrics_addr: SocketAddr,
    /// Exit cleanly after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Events between checkpoints.
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Embedded wire only: publish the fixture at this many events/s
    /// (default: all at once).
    #[arg(long)]
    fixture_rate: Option<f64>,
    /// Logs as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() {
    let args = Args::parse();
    cli::init_logs(args.log_json, "warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("decision: {e}");
            std::process::exit(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("decision: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> anyhow::Result<i32> {
    let file: desk::FileConfig = cli::load_yaml(args.config.as_deref())?;
    let metrics = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding --metrics-addr {}", args.metrics_addr))?;
    let options = desk::Options {
        file,
        wire_url: args.wire_url,
        transport: match (args.streaming, args.transport) {
            (true, Some(Preference::Poll)) => {
                anyhow::bail!(
                    "--streaming asks for a streaming transport and --transport poll for polling: drop one"
                )
            }
            (true, None) => Some(Preference::Auto),
            (_, t) => t,
        },
        run: desk::RunOptions {
            audit_log: args.audit_log,
            state_dir: args.state_dir,
            max_events: args.max_events,
            until_id: None,
            checkpoint_every: args.checkpoint_every,
        },
        fixture_rate: args.fixture_rate,
        clock: Arc::new(cli::system_clock_us),
    };
    let session = desk::start(options, metrics).await?;
    eprintln!("{}", session.banner());
    let ended = session
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    print!("{}", session.summary(&ended));
    Ok(desk::session::exit_code(&ended))
}
