//! One run of the desk as the `decision` binary does it: the configuration
//! checked, the engine restored, the wire chosen (the given URL, or the
//! embedded one), the metrics served, the engine run, a summary printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use transport::{ClientConfig, ClientError, Endpoint, Preference, Start, Tls, TokioConnect};
use wire::Cursor;

use crate::embedded::{self, Embedded};
use crate::{Ended, Error, FileConfig, Live, RunOptions, metrics};

/// What the binary gathered from the file, the environment and the flags
/// (`options::resolve` decides between them).
pub struct Options {
    pub file: FileConfig,
    /// The wire's URLs, failed over between in turn; empty: the embedded
    /// wire.
    pub wire_urls: Vec<String>,
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
            .field("wire_urls", &self.wire_urls)
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
    /// The wire's URLs (one for the embedded wire).
    pub urls: Vec<String>,
    pub transport: Preference,
    pub embedded: Option<Embedded>,
    pub metrics_addr: SocketAddr,
    client: ClientConfig,
    run: RunOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("urls", &self.urls)
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
        wire_urls,
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

    let (urls, embedded) = match wire_urls {
        urls if !urls.is_empty() => (urls, None),
        _ => {
            let resume_after = live.engine().last_event_id().unwrap_or(0);
            let wire =
                embedded::start(fixture_rate, clock.clone(), resume_after, &file.strategy.filter()).await?;
            run.until_id = Some(wire.last_id);
            (vec![wire.url.clone()], Some(wire))
        }
    };

    let kind = transport;
    let mut client = ClientConfig::new(&urls[0], clock.clone()).with_urls(urls.clone());
    let endpoints = urls
        .iter()
        .map(|url| Endpoint::parse(url).map_err(|e| Error::Wire(ClientError::BadUrl(e))))
        .collect::<Result<Vec<_>, _>>()?;
    // The first URL's scheme picks the transport under auto.
    if let Some(warning) = endpoints[0].scheme.apply(kind, &mut client.policy) {
        tracing::warn!("{warning}");
    }
    if let Some(path) = &ca_cert {
        client.tls = Tls::from_ca_file(path).map_err(Error::Wire)?;
    }
    client.token = token;
    client.filter = file.strategy.filter();
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
        urls,
        transport: kind,
        embedded,
        metrics_addr,
        client,
        run,
    })
}

/// Where the client starts. A checkpoint decides, in its epoch when it
/// knows it (a `--from` other than its own last id, or in another epoch,
/// is refused, so a restart never skips or repeats silently); without one,
/// `--from` does, else the first event (and a wire whose retention has
/// moved on answers `cursor_expired`, an error naming `--from`).
async fn start_after(
    live: &Live,
    from: Option<Start>,
    run: &RunOptions,
    client: &ClientConfig,
) -> Result<Cursor, Error> {
    let (checkpoint, epoch) = {
        let engine = live.engine();
        (engine.last_event_id(), engine.epoch())
    };
    match (checkpoint, from) {
        (Some(last), None) => Ok(Cursor { epoch, id: last }),
        (Some(last), Some(Start::After(c)))
            if c.id == last && c.epoch.zip(epoch).is_none_or(|(a, b)| a == b) =>
        {
            Ok(Cursor {
                epoch: epoch.or(c.epoch),
                id: last,
            })
        }
        (Some(last), Some(from)) => Err(Error::FromWithCheckpoint {
            from,
            last: Cursor { epoch, id: last },
            dir: run.state_dir.clone().unwrap_or_default(),
        }),
        (None, None) => Ok(Cursor::bare(0)),
        (None, Some(Start::After(cursor))) => Ok(cursor),
        (None, Some(Start::Head)) => transport::Client::head(TokioConnect, client)
            .await
            .map_err(Error::Wire),
    }
}

impl Session {
    /// The line the binary prints at start.
    pub fn banner(&self) -> String {
        format!(
            "decision: {} over {} ({}), metrics on http://{}/metrics, dashboard on http://{}/{}",
            self.urls.join(","),
            self.transport.as_str(),
            if self.embedded.is_some() {
                "embedded wire, built-in day"
            } else {
                "live wire"
            },
            self.metrics_addr,
            self.metrics_addr,
            resuming(&self.live.engine()),
        )
    }

