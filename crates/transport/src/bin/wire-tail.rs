//! `wire-tail`: prints a wire's events as JSON lines on stdout (logs on
//! stderr). With `--raw`, reads any SSE stream as a browser's `EventSource`
//! would and prints each dispatched event as `{"event","data","id"}`.
//!
//! Exit codes: 0 done (`--max-events`, Ctrl-C, a closed stdout; with
//! `--raw --no-reconnect`, the stream's end); 1 the wire stopped the client
//! (refused, gave up, a cursor expired); 2 a bad option or setup; 3 the
//! wire's log changed epoch under the cursor; 4 the cursor is past the
//! wire's head.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use transport::raw::{RawConfig, RawEnd};
use transport::{
    Client, ClientConfig, ClientError, Endpoint, Preference, Start, Tls, TokioConnect, UrlOrder,
};

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "Exit codes:
  0  done: --max-events reached, Ctrl-C, stdout closed (with --raw --no-reconnect: the stream ended)
  1  the wire stopped the client: refused, gave up, the cursor expired
  2  a bad option or setup
  3  the wire's log changed epoch: the cursor's ids no longer name its events (start again: --from head, or --from <new epoch>-<id>)
  4  the cursor is past the wire's head: another wire's cursor, or the wire lost events";

/// Exit code 3: the wire's log changed epoch under the cursor.
const EXIT_EPOCH_CHANGED: i32 = 3;
/// Exit code 4: the cursor is past the wire's head.
const EXIT_CURSOR_AHEAD: i32 = 4;

#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Args {
    /// The wire's base URL: http, https, ws or wss. Repeatable: several
    /// nodes serving the same stream, failed over between in turn (resuming
    /// with the same cursor); the first URL's scheme picks the transport
    /// under auto. With --raw only the first is read (the stream's exact
    /// http or https URL).
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    url: Vec<String>,
    /// The order the URLs are tried in: in-order (as given) or random (a
    /// shuffle, once at start).
    #[arg(long, default_value = "in-order")]
    url_order: UrlOrder,
    /// auto (SSE, or WebSocket for a ws:// or wss:// URL, falling back to
    /// polling and probing back), or strictly sse, ws or poll (`http` is
    /// the same as poll): these never switch, and win over the URL's
    /// scheme, which then gives only the security.
    #[arg(long, default_value = "auto")]
    transport: Preference,
    /// Where to start: head (after the wire's newest event, learnt first),
    /// an event id to start after (0: from the first), or `<epoch>-<id>` to
    /// start after that id only in that epoch (exit 3 if the wire's log is
    /// another). `--from-id N` is the same.
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
    /// Trust only the CA certificates in this PEM file for https/wss (a
    /// private CA) instead of the platform's roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
    /// Bearer token for the wire (or TICKWIRE_TOKEN; the older WIRE_TOKEN
    /// is read when neither is given).
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Receive only these symbols (comma-separated, at most 1,024): the
    /// server sends nothing else, and each event's `prev` chain is checked.
    #[arg(long, value_name = "A,B,...", conflicts_with = "raw")]
    symbols: Option<String>,
    /// Receive only these kinds (tick, news; comma-separated).
    #[arg(long, value_name = "KIND,...", conflicts_with = "raw")]
    kinds: Option<String>,
}

fn main() {
    let mut args: Args = cli::parse_args("wire-tail");
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

/// The trust for https/wss: the platform's roots, or `--ca-cert`.
fn tls(args: &Args) -> Result<Tls, i32> {
    match &args.ca_cert {
        None => Ok(Tls::platform()),
        Some(path) => Tls::from_ca_file(path).map_err(|e| {
            eprintln!("wire-tail: --ca-cert: {e}");
            2
        }),
    }
}

async fn raw(args: &Args) -> i32 {
    let mut config = RawConfig::new(args.url.first().map_or("", String::as_str));
    config.reconnect = !args.no_reconnect;
    config.tls = match tls(args) {
        Ok(t) => t,
        Err(code) => return code,
    };
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
    let mut endpoints = Vec::new();
    for url in &args.url {
        match Endpoint::parse(url) {
            Ok(e) => endpoints.push(e),
            Err(e) => {
                eprintln!("wire-tail: --url: {e}");
                return 2;
            }
        }
    }
    let Some(endpoint) = endpoints.first() else {
        eprintln!("wire-tail: --url: none given");
        return 2;
    };
    let mut config = ClientConfig::new("", Arc::new(cli::system_clock_us)).with_urls(args.url.clone());
    config.url_order = args.url_order;
    if let Some(warning) = endpoint.scheme.apply(args.transport, &mut config.policy) {
        tracing::warn!("{warning}");
    }
    config.token = args.token.clone();
    config.filter = match wire::Filter::from_query(args.symbols.as_deref(), args.kinds.as_deref()) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("wire-tail: --symbols/--kinds: {e}");
            return 2;
        }
    };
    config.tls = match tls(args) {
        Ok(t) => t,
        Err(code) => return code,
    };
    config.seed = cli::system_clock_us();
    config.start_after = match args.from {
        Start::After(cursor) => cursor,
        Start::Head => match Client::head(TokioConnect, &config).await {
            Ok(head) => head,
            Err(e) => {
                eprintln!("wire-tail: --from head: {e}");
                return exit_code(&e);
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
                    break exit_code(&e);
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

/// The exit code for why the client stopped.
fn exit_code(error: &ClientError) -> i32 {
    match error {
        ClientError::EpochChanged { .. } => EXIT_EPOCH_CHANGED,
        ClientError::CursorAhead { .. } => EXIT_CURSOR_AHEAD,
        _ => 1,
    }
}
