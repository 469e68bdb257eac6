//! Operations controls under `/v1` (docs/contract.md §5): the kill switch, pause and
//! resume, and the interview-scheduling gate. Thin: parse, authenticate,
//! hand over to `crate::controls` and `crate::temporal::human`.

use super::HttpState;
use super::auth::Principal;
use super::error::ApiError;
use crate::controls::gate;
use crate::temporal::human::{self, Verification};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use vbridge_core::domain::{ApplicationId, CandidateId};
use vbridge_proto::{GatingSignal, PauseSignal};

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "controls: the store cannot be used");
    ApiError::Unavailable("the event store cannot be used right now".into())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest { code: "invalid_payload", message: message.into() }
}

#[derive(Deserialize)]
struct GatingBody {
    enabled: Option<bool>,
    #[serde(default)]
    reason: String,
}

/// `GET /v1/controls/gating` (ops, auditor): the kill switch now.
pub async fn gating(State(s): State<HttpState>) -> Result<Json<Value>, ApiError> {
    let flag = crate::controls::gating_flag(&s.policy).to_owned();
    let stored = s.store.control(&flag).await.map_err(unavailable)?;
    let enabled = crate::controls::gating_enabled(s.store.as_ref(), &s.policy).await.map_err(unavailable)?;
    Ok(Json(json!({
        "flag": flag,
        "enabled": enabled,
        "banner": Some(crate::controls::banner_for(&s.policy, enabled)).filter(|b| !b.is_empty()),
        "changed": stored,
    })))
}

/// `PUT /v1/controls/gating` (ops): turn gating on or off, with a reason.
/// The gate answers the new way at once; open verifications get the ATS
/// banner through a batch signal.
#[tracing::instrument(skip_all, fields(actor = %who.subject, trace_id))]
pub async fn set_gating(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: GatingBody = super::json_body(&bytes)?;
    let enabled = body.enabled.ok_or_else(|| invalid("\"enabled\" (true or false) is required"))?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > vbridge_core::review::MAX_NOTE_CHARS {
        return Err(invalid("\"reason\" is required (at most 2000 characters): say why gating changes"));
    }
    let trace_id = super::request_trace_id(&headers, s.policy.trace_header());
    tracing::Span::current().record("trace_id", trace_id.as_str());
    let control =
        crate::controls::set_gating(s.store.as_ref(), &s.policy, enabled, &who.subject, reason, trace_id.as_str())
            .await
            .map_err(unavailable)?;
    let banner = crate::controls::banner_for(&s.policy, enabled);
    if let Ok(mut b) = s.temporal.banner.write() {
        *b = banner.clone();
    }
    let broadcast = match s.temporal.forwarder() {
        Some(fw) => {
            let g =
                GatingSignal { enabled, banner: banner.clone(), actor: who.subject.clone(), reason: reason.to_owned() };
            match human::broadcast_gating(&fw, &s.temporal.namespace, g).await {
                Ok(job) => Some(job),
                Err(e) => {
                    tracing::error!(error = %e, "the banner broadcast did not start; reconciliation will write it");
                    None
                }
            }
        }
        None => None,
    };
    Ok(Json(json!({
        "enabled": enabled,
        "reason": control.reason,
        "actor": control.actor,
        "changed_at": control.changed_at,
        "banner": Some(banner).filter(|b| !b.is_empty()),
        "broadcast": broadcast,
    })))
}