    /// What the operator must read when the wire refused the checkpoint
    /// (or the run's) cursor: [`advice`] for this session's files.
    pub fn advice(&self, ended: &Ended) -> Option<String> {
        advice(ended, &self.run)
    }

    /// Runs the engine on the wire until done, `interrupt`, or the wire
    /// stops; against a live wire, logs a status line every 10 s meanwhile.
    pub async fn run(&self, interrupt: impl Future<Output = ()>) -> Result<Ended, Error> {
        let run = crate::run(
            TokioConnect,
            self.client.clone(),
            &self.live,
            &self.run,
            interrupt,
        );
        if self.embedded.is_some() {
            return run.await;
        }
        let status = crate::report::report_status(
            self.live.clone(),
            crate::report::STATUS_EVERY,
            crate::report::log_status,
        );
        tokio::select! {
            biased;
            ended = run => ended,
            () = status => unreachable!("the status loop never ends"),
        }
    }

    /// The summary the binary prints at the end.
    pub fn summary(&self, ended: &Ended) -> String {
        crate::report::summary_text(&self.live, &self.urls, self.transport, ended)
    }

    /// The same, machine-readable (`--summary-json`).
    pub fn summary_json(&self, ended: &Ended) -> crate::report::SummaryJson {
        crate::report::summary_json(&self.live, &self.urls, self.transport, ended)
    }
}

/// The banner's resume point: after the checkpoint's last event, in its
/// epoch when known.
fn resuming(engine: &decision::Engine) -> String {
    match (engine.last_event_id(), engine.epoch()) {
        (None, _) => String::new(),
        (Some(id), None) => format!(", resuming after event {id}"),
        (Some(id), Some(epoch)) => format!(", resuming after event {id} in epoch {epoch}"),
    }
}

/// Exit code 3: the wire's log changed epoch (recreated) under the
/// checkpoint, and `--accept-new-epoch` was not given.
pub const EXIT_EPOCH_CHANGED: i32 = 3;
/// Exit code 4: the checkpoint is past the wire's head.
pub const EXIT_CURSOR_AHEAD: i32 = 4;

/// The binary's exit code for how the run ended: 0 done or interrupted; 1
/// when the wire gave up; 3 when its epoch changed; 4 when the checkpoint
/// is ahead of it. (2, from `main`, is a bad option or setup.)
pub fn exit_code(ended: &Ended) -> i32 {
    match ended {
        Ended::Done | Ended::Interrupted => 0,
        Ended::WireStopped(ClientError::EpochChanged { .. }) => EXIT_EPOCH_CHANGED,
        Ended::WireStopped(ClientError::CursorAhead { .. }) => EXIT_CURSOR_AHEAD,
        Ended::WireStopped(_) | Ended::WireLost => 1,
    }
}

/// For a run the wire refused because its cursor names nothing there: what
/// happened, the files concerned, and what the operator can do. None for
/// any other end.
pub fn advice(ended: &Ended, run: &RunOptions) -> Option<String> {
    let checkpoint = run.state_dir.as_deref().map_or_else(
        || "(none: no --state-dir)".to_owned(),
        |dir| crate::run::checkpoint_path(dir).display().to_string(),
    );
    let audit = run
        .audit_log
        .as_deref()
        .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
    let scratch =
        format!("remove the checkpoint {checkpoint} and the audit log {audit} to start from scratch");
    match ended {
        Ended::WireStopped(ClientError::EpochChanged { from, epoch, .. }) => Some(format!(
            "decision: the wire's log was recreated (its epoch changed from {from} to {epoch}): the event ids in the checkpoint {checkpoint} no longer name the same events, so nothing from the new epoch was applied. Either rerun with --accept-new-epoch (or `wire.accept_new_epoch: true` in the config file) to carry the portfolio over and read the new epoch from its oldest event, the change recorded in the audit log; or {scratch}."
        )),
        Ended::WireStopped(ClientError::CursorAhead { cursor, head }) => Some(format!(
            "decision: the checkpoint {checkpoint} resumes after event {cursor}, past the wire's head {}: the checkpoint is ahead of the wire, so it is another wire's (check --wire-url) or this wire lost events it had published. Point it at the right wire, or {scratch}.",
            head.map_or_else(|| "(unknown)".to_owned(), |h| h.to_string())
        )),
        _ => None,
    }
}
