//! `decision`: the paper-trading engine on a live wire. With no wire URL it
//! starts the stub in-process on the built-in trading day and runs over SSE,
//! so `cargo run --release --bin decision` does the whole job and prints a
//! summary. Options: YAML file, then environment, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use decision::run::{Ended, Live, RunOptions};
use decision::{Config, Engine};
use serde::Deserialize;
use transport::{ClientConfig, TokioConnect, Transport};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// YAML config (`wire`, `strategy`, `risk`, `broker` sections).
    #[arg(long, env = "TICKWIRE_CONFIG")]
    config: Option<PathBuf>,
    /// The wire's base URL; none: an embedded stub on the built-in day.
    #[arg(long, env = "TICKWIRE_WIRE_URL")]
    wire_url: Option<String>,
    /// Stream over SSE (the default).
    #[arg(long, conflicts_with = "transport")]
    streaming: bool,
    /// sse, ws or poll (`http` is the same as poll).
    #[arg(long, env = "TICKWIRE_TRANSPORT")]
    transport: Option<Transport>,
    /// Append every decision here, one JSON line each.
    #[arg(long, env = "TICKWIRE_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Keep checkpoints here and resume from them.
    #[arg(long, env = "TICKWIRE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// /metrics, /metrics.json and /healthz; port 0 picks a free port.
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

/// The config file, in the original plan's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    wire: WireConfig,
    strategy: decision::StrategyConfig,
    risk: decision::RiskConfig,
    broker: decision::BrokerConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WireConfig {
    /// false: ignore `url` and use the embedded wire.
    enabled: bool,
    url: Option<String>,
    transport: Transport,
    reconnect: ReconnectConfig,
    health_check_interval_s: u64,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            enabled: true,
            url: None,
            transport: Transport::Sse,
            reconnect: ReconnectConfig::default(),
            health_check_interval_s: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReconnectConfig {
    initial_delay_ms: u64,
    max_delay_ms: u64,
    max_attempts: i64,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay_ms: 1_000,
            max_delay_ms: 16_000,
            max_attempts: -1,
        }
    }
}

