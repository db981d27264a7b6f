//! `wire-tail`: prints a wire's events as JSON lines on stdout (logs on
//! stderr). With `--raw`, reads any SSE stream as a browser's `EventSource`
//! would and prints each dispatched event as `{"event","data","id"}`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use transport::raw::{RawConfig, RawEnd};
use transport::{Client, ClientConfig, Preference, Start, TokioConnect};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The wire's base URL (with --raw: the stream's exact URL).
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    url: String,
    /// auto (SSE, falling back to polling and probing back), or strictly
    /// sse, ws or poll (`http` is the same as poll): these never switch.
    #[arg(long, default_value = "auto")]
    transport: Preference,
    /// Where to start: head (after the wire's newest event, learnt first)
    /// or an event id to start after (0: from the first). `--from-id N` is
    /// the same.
    #[arg(long, alias = "from-id", default_value = "0")]
    from: Start,
    /// Exit 0 after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Read any SSE stream with browser EventSource rules.
    #[arg(long)]
    raw: bool,
    /// With --raw: exit when the stream ends instead of reconnecting.
    #[arg(long, requires = "raw")]
    no_reconnect: bool,
    /// Bearer token for the wire (or TICKWIRE_TOKEN; the older WIRE_TOKEN
    /// is read when neither is given).
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn main() {
    let mut args = Args::parse();
    // clap's `env` takes one name: the old one is an alias read here.
    if args.token.is_none() {
        args.token = std::env::var("WIRE_TOKEN").ok().filter(|t| !t.is_empty());
    }
    cli::init_logs(false, "warn");
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wire-tail: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        if args.raw {
            raw(&args).await
        } else {
            tail(&args).await
        }
    });
    std::process::exit(code);
}

async fn raw(args: &Args) -> i32 {
    let mut config = RawConfig::new(&args.url);
    config.reconnect = !args.no_reconnect;
    let mut out = std::io::stdout().lock();
    let mut count = 0;
    let end = transport::raw::read(&TokioConnect, &config, |e| {
        let line = serde_json::to_string(&e).unwrap_or_default();
        let written = writeln!(out, "{line}").and_then(|()| out.flush());
        count += 1;
        written.is_ok() && args.max_events.is_none_or(|max| count < max)
    })
    .await;
    match end {
        RawEnd::Ended | RawEnd::Stopped => 0,
        RawEnd::Failed(reason) => {
            eprintln!("wire-tail: {reason}");
            1
        }
    }
}

async fn tail(args: &Args) -> i32 {
    let mut config = ClientConfig::new(&args.url, Arc::new(cli::system_clock_us));
    args.transport.apply(&mut config.policy);
    config.token = args.token.clone();
    config.seed = cli::system_clock_us();
    config.start_after = match args.from {
        Start::After(id) => id,
        Start::Head => match Client::head(TokioConnect, &config).await {
            Ok(head) => head,
            Err(e) => {
                eprintln!("wire-tail: --from head: {e}");
                return 1;
            }
        },
    };
    let mut client = match Client::connect(TokioConnect, config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wire-tail: {e}");
            return 2;
        }
    };
    let Some(mut events) = client.subscribe() else {
        return 2;
    };
    let mut out = std::io::stdout().lock();
    let mut count = 0;
    let code = loop {
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => break 0,
            item = events.next() => match item {
                Some(Ok(event)) => {
                    if writeln!(out, "{}", event.to_json()).and_then(|()| out.flush()).is_err() {
                        break 0; // stdout closed (a pipe to head): done.
                    }
                    count += 1;
                    if args.max_events.is_some_and(|max| count >= max) {
                        break 0;
                    }
                }
                Some(Err(e)) => {
                    eprintln!("wire-tail: {e}");
                    break 1;
                }
                None => break 1,
            },
        }
    };
    tokio::time::timeout(Duration::from_secs(2), client.close())
        .await
        .ok();
    code
}
