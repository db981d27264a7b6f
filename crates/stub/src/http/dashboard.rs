//! The live dashboards' server side: wire-stub's page at `/` and its
//! `/dashboard/stream`, and [`DashboardStreams`], the bounded SSE ticker both
//! dashboards (this one and the `decision` binary's) stream through.
//!
//! A dashboard stream is pulled, never pushed: each chunk is written only
//! when hyper polls the body, that is once the socket took the previous one,
//! so a slow or stalled browser holds one chunk at most, never a backlog;
//! and at most [`DashboardStreams::new`]'s `max` streams are open at once.
//! Every chunk is encoded with the `sse` crate's encoder.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use super::ApiError;
use crate::Stub;

/// wire-stub's dashboard page, before [`assemble`].
const STUB_PAGE: &str = include_str!("dashboard/stub.html");
/// What both pages share: drawing, rendering, the `EventSource`.
pub const COMMON_JS: &str = include_str!("dashboard/common.js");
pub const COMMON_CSS: &str = include_str!("dashboard/common.css");

/// How often a dashboard stream sends the figures.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The `retry:` hint a dashboard stream starts with, in ms.
pub const RETRY_MS: u64 = 1000;

/// Dashboard streams open at once, per server, at most.
pub const MAX_STREAMS: usize = 16;

/// The dashboard streams of one server: at most `max` at once (the next is
/// answered 503 until one ends).
#[derive(Debug, Clone)]
pub struct DashboardStreams(Arc<Semaphore>);

impl DashboardStreams {
    pub fn new(max: usize) -> DashboardStreams {
        DashboardStreams(Arc::new(Semaphore::new(max)))
    }

    /// A `text/event-stream` answer: a `retry:` hint and a comment, then
    /// what `tick` writes (with `sse::encode`), at once and then every
    /// `period` by tokio's clock, until `end` resolves. 503 when `max`
    /// streams are open.
    pub fn open<F, E>(&self, period: Duration, end: E, tick: F) -> Response
    where
        F: FnMut(&mut Vec<u8>) + Send + 'static,
        E: Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.0.clone().try_acquire_owned() else {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "too many dashboard streams are open: close one and retry",
            )
            .into_response();
        };
        let mut first = Vec::new();
        sse::encode::retry(&mut first, RETRY_MS);
        sse::encode::comment(&mut first, "tickwire dashboard");
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let state = (interval, tick, Box::pin(end), permit, first);
        let body = futures_util::stream::unfold(
            state,
            |(mut interval, mut tick, mut end, permit, mut out)| async move {
                tokio::select! {
                    biased;
                    () = &mut end => return None,
                    _ = interval.tick() => {}
                }
                tick(&mut out);
                let chunk = Bytes::from(std::mem::take(&mut out));
                Some((Ok::<_, Infallible>(chunk), (interval, tick, end, permit, out)))
            },
        );
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::HeaderName::from_static("x-accel-buffering"), "no"),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }
}

/// An HTML page, as `/` serves it.
pub fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// A page template with the shared CSS and JS put in its
/// `/*tickwire:css*/` and `/*tickwire:common*/` places.
pub fn assemble(template: &str) -> String {
    template
        .replacen("/*tickwire:css*/", COMMON_CSS, 1)
        .replacen("/*tickwire:common*/", COMMON_JS, 1)
}

pub(super) async fn page() -> Response {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    html(PAGE.get_or_init(|| assemble(STUB_PAGE)))
}

/// `GET /dashboard/stream`: every [`PERIOD`], a `metrics` event whose data
/// is `/metrics.json`'s document and a `connections` event whose data is
/// `/connections`'s; the stream ends when the server shuts down.
pub(super) fn stream() -> MethodRouter<Stub> {
    let streams = DashboardStreams::new(MAX_STREAMS);
    get(move |State(stub): State<Stub>| {
        let streams = streams.clone();
        async move {
            let end = stub.shutdown_token().clone().cancelled_owned();
            streams.open(PERIOD, end, move |out| write_figures(&stub, out))
        }
    })
}

/// One tick of wire-stub's dashboard stream.
fn write_figures(stub: &Stub, out: &mut Vec<u8>) {
    let metrics = stub.metrics_json().to_string();
    let conns = serde_json::to_string(&stub.connections()).unwrap_or_default();
    for (kind, data) in [("metrics", metrics), ("connections", conns)] {
        // Constant event types, no id: the encoder cannot refuse them.
        let _ = sse::encode::event(out, Some(kind), None, &data);
    }
}
