//! Manual review and overrides under `/v1` (docs/contract.md §5): the queue, a
//! reviewer's decision, an admin's override. The actor is always the
//! authenticated subject, never a field of the body. The workflow decides
//! (its update validators); these handlers parse, authenticate and hand over.

use super::HttpState;
use super::auth::Principal;
use super::error::ApiError;
use crate::review::queue::{self, Cursor, Filter, Listing};
use crate::temporal::human::{self, MoveError, Verification};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use vbridge_core::domain::{ApplicationId, CandidateId, ParseError};
use vbridge_proto::{OverrideRequest, ReviewDecision, StateView};

/// The longest `Idempotency-Key` taken (it becomes a Temporal update id).
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    queue: Option<String>,
    overdue: Option<bool>,
    reason_code: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/reviews`: open items in due order, overdue ones flagged.
#[tracing::instrument(skip_all)]
pub async fn list(State(s): State<HttpState>, Query(q): Query<ListQuery>) -> Result<Json<Listing>, ApiError> {
    let after = q
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()
        .map_err(|message| ApiError::BadRequest { code: "invalid_cursor", message })?;
    let limit = q.limit.unwrap_or(queue::DEFAULT_PAGE).clamp(1, queue::MAX_PAGE);
    let filter = Filter { queue: q.queue, overdue: q.overdue, reason_code: q.reason_code };
    Ok(Json(crate::review::list(s.store.as_ref(), &filter, after.as_ref(), limit).await.map_err(|e| {
        tracing::error!(error = %e, "review queue read failed");
        ApiError::Unavailable("the event store cannot be read right now".into())
    })?))
}

#[derive(Debug, Deserialize)]
struct DecisionBody {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
struct OverrideBody {
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    note: String,
}

/// What every human move reads from the request besides its body, and the
/// way to Temporal it goes by.
struct MoveRequest {
    verification: Verification,
    request_id: String,
    trace_id: String,
    fw: crate::temporal::forward::Forwarder,
}

/// Parse a human move's request: the ids, the `Idempotency-Key`, the trace
/// id, then the body, then the way to Temporal (in that order of refusal).
fn move_request<B: serde::de::DeserializeOwned>(
    s: &HttpState,
    c: &str,
    a: &str,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<(MoveRequest, B), ApiError> {
    let bad = |code, e: ParseError| ApiError::BadRequest { code, message: e.to_string() };
    let verification = Verification {
        candidate_id: CandidateId::parse(c).map_err(|e| bad("invalid_candidate_id", e))?,
        application_id: ApplicationId::parse(a).map_err(|e| bad("invalid_application_id", e))?,
    };
    let request_id = idempotency_key(headers)?;
    let trace_id = super::request_trace_id(headers, s.policy.trace_header()).as_str().to_owned();
    tracing::Span::current().record("trace_id", trace_id.as_str());
    let parsed: B = super::json_body(bytes)?;
    let fw = super::forwarder(s)?;
    Ok((MoveRequest { verification, request_id, trace_id, fw }, parsed))
}

/// The request's `Idempotency-Key` (a fresh id when there is none).
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(match headers.get("Idempotency-Key") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(v) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::BadRequest {
                code: "invalid_idempotency_key",
                message: format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            })?,
    })
}

/// Count a move that applied.
fn counted(
    r: Result<Json<serde_json::Value>, ApiError>,
    counter: &crate::metrics::Counter,
) -> Result<Json<serde_json::Value>, ApiError> {
    if r.is_ok() {
        counter.inc();
    }
    r
}

fn moved(r: Result<StateView, MoveError>) -> Result<Json<serde_json::Value>, ApiError> {
    let view = r?;
    Ok(Json(json!({ "state": view.state, "ats_sync": view.ats_sync, "review": view.review })))
}

/// `POST /v1/reviews/{c}/{a}/decision` (role reviewer).
#[tracing::instrument(skip_all, fields(candidate_id = %c, application_id = %a, actor = %who.subject, trace_id))]
pub async fn decide(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    Path((c, a)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (m, b): (_, DecisionBody) = move_request(&s, &c, &a, &headers, &bytes)?;
    let d = ReviewDecision {
        decision: b.decision,
        reason_code: b.reason_code,
        note: b.note,
        actor: who.subject.clone(),
        trace_id: m.trace_id,
        request_id: m.request_id,
    };
    counted(moved(human::decide(s.store.as_ref(), &m.fw, &m.verification, d).await), &s.metrics.review_decisions)
}

/// `POST /v1/verifications/{c}/{a}/override` (role admin).
#[tracing::instrument(skip_all, fields(candidate_id = %c, application_id = %a, actor = %who.subject, trace_id))]
pub async fn override_state(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    Path((c, a)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (m, b): (_, OverrideBody) = move_request(&s, &c, &a, &headers, &bytes)?;
    let o = OverrideRequest {
        to: b.to,
        reason_code: b.reason_code,
        note: b.note,
        actor: who.subject.clone(),
        trace_id: m.trace_id,
        request_id: m.request_id,
    };
    counted(moved(human::override_state(s.store.as_ref(), &m.fw, &m.verification, o).await), &s.metrics.overrides)
}