impl FileConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let r = &self.wire.reconnect;
        if r.initial_delay_ms == 0 {
            bail!("wire.reconnect.initial_delay_ms: must be > 0");
        }
        if r.max_delay_ms < r.initial_delay_ms {
            bail!("wire.reconnect.max_delay_ms: must be >= wire.reconnect.initial_delay_ms");
        }
        if r.max_attempts < -1 {
            bail!("wire.reconnect.max_attempts: must be -1 (forever) or >= 0");
        }
        if self.wire.health_check_interval_s == 0 {
            bail!("wire.health_check_interval_s: must be > 0");
        }
        let engine = Config {
            strategy: self.strategy.clone(),
            risk: self.risk.clone(),
            broker: self.broker.clone(),
        };
        engine.validate().map_err(|e| anyhow::anyhow!("{e}"))
    }
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
    let file: FileConfig = cli::load_yaml(args.config.as_deref())?;
    file.validate()?;
    let engine = Engine::new(Config {
        strategy: file.strategy.clone(),
        risk: file.risk.clone(),
        broker: file.broker.clone(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = RunOptions {
        audit_log: args.audit_log.clone(),
        state_dir: args.state_dir.clone(),
        max_events: args.max_events,
        until_id: None,
        checkpoint_every: args.checkpoint_every,
    };
    let engine = decision::run::restore(engine, &options).map_err(|e| anyhow::anyhow!(e))?;
    let resumed_from = engine.last_event_id();
    let live = Live::new(engine);

    // The wire: the given URL, or the embedded stub.
    let url = args
        .wire_url
        .clone()
        .or_else(|| file.wire.enabled.then(|| file.wire.url.clone()).flatten());
    let mut options = options;
    let (url, embedded) = match url {
        Some(url) => (url, None),
        None => {
            let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT)?;
            options.until_id = Some(payloads.len() as u64);
            let config = stub::Config::default();
            let stub = stub::Stub::new(
                config.clone(),
                stub::Log::new(config.retention),
                Arc::new(cli::system_clock_us),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let pace = args.fixture_rate.map_or(stub::Pace::NoPace, stub::Pace::Rate);
            tokio::spawn(stub::replay(stub.clone(), payloads, pace));
            tokio::spawn(stub::serve(listener, stub.clone(), std::future::pending()));
            (format!("http://{addr}"), Some(stub))
        }
    };

    let kind = args.transport.unwrap_or(file.wire.transport);
    let mut client = ClientConfig::new(&url, Arc::new(cli::system_clock_us));
    client.policy.transport = kind;
    client.policy.initial_delay = Duration::from_millis(file.wire.reconnect.initial_delay_ms);
    client.policy.max_delay = Duration::from_millis(file.wire.reconnect.max_delay_ms);
    client.policy.max_attempts = file.wire.reconnect.max_attempts;
    client.idle_timeout = Duration::from_secs(file.wire.health_check_interval_s);
    client.seed = cli::system_clock_us();

    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding --metrics-addr {}", args.metrics_addr))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(prometheus))
        .route("/metrics.json", get(metrics_json))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(live.clone());
    tokio::spawn(async move { axum::serve(metrics_listener, app).await });

    eprintln!(
        "decision: {} over {} ({}), metrics on http://{metrics_addr}/metrics{}",
        url,
        kind.as_str(),
        if embedded.is_some() {
            "embedded wire, built-in day"
        } else {
            "live wire"
        },
        resumed_from.map_or(String::new(), |id| format!(", resuming after event {id}")),
    );
    let ended = decision::run::run(TokioConnect, client, &live, &options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;

    print_summary(&live, &url, kind, &ended);
    Ok(match ended {
        Ended::Done | Ended::Interrupted => 0,
        Ended::WireStopped(_) => 1,
    })
}

fn print_summary(live: &Live, url: &str, kind: Transport, ended: &Ended) {
    let s = live.engine().summary();
    let c = &s.counts;
    println!("tickwire decision: {url} over {}", kind.as_str());
    println!("  ended         {ended:?}");
    println!(
        "  events        {} (ticks {}, news {}, ignored {})",
        c.events, c.ticks, c.news, c.ignored
    );
    println!(
        "  decisions     {}: {} accepted, {} denied",
        c.decisions, c.accepts, c.denials
    );
    let denials: Vec<String> = c
        .denials_by_code
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "  denials       {}",
        if denials.is_empty() {
            "none".into()
        } else {
            denials.join(", ")
        }
    );
    println!(
        "  P&L           realised {:.2}, unrealised {:.2}; state {:?}, kill switch trips {}",
        s.realised_pnl, s.unrealised_pnl, s.state, c.kill_switch_trips
    );
    if let Some(m) = live.wire_metrics() {
        let m = m.snapshot();
        println!(
            "  latency       avg {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
            m.average_latency_ms, m.p50_latency_ms, m.p99_latency_ms
        );
        println!(
            "  wire          reconnects {}, gaps repaired {}, duplicates dropped {}, fallbacks {}",
            m.reconnect_attempts, m.gaps_repaired, m.duplicates_dropped, m.fallbacks
        );
    }
}

async fn metrics_json(State(live): State<Live>) -> impl IntoResponse {
    let mut out = serde_json::Map::new();
    if let Some(m) = live.wire_metrics()
        && let Ok(serde_json::Value::Object(w)) = serde_json::to_value(m.snapshot())
    {
        out.extend(w);
    }
    if let Ok(v) = serde_json::to_value(live.engine().summary()) {
        out.insert("engine".into(), v);
    }
    axum::Json(serde_json::Value::Object(out))
}

async fn prometheus(State(live): State<Live>) -> impl IntoResponse {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Label {
        code: String,
    }
    let mut registry = prometheus_client::registry::Registry::default();
    if let Some(m) = live.wire_metrics() {
        m.register(&mut registry);
    }
    let s = live.engine().summary();
    let reg = registry.sub_registry_with_prefix("decision");
    let counter = |v: u64| {
        let c: Counter = Counter::default();
        c.inc_by(v);
        c
    };
    reg.register("events", "Events applied", counter(s.counts.events));
    reg.register("decisions", "Orders proposed", counter(s.counts.decisions));
    reg.register("accepts", "Orders accepted by risk", counter(s.counts.accepts));
    let denials: Family<Label, Counter> = Family::default();
    for (code, n) in &s.counts.denials_by_code {
        denials.get_or_create(&Label { code: code.clone() }).inc_by(*n);
    }
    reg.register("denials", "Orders denied, by reason code", denials);
    reg.register(
        "kill_switch_trips",
        "Times the daily loss limit halted trading",
        counter(s.counts.kill_switch_trips),
    );
    let state: Family<Label, Gauge> = Family::default();
    for name in ["active", "reduce_only", "halted"] {
        let current = format!("{:?}", s.state)
            .to_lowercase()
            .replace("reduceonly", "reduce_only");
        state
            .get_or_create(&Label { code: name.into() })
            .set(i64::from(current == name));
    }
    reg.register("trading_state", "Trading state (1 for the current one)", state);
    let gauge = |v: f64| {
        let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        g.set(v);
        g
    };
    reg.register("realised_pnl", "Realised P&L", gauge(s.realised_pnl));
    reg.register("unrealised_pnl", "Unrealised P&L", gauge(s.unrealised_pnl));
    reg.register("gross_exposure", "Gross exposure", gauge(s.gross_exposure));
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}
