//! One run of the desk as the `decision` binary does it: the configuration
//! checked, the engine restored, the wire chosen (the given URL, or the
//! embedded one), the metrics served, the engine run, a summary printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use transport::{ClientConfig, ClientError, Endpoint, Preference, Start, Tls, TokioConnect};

use crate::embedded::{self, Embedded};
use crate::{Ended, Error, FileConfig, Live, RunOptions, metrics};

/// What the binary gathered from the file, the environment and the flags
/// (`options::resolve` decides between them).
pub struct Options {
    pub file: FileConfig,
    /// None: the embedded wire.
    pub wire_url: Option<String>,
    pub transport: Preference,
    pub token: Option<String>,
    /// Where to start when there is no checkpoint (none: from the first
    /// event). With a checkpoint only `--from` its own last id is accepted.
    pub from: Option<Start>,
    /// A private CA for https/wss (none: the platform's roots).
    pub ca_cert: Option<PathBuf>,
    pub run: RunOptions,
    /// Embedded wire only: events/s (none: all at once).
    pub fixture_rate: Option<f64>,
    /// Microseconds since the epoch: the production clock, from the binary.
    pub clock: transport::Clock,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("file", &self.file)
            .field("wire_url", &self.wire_url)
            .field("transport", &self.transport)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("ca_cert", &self.ca_cert)
            .field("run", &self.run)
            .field("fixture_rate", &self.fixture_rate)
            .finish_non_exhaustive()
    }
}

/// A desk ready to run: the engine restored, the metrics served.
pub struct Session {
    pub live: Live,
    pub url: String,
    pub transport: Preference,
    pub embedded: Option<Embedded>,
    pub metrics_addr: SocketAddr,
    client: ClientConfig,
    run: RunOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("metrics_addr", &self.metrics_addr)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// Checks the configuration, restores the engine (warning of each limit
/// the restored state breaks), starts the embedded wire if no URL is given
/// and serves the metrics on `metrics`.
pub async fn start(options: Options, metrics: TcpListener) -> Result<Session, Error> {
    let Options {
        file,
        wire_url,
        transport,
        token,
        from,
        ca_cert,
        mut run,
        fixture_rate,
        clock,
    } = options;
    file.validate()?;
    let live = Live::new(crate::restore(file.engine(), &run)?);

    let (url, embedded) = match wire_url {
        Some(url) => (url, None),
        None => {
            let wire = embedded::start(fixture_rate, clock.clone()).await?;
            run.until_id = Some(wire.last_id);
            (wire.url.clone(), Some(wire))
        }
    };

    let kind = transport;
    let mut client = ClientConfig::new(&url, clock.clone());
    let endpoint = Endpoint::parse(&url).map_err(|e| Error::Wire(ClientError::BadUrl(e)))?;
    if let Some(warning) = endpoint.scheme.apply(kind, &mut client.policy) {
        tracing::warn!("{warning}");
    }
    if let Some(path) = &ca_cert {
        client.tls = Tls::from_ca_file(path).map_err(Error::Wire)?;
    }
    client.token = token;
    client.policy.initial_delay = Duration::from_millis(file.wire.reconnect.initial_delay_ms);
    client.policy.max_delay = Duration::from_millis(file.wire.reconnect.max_delay_ms);
    client.policy.max_attempts = file.wire.reconnect.max_attempts;
    client.idle_timeout = Duration::from_secs(file.wire.health_check_interval_s);
    client.seed = clock();
    client.start_after = start_after(&live, from, &run, &client).await?;

    let metrics_addr = metrics.local_addr().map_err(Error::Metrics)?;
    let app = metrics::app(live.clone());
    tokio::spawn(async move { axum::serve(metrics, app).await });
    Ok(Session {
        live,
        url,
        transport: kind,
        embedded,
        metrics_addr,
        client,
        run,
    })
}

/// Where the client starts. A checkpoint decides (a `--from` other than
/// its own last id is refused, so a restart never skips or repeats
/// silently); without one, `--from` does, else the first event (and a wire
/// whose retention has moved on answers `cursor_expired`, an error naming
/// `--from`).
async fn start_after(
    live: &Live,
    from: Option<Start>,
    run: &RunOptions,
    client: &ClientConfig,
) -> Result<u64, Error> {
    let checkpoint = live.engine().last_event_id();
    match (checkpoint, from) {
        (Some(last), None) => Ok(last),
        (Some(last), Some(Start::After(id))) if id == last => Ok(last),
        (Some(last), Some(from)) => Err(Error::FromWithCheckpoint {
            from,
            last,
            dir: run.state_dir.clone().unwrap_or_default(),
        }),
        (None, None) => Ok(0),
        (None, Some(Start::After(id))) => Ok(id),
        (None, Some(Start::Head)) => transport::Client::head(TokioConnect, client)
            .await
            .map_err(Error::Wire),
    }
}

impl Session {
    /// The line the binary prints at start.
    pub fn banner(&self) -> String {
        format!(
            "decision: {} over {} ({}), metrics on http://{}/metrics{}",
            self.url,
            self.transport.as_str(),
            if self.embedded.is_some() {
                "embedded wire, built-in day"
            } else {
                "live wire"
            },
            self.metrics_addr,
            self.live
                .engine()
                .last_event_id()
                .map_or(String::new(), |id| format!(", resuming after event {id}")),
        )
    }

    /// Runs the engine on the wire until done, `interrupt`, or the wire stops.
    pub async fn run(&self, interrupt: impl Future<Output = ()>) -> Result<Ended, Error> {
        crate::run(
            TokioConnect,
            self.client.clone(),
            &self.live,
            &self.run,
            interrupt,
        )
        .await
    }

    /// The summary the binary prints at the end.
    pub fn summary(&self, ended: &Ended) -> String {
        use std::fmt::Write;
        let s = self.live.engine().summary();
        let c = &s.counts;
        let mut out = String::new();
        let denials: Vec<String> = c
            .denials_by_code
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let denials = if denials.is_empty() {
            "none".into()
        } else {
            denials.join(", ")
        };
        let _ = writeln!(
            out,
            "tickwire decision: {} over {}",
            self.url,
            self.transport.as_str()
        );
        let _ = writeln!(out, "  ended         {ended}");
        let _ = writeln!(
            out,
            "  events        {} (ticks {}, news {}, ignored {})",
            c.events, c.ticks, c.news, c.ignored
        );
        let _ = writeln!(
            out,
            "  decisions     {}: {} accepted, {} denied",
            c.decisions, c.accepts, c.denials
        );
        let _ = writeln!(out, "  denials       {denials}");
        let _ = writeln!(
            out,
            "  P&L           realised {:.2}, unrealised {:.2}; state {}, kill switch trips {}",
            s.realised_pnl, s.unrealised_pnl, s.state, c.kill_switch_trips
        );
        if let Some(m) = self.live.wire_metrics() {
            let m = m.snapshot();
            let _ = writeln!(
                out,
                "  latency       avg {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
                m.average_latency_ms, m.p50_latency_ms, m.p99_latency_ms
            );
            let _ = writeln!(
                out,
                "  wire          reconnects {}, gaps repaired {}, duplicates dropped {}, fallbacks {}",
                m.reconnect_attempts, m.gaps_repaired, m.duplicates_dropped, m.fallbacks
            );
        }
        out
    }
}

/// The binary's exit code for how the run ended: 1 when the wire gave up.
pub fn exit_code(ended: &Ended) -> i32 {
    match ended {
        Ended::Done | Ended::Interrupted => 0,
        Ended::WireStopped(_) | Ended::WireLost => 1,
    }
}
