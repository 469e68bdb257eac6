//! `POST /v1/candidates/{c}/erase` (role admin; docs/contract.md §9): parse,
//! authenticate, hand over to [`crate::erasure`]. The actor is the
//! authenticated subject; `Idempotency-Key` makes a retried request erase
//! (and record) once.

use super::HttpState;
use super::auth::Principal;
use super::error::ApiError;
use crate::erasure::{self, ErasureError, Request, Trigger};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use vbridge_core::domain::CandidateId;

#[derive(Debug, Deserialize)]
struct EraseBody {
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    note: String,
}

#[tracing::instrument(skip_all, fields(candidate_id = %c, actor = %who.subject, trace_id))]
pub async fn erase(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    Path(c): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<erasure::Report>, ApiError> {
    let candidate = CandidateId::parse(&c)
        .map_err(|e| ApiError::BadRequest { code: "invalid_candidate_id", message: e.to_string() })?;
    let request_id = super::review::idempotency_key(&headers)?;
    let trace_id = super::request_trace_id(&headers, s.policy.trace_header()).as_str().to_owned();
    tracing::Span::current().record("trace_id", trace_id.as_str());
    let b: EraseBody = super::json_body(&bytes)?;
    let req = Request {
        candidate,
        actor: who.subject.clone(),
        reason_code: b.reason_code,
        note: b.note,
        trigger: Trigger::Api,
        trace_id,
        request_id,
    };
    let client = s.temporal.client.borrow().clone();
    let temporal = client.as_ref().map(|c| (c, s.temporal.namespace.as_str()));
    erasure::erase(s.store.as_ref(), temporal, req).await.map(Json).map_err(|e| match e {
        ErasureError::Invalid(message) => ApiError::BadRequest { code: "invalid_request", message },
        ErasureError::Unknown(_) => ApiError::NotFound(e.to_string()),
        ErasureError::Store(e) => {
            tracing::error!(error = %e, "erasure failed in the store");
            ApiError::Unavailable("the event store cannot be written right now".into())
        }
    })
}
