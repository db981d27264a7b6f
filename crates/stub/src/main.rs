//! `wire-stub`: the wire server binary. Parses options (flags over an
//! optional YAML file over defaults), sets up logs, binds, replays the
//! fixture and serves until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use stub::{Config, EventLog, JetStream, JetStreamOptions, Log, NodeLog, NodeOptions, Pace, ServerTls, Stub};

/// jemalloc rather than glibc's malloc, for idle streams: the
/// idle_connections bench (which runs the stub with this same allocator)
/// measured 9.8 KiB resident per idle SSE connection against 11.8 KiB
/// with glibc, at 19,000 connections, for the same live heap. Most of that
/// heap is hyper's two 8 KiB buffers, mostly never written while a stream
/// is idle (the read buffer not at all): jemalloc keeps a slab's free-slot
/// bookkeeping outside the slab, so untouched pages stay non-resident, where
/// glibc puts its chunk headers and the neighbouring chunks in a buffer's
/// first and last pages.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// tickwire's wire server: one event log, streamed over SSE (`/stream`) and
/// WebSocket (`/ws`), served to HTTP polling (`/events`).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Fixture to replay (JSONL); default: the built-in trading day.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Publish nothing from a fixture: events come only from POST /events.
    #[arg(long, conflicts_with = "fixtures")]
    no_fixture: bool,
    /// Pace: fixture time divided by this factor [default: 60, a trading day in 6.5 minutes].
    #[arg(long, conflicts_with_all = ["rate", "no_pace"])]
    speed: Option<f64>,
    /// Pace: a fixed number of events per second.
    #[arg(long, conflicts_with = "no_pace")]
    rate: Option<f64>,
    /// Pace: publish the whole fixture at once.
    #[arg(long)]
    no_pace: bool,
    /// Keep every published event in DIR/events.jsonl so it survives a
    /// restart. Without it, ingested events are lost on restart.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the log in this NATS JetStream (`nats://HOST:PORT`, several
    /// comma-separated for a cluster): every node on the same stream serves
    /// the same events under the same ids and epoch.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    nats_url: Option<String>,
    /// The JetStream stream's name [default: TICKWIRE].
    #[arg(long, value_name = "NAME", requires = "nats_url")]
    nats_stream: Option<String>,
    /// Replicas of the stream when this node creates it (3 on a cluster) [default: 1].
    #[arg(long, value_name = "N", requires = "nats_url")]
    nats_replicas: Option<usize>,
    /// Serve HTTPS and WSS (and HTTP/2 where the client offers it) with this
    /// PEM certificate chain, leaf first; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// YAML file with any of these options (flags win).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Require this bearer token on every endpoint but /healthz (the older
    /// WIRE_STUB_TOKEN is read when neither is given).
    #[arg(long, env = "TICKWIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Allow this browser origin (CORS); repeatable.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Also answer requests whose Host is this name (IP addresses and
    /// localhost always are; others get 421, against DNS rebinding);
    /// repeatable; `*` allows any.
    #[arg(long = "allow-host")]
    allowed_hosts: Vec<String>,
    /// Events kept in memory for resuming clients.
    #[arg(long)]
    retention: Option<usize>,
    /// Heartbeat interval on idle streams, in ms.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// The least time between two writes of events to one live stream, in
    /// ms (default 0): events arriving meanwhile share the next write.
    #[arg(long)]
    write_delay_ms: Option<u64>,
    /// Logs as JSON lines (default: human-readable).
    #[arg(long)]
    log_json: bool,
}

/// The YAML file: the same options, with server tuning under `server`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    fixtures: Option<PathBuf>,
    no_fixture: bool,
    speed: Option<f64>,
    rate: Option<f64>,
    no_pace: bool,
    data_dir: Option<PathBuf>,
    nats_url: Option<String>,
    nats_stream: Option<String>,
    nats_replicas: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    server: Config,
}

