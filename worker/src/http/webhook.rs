//! `POST /webhooks/verification` (docs/contract.md §2): read the request, hand it to
//! [`Intake`](crate::intake::Intake), answer. The 2xx goes out only after the
//! store says the row is durable.

use super::HttpState;
use super::error::ApiError;
use crate::intake::{Arrival, Receipt};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vbridge_core::domain::TraceId;

pub async fn webhook(State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let trace_header = s.policy.trace_header();
    let trace_id = super::request_trace_id(&headers, trace_header);
    let span = tracing::info_span!(
        "webhook",
        trace_id = %trace_id.as_str(),
        event_id = tracing::field::Empty,
        candidate_id = tracing::field::Empty
    );
    // Exported traces: the delivery's trace id is the span's trace.
    crate::telemetry::join_trace(&span, trace_id.as_str(), "webhook");
    use tracing::Instrument;
    receive(&s, headers, body, trace_header, trace_id).instrument(span).await
}

async fn receive(s: &HttpState, headers: HeaderMap, body: Body, trace_header: &str, trace_id: TraceId) -> Response {
    let arrival = read(&headers, body, s.max_body_bytes).await;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut resp = match s.intake.receive(header, arrival, &trace_id).await {
        Ok(receipt) => answer(receipt, &trace_id),
        Err(e) => ApiError::from(e).into_response(),
    };
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(trace_header), HeaderValue::from_str(trace_id.as_str())) {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// A body over the limit is still read and thrown away up to this many
/// bytes, so that the client, still sending, gets the 413 rather than a reset
/// connection; past it, the connection is simply dropped.
const DRAIN_AT_MOST: usize = 4 * 1024 * 1024;

/// The body, or why it was not read: not JSON, or over the limit (checked
/// from `Content-Length` before reading, and while reading).
pub(super) async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Arrival {
    use futures::StreamExt;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Arrival::NotJson;
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > DRAIN_AT_MOST as u64) {
        return Arrival::TooLarge { limit };
    }
    let mut kept = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return Arrival::Unreadable };
        seen += chunk.len();
        if seen > DRAIN_AT_MOST {
            break;
        }
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > limit || declared.is_some_and(|n| n > limit as u64) {
        Arrival::TooLarge { limit }
    } else {
        Arrival::Json(kept.freeze())
    }
}

pub(super) fn answer(receipt: Receipt, trace_id: &TraceId) -> Response {
    let t = trace_id.as_str();
    match receipt {
        Receipt::Accepted { event_id } => {
            (StatusCode::ACCEPTED, Json(json!({"status": "accepted", "event_id": event_id, "trace_id": t})))
                .into_response()
        }
        Receipt::Ignored { event_id, event_type, reason } => {
            let mut body = json!({"status": "ignored", "event_id": event_id, "trace_id": t, "event_type": event_type});
            if let Some(reason) = reason {
                body["reason"] = reason.into();
            }
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Receipt::Duplicate { event_id, original_trace_id } => (
            StatusCode::OK,
            Json(json!({"status": "duplicate", "event_id": event_id, "trace_id": t, "original_trace_id": original_trace_id})),
        )
            .into_response(),
    }
}
