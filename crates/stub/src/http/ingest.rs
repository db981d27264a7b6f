//! `POST /events`: a JSON array or NDJSON of payloads, validated as a whole
//! (one bad item refuses the request, naming the item and the field), then
//! published under the next ids; once only under an `Idempotency-Key`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wire::Payload;

use super::{ApiError, json_response};
use crate::Stub;
use crate::log::{IdempotencyKey, LogError, Source};

pub(super) async fn ingest(
    State(stub): State<Stub>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match publish(&stub, &headers, body).await {
        Ok(res) => res,
        Err(e) => {
            let unavailable = e.status == StatusCode::SERVICE_UNAVAILABLE;
            let mut res = e.into_response();
            if unavailable {
                // Nothing was published: the same request may be sent again.
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            res
        }
    }
}

async fn publish(
    stub: &Stub,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let body = body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, e.body_text())
    })?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("body must be UTF-8"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let payloads = parse_payloads(content_type, text)?;
    if payloads.is_empty() {
        return Err(ApiError::bad_request("no events in the body"));
    }
    let appended = stub
        .publish_keyed(Source::Ingest, key, payloads)
        .await
        .map_err(|e| match e {
            LogError::KeyReused { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!("{e}: send a new key for new events"),
            ),
            LogError::Empty => ApiError::bad_request(e.to_string()),
            LogError::KeyForgotten { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_forgotten",
                format!("{e}: send a new key for new events"),
            ),
            LogError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", e.to_string())
            }
            LogError::Unavailable { .. } | LogError::Unanswered { .. } => {
                tracing::warn!(error = %e, "ingest refused: the log service is away");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "log_unavailable",
                    format!("{e}; retry (under the same Idempotency-Key, to publish once)"),
                )
            }
            LogError::Io { .. }
            | LogError::Corrupt { .. }
            | LogError::Interrupted { .. }
            | LogError::Setup { .. } => {
                tracing::error!(error = %e, "the log did not store the batch");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_error", e.to_string())
            }
        })?;
    let body = serde_json::json!({
        "first_id": appended.ids.start(),
        "last_id": appended.ids.end(),
        "head": stub.log().head(),
        "epoch": stub.log().epoch(),
        "replayed": appended.replayed,
    });
    let mut res = json_response(body.to_string());
    if appended.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// The `Idempotency-Key` header, when there is one: 1 to 255 visible ASCII
/// characters, or the request is refused.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // Bytes that are not UTF-8 are not visible ASCII either: the lossy text
    // is refused the same way.
    IdempotencyKey::new(&String::from_utf8_lossy(value.as_bytes()))
        .map(Some)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A JSON array of payloads, or NDJSON (one per line). All or nothing: one
/// bad item refuses the request, naming the item and the field.
fn parse_payloads(content_type: &str, text: &str) -> Result<Vec<Payload>, ApiError> {
    // Only types a browser page cannot send without a CORS preflight: a
    // `text/plain` (or typeless) POST from any site would otherwise publish.
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let array = if essence.eq_ignore_ascii_case("application/json") {
        true
    } else if essence.eq_ignore_ascii_case("application/x-ndjson") {
        false
    } else {
        let shown = if essence.is_empty() { "(none)" } else { essence };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {shown} is not application/json or application/x-ndjson"),
        ));
    };
    let items: Vec<String> = if array || text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("body is not a JSON array: {e}")))?;
        values.iter().map(|v| v.to_string()).collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            Payload::from_json(item).map_err(|e| ApiError::bad_request(format!("item {}: {e}", i + 1)))
        })
        .collect()
}