/// `GET /v1/applications/{a}/gate`: may the interview be scheduled?
#[tracing::instrument(skip_all, fields(application_id = %a))]
pub async fn gate(State(s): State<HttpState>, Path(a): Path<String>) -> Result<Json<gate::Answer>, ApiError> {
    ApplicationId::parse(&a)
        .map_err(|e| ApiError::BadRequest { code: "invalid_application_id", message: e.to_string() })?;
    let answer = crate::controls::gate_answer(s.store.as_ref(), &s.policy, &a).await.map_err(unavailable)?;
    s.metrics.gate_answered(&answer.reason);
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct FailedQuery {
    limit: Option<u32>,
}

/// `GET /v1/writes/failed` (ops): the open dead letters, newest first.
pub async fn failed_writes(
    State(s): State<HttpState>,
    axum::extract::Query(q): axum::extract::Query<FailedQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, crate::controls::dead_letters::MAX_LIST);
    let items = s.store.dead_letters(None, limit).await.map_err(unavailable)?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct RetryBody {
    idempotency_key: Option<String>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    reason: String,
}

/// `POST /v1/writes/retry` (ops): re-drive one dead letter, or all.
#[tracing::instrument(skip_all, fields(actor = %who.subject))]
pub async fn retry_writes(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let body: RetryBody = super::json_body(&bytes)?;
    let key = match (body.idempotency_key.as_deref().map(str::trim).filter(|k| !k.is_empty()), body.all) {
        (Some(k), false) => Some(k.to_owned()),
        (None, true) => None,
        _ => return Err(invalid("give either \"idempotency_key\" or \"all\": true")),
    };
    let fw = super::forwarder(&s)?;
    let r =
        crate::controls::dead_letters::retry(s.store.as_ref(), &fw, key.as_deref(), &who.subject, &body.reason).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(json!(r))))
}

#[derive(Deserialize, Default)]
struct ReconcileBody {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/reconcile` (ops): start a reconciliation now.
#[tracing::instrument(skip_all, fields(actor = %who.subject))]
pub async fn reconcile(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let body: ReconcileBody = super::optional_json_body(&bytes)?;
    let fw = super::forwarder(&s)?;
    let run_id = crate::controls::reconcile::start(&fw.client, &fw.task_queue, &s.policy, body.dry_run, &who.subject)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the run could not start: {e}")))?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "dry_run": body.dry_run }))))
}

/// `GET /v1/reconcile/{run_id}` (ops): the report, or the progress so far.
pub async fn reconcile_report(State(s): State<HttpState>, Path(run_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let client = s.temporal.forwarder().map(|f| f.client);
    match crate::controls::reconcile::report(s.store.as_ref(), client.as_ref(), &run_id).await.map_err(unavailable)? {
        Some(p) => Ok(Json(serde_json::to_value(p).expect("a report serializes"))),
        None => Err(ApiError::NotFound(format!("no reconciliation run {run_id}"))),
    }
}

#[derive(Deserialize, Default)]
struct PauseBody {
    #[serde(default)]
    reason: String,
}

/// `POST /v1/verifications/{c}/{a}/pause` and `/resume` (ops).
#[tracing::instrument(skip_all, fields(candidate_id = %c, application_id = %a, actor = %who.subject))]
async fn pause_or_resume(
    s: HttpState,
    who: Principal,
    c: String,
    a: String,
    headers: HeaderMap,
    bytes: Bytes,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let bad = |code, e: vbridge_core::domain::ParseError| ApiError::BadRequest { code, message: e.to_string() };
    let v = Verification {
        candidate_id: CandidateId::parse(&c).map_err(|e| bad("invalid_candidate_id", e))?,
        application_id: ApplicationId::parse(&a).map_err(|e| bad("invalid_application_id", e))?,
    };
    let body: PauseBody = super::optional_json_body(&bytes)?;
    let fw = super::forwarder(&s)?;
    let trace_id = super::request_trace_id(&headers, s.policy.trace_header());
    let p =
        PauseSignal { paused, actor: who.subject.clone(), reason: body.reason, trace_id: trace_id.as_str().to_owned() };
    human::pause(s.store.as_ref(), &fw, &v, p).await?;
    Ok(Json(json!({ "paused": paused })))
}

pub async fn pause(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    Path((c, a)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    pause_or_resume(s, who, c, a, headers, bytes, true).await
}

pub async fn resume(
    State(s): State<HttpState>,
    Extension(who): Extension<Principal>,
    Path((c, a)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    pause_or_resume(s, who, c, a, headers, bytes, false).await
}