/// Exit codes: 0 stopped by a signal; 2 a bad option, file or setup (a
/// busy port, a bad key), said in one line on stderr (a JSON log line
/// under --log-json).
fn main() {
    let args: Args = cli::parse_args("wire-stub");
    let json = args.log_json;
    cli::init_logs(json, "info");
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    if let Err(e) = ran {
        if json {
            tracing::error!("wire-stub: {e:#}");
        } else {
            eprintln!("wire-stub: {e:#}");
        }
        std::process::exit(2);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let file: FileConfig = cli::load_yaml(args.config.as_deref())?;
    let mut config = file.server;
    // The flag (or TICKWIRE_TOKEN, through clap), then the older variable,
    // then the file.
    let old_env = std::env::var("WIRE_STUB_TOKEN").ok().filter(|t| !t.is_empty());
    if let Some(t) = args.token.or(old_env) {
        config.token = Some(t);
    }
    if !args.cors_origins.is_empty() {
        config.cors_origins = args.cors_origins;
    }
    if !args.allowed_hosts.is_empty() {
        config.allowed_hosts = args.allowed_hosts;
    }
    if let Some(r) = args.retention {
        config.retention = r;
    }
    if let Some(h) = args.heartbeat_ms {
        config.heartbeat_ms = h;
    }
    if let Some(d) = args.write_delay_ms {
        config.write_delay_ms = d;
    }
    if config.token.as_deref() == Some("") {
        bail!("token: must not be empty");
    }
    check_server(&config)?;

    let pace = if args.no_pace {
        Pace::NoPace
    } else if let Some(r) = args.rate {
        Pace::Rate(r)
    } else if let Some(s) = args.speed {
        Pace::Speed(s)
    } else if file.no_pace {
        Pace::NoPace
    } else if let Some(r) = file.rate {
        Pace::Rate(r)
    } else {
        Pace::Speed(file.speed.unwrap_or(60.0))
    };
    match pace {
        Pace::Speed(x) | Pace::Rate(x) if !(x.is_finite() && x > 0.0) => {
            bail!("speed/rate: must be a positive number, got {x}")
        }
        _ => {}
    }

    let payloads = if args.no_fixture || file.no_fixture {
        Vec::new()
    } else {
        match args.fixtures.or(file.fixtures) {
            Some(path) => wire::fixture::load(&path)?,
            None => wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)?,
        }
    };

    let data_dir = args.data_dir.or(file.data_dir);
    let nats_url = args.nats_url.or(file.nats_url);
    let log: Arc<dyn EventLog> = match (nats_url, data_dir) {
        (Some(_), Some(_)) => {
            bail!("nats_url and data_dir: give one (the log lives in NATS, or on this disk)")
        }
        (Some(url), None) => {
            let stream = args
                .nats_stream
                .or(file.nats_stream)
                .unwrap_or_else(|| "TICKWIRE".into());
            let mut options = JetStreamOptions::new(&url, &stream, cli::os_random_u64());
            options.replicas = args.nats_replicas.or(file.nats_replicas).unwrap_or(1);
            let window = config.key_window();
            options.duplicate_window = std::time::Duration::from_micros(window.window_us);
            tracing::info!(%url, %stream, "opening the log on NATS JetStream");
            let service = JetStream::connect(options).await?;
            let node = NodeOptions {
                retention: config.retention,
                max_keys: window.max_keys,
                ..NodeOptions::default()
            };
            Arc::new(NodeLog::open(service, node).await?)
        }
        // Used only when the log is new: a journal keeps the epoch it was made with.
        (None, dir) => {
            let fresh = wire::Epoch::from_random(cli::os_random_u64());
            match dir {
                Some(dir) => Arc::new(Log::open(&dir, config.retention, fresh, config.key_window())?),
                None => Arc::new(Log::in_memory(config.retention, fresh, config.key_window())),
            }
        }
    };
    let addr = args
        .addr
        .or(file.addr)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8091)));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;

    let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(server_tls(&cert, &key, config.http2)?),
        _ => bail!("tls_cert and tls_key go together: give both or neither"),
    };

    let stub = Stub::on(config, log, Arc::new(cli::system_clock_us));
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The line scripts wait for, on stdout; a log line under --log-json.
    if args.log_json {
        tracing::info!(url = %format!("{scheme}://{local}"), "wire-stub listening on {scheme}://{local}");
    } else {
        println!("wire-stub listening on {scheme}://{local}");
    }
    tracing::info!(%local, epoch = %stub.log().epoch(), head = stub.log().head(), fixture_events = payloads.len(), ?pace, "serving");
    tokio::spawn(stub::replay(stub.clone(), payloads, pace));
    match tls {
        None => stub::serve(stub::nodelay(listener), stub, cli::shutdown_signal()).await,
        Some(tls) => stub::serve_tls(stub::nodelay(listener), stub, tls, cli::shutdown_signal()).await,
    }
    tracing::info!("stopped");
    Ok(())
}

/// The certificate chain and key from PEM files.
fn server_tls(cert: &Path, key: &Path, http2: bool) -> anyhow::Result<ServerTls> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("tls_cert {}", cert.display()))?;
    if chain.is_empty() {
        bail!("tls_cert {}: no PEM certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("tls_key {}", key.display()))?;
    ServerTls::new(chain, key, http2).context("tls_cert and tls_key")
}

/// Settings that would serve nothing, or wait forever, are refused at start
/// naming the key (`server.batch_events: must be at least 1`), instead of
/// a server that answers every poll with 400 or streams no event.
fn check_server(c: &Config) -> anyhow::Result<()> {
    let at_least_1: [(&str, u64); 7] = [
        ("retention", c.retention as u64),
        ("heartbeat_ms", c.heartbeat_ms),
        ("retry_ms", c.retry_ms),
        ("batch_events", c.batch_events as u64),
        ("max_page", c.max_page as u64),
        ("max_body_bytes", c.max_body_bytes as u64),
        ("tls_handshake_timeout_ms", c.tls_handshake_timeout_ms),
    ];
    for (key, value) in at_least_1 {
        if value == 0 {
            bail!("server.{key}: must be at least 1");
        }
    }
    let a_day = 86_400_000;
    for (key, value) in [
        ("heartbeat_ms", c.heartbeat_ms),
        ("lag_grace_ms", c.lag_grace_ms),
        ("max_wait_ms", c.max_wait_ms),
        ("shutdown_grace_ms", c.shutdown_grace_ms),
        ("tls_handshake_timeout_ms", c.tls_handshake_timeout_ms),
    ] {
        if value > a_day {
            bail!("server.{key}: must be at most {a_day} (a day)");
        }
    }
    if c.write_delay_ms > 1_000 || c.write_delay_ms >= c.heartbeat_ms {
        bail!(
            "server.write_delay_ms: must be at most 1000 and under heartbeat_ms ({}), not {}",
            c.heartbeat_ms,
            c.write_delay_ms
        );
    }
    Ok(())
}
