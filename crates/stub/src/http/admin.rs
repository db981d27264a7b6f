//! Operations endpoints: `/healthz` (no auth), the live connections (list,
//! drop one), and the metrics as Prometheus text and as JSON.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, json_response};
use crate::Stub;

pub(super) async fn healthz(State(stub): State<Stub>) -> Response {
    let log = stub.log();
    json_response(
        serde_json::json!({
            "status": "ok",
            "log": log.status(),
            "epoch": log.epoch(),
            "oldest": log.oldest(),
            "head": log.head(),
        })
        .to_string(),
    )
}

pub(super) async fn connections(State(stub): State<Stub>) -> Response {
    json_response(serde_json::to_string(&stub.connections()).unwrap_or_default())
}

pub(super) async fn drop_connection(
    State(stub): State<Stub>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("connection id must be a number"))?;
    if stub.0.conns.kill(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no connection {id}"),
        ))
    }
}

/// OpenMetrics, or the classic text when `Accept` prefers `text/plain`.
pub(super) async fn metrics(State(stub): State<Stub>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = exposition::Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        stub.0.metrics.prometheus(stub.log(), &stub.0.conns, format),
    )
        .into_response()
}

pub(super) async fn metrics_json(State(stub): State<Stub>) -> Response {
    json_response(stub.0.metrics.json(stub.log(), &stub.0.conns).to_string())
}
