//! The HTTP edge: parse, authenticate, hand over to the store, answer per
//! CONTRACT §2. The 2xx goes out only after the store says the row is durable.

use crate::intake::{self, PayloadError};
use crate::metrics::Metrics;
use crate::signature::{self, Secret, SignatureError};
use crate::store::{Committed, DeliveryRecord, EventStore, Intent};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use vbridge_workflows::Policy;
use vbridge_workflows::domain::TraceId;

#[derive(Clone)]
pub struct Receiver {
    pub policy: Arc<Policy>,
    pub secrets: Arc<Vec<Secret>>,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub recent: Arc<RecentKeys>,
    pub api_token: Option<String>,
}

/// Idempotency keys this process committed lately, so that a duplicate is
/// answered without a database read. Two generations bound the memory; a key
/// that fell out is still found in the store.
#[derive(Default)]
pub struct RecentKeys {
    generations: std::sync::Mutex<[std::collections::HashMap<String, (String, String)>; 2]>,
}

const RECENT_KEYS_PER_GENERATION: usize = 50_000;

impl RecentKeys {
    /// (event id, trace id) of the committed delivery holding `key`.
    pub fn get(&self, key: &str) -> Option<(String, String)> {
        let g = self.generations.lock().expect("recent keys lock");
        g[0].get(key).or_else(|| g[1].get(key)).cloned()
    }

    pub fn insert(&self, key: String, event_id: String, trace_id: String) {
        let mut g = self.generations.lock().expect("recent keys lock");
        if g[0].len() >= RECENT_KEYS_PER_GENERATION {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(key, (event_id, trace_id));
    }
}

pub fn router(r: Receiver) -> Router {
    Router::new()
        .route("/webhooks/verification", post(webhook))
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/v1/candidates/{id}/timeline", get(candidate_timeline))
        .with_state(r)
}

#[derive(serde::Deserialize)]
struct TimelineQuery {
    application_id: Option<String>,
}

/// `GET /v1/candidates/{id}/timeline`: the audit timeline as JSON.
#[tracing::instrument(skip_all, fields(candidate_id = %id))]
async fn candidate_timeline(
    State(r): State<Receiver>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<TimelineQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = &r.api_token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), token.as_bytes()).into());
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"code": "unauthorized", "message": "a valid bearer token is required"}})),
            )
                .into_response();
        }
    }
    if vbridge_workflows::domain::CandidateId::parse(&id).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": "invalid_candidate_id", "message": "not a candidate id"}})),
        )
            .into_response();
    }
    match crate::timeline::build(r.store.as_ref(), &id, q.application_id.as_deref()).await {
        Ok(t) => axum::Json(t).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "timeline failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({"error": {"code": "unavailable", "message": "the event store cannot be read right now"}}),
                ),
            )
                .into_response()
        }
    }
}

async fn metrics(State(r): State<Receiver>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], r.metrics.render(&r.policy))
}

struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u32>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
    Answer { status, body: json!({"error": {"code": code, "message": message.into()}}), retry_after: None }
}

impl Answer {
    fn into_response(self, trace_header: &str, trace_id: &TraceId) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(trace_header), HeaderValue::from_str(trace_id.as_str())) {
            resp.headers_mut().insert(name, value);
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

#[tracing::instrument(name = "webhook", skip_all, fields(trace_id, event_id, candidate_id))]
async fn webhook(State(r): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    let trace_header = r.policy.trace_header().to_owned();
    let trace_id = headers
        .get(trace_header.as_str())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceId::parse(v).ok())
        .unwrap_or_else(TraceId::new_random);
    tracing::Span::current().record("trace_id", trace_id.as_str());
    let answer = handle(&r, &headers, body, &trace_id).await;
    answer.into_response(&trace_header, &trace_id)
}

async fn handle(r: &Receiver, headers: &HeaderMap, body: Body, trace_id: &TraceId) -> Answer {
    let received_at = crate::now_rfc3339();
    let mut rec =
        DeliveryRecord { received_at, trace_id: trace_id.to_string(), intent: Intent::Rejected, ..Default::default() };

    if !is_json(headers) {
        rec.reject_code = Some("unsupported_media_type".into());
        return reject(
            r,
            rec,
            error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/json",
            ),
        )
        .await;
    }
    let bytes = match axum::body::to_bytes(body, r.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            rec.reject_code = Some("payload_too_large".into());
            let msg = format!("the body is larger than {} bytes", r.max_body_bytes);
            return reject(r, rec, error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", msg)).await;
        }
    };
    rec.body_sha256 = intake::sha256_hex(&bytes);

    let check = signature::Check {
        signature_header: r.policy.signature_header(),
        timestamp_header: r.policy.timestamp_header(),
        max_skew_seconds: r.policy.max_skew_seconds(),
        now_unix: chrono::Utc::now().timestamp(),
    };
    let verdict = signature::verify(&check, |name| headers.get(name).and_then(|v| v.to_str().ok()), &bytes, &r.secrets);
    let unsigned_allowed = !r.policy.raw().webhook_security.signature.required;
    match verdict {
        Ok(scheme) => {
            rec.signature_valid = true;
            tracing::debug!(scheme = scheme.as_str(), "signature verified");
        }
        Err(SignatureError::MissingSignature) if unsigned_allowed => {}
        Err(e) => {
            r.metrics.signature_invalid.inc();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            fill_claimed(&mut rec, &body, r.policy.key_field(), r.policy.redact_fields());
            tracing::warn!(code = e.code(), "webhook rejected: {e}");
            rec.reject_code = Some(e.code().into());
            return reject(r, rec, error(StatusCode::UNAUTHORIZED, e.code(), e.to_string())).await;
        }
    }

    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return invalid(r, rec, &Value::Null, PayloadError::new("body", "must be a JSON object")).await,
        Err(e) => {
            return invalid(r, rec, &Value::Null, PayloadError::new("body", format!("not valid JSON ({e})"))).await;
        }
    };

    // A key already committed is answered from the store before any other work:
    // no redaction, no validation, no Temporal call, no wait for a commit.
    if let Some(answer) = duplicate_fast_path(r, &rec, &value, trace_id).await {
        return answer;
    }

    intake::redact(&mut value, r.policy.redact_fields());
    let redacted = value.to_string();
    let parsed = match intake::parse(&value, &r.policy) {
        Ok(p) => p,
        Err(e) => return invalid(r, rec, &value, e).await,
    };
    let span = tracing::Span::current();
    span.record("event_id", parsed.event_id.as_str());
    span.record("candidate_id", parsed.candidate_id.as_str());

    let signal = parsed.to_signal(&rec.received_at, trace_id);
    rec.event_id = Some(parsed.event_id.to_string());
    rec.event_type = Some(parsed.event_type_raw.clone());
    rec.occurred_at = Some(signal.occurred_at.clone());
    rec.candidate_id = Some(parsed.candidate_id.to_string());
    rec.application_id = Some(parsed.application_id.to_string());
    rec.idempotency_key = Some(parsed.idempotency_key.to_string());
    rec.delivery_attempt = parsed.delivery_attempt.map(i64::from);
    rec.payload = Some(redacted);
    rec.intent = if parsed.event_type.is_some() { Intent::Fresh } else { Intent::FreshIgnored };
    if parsed.event_type.is_some() {
        rec.signal = Some(serde_json::to_string(&signal).expect("signals serialize"));
    }

    let key = parsed.idempotency_key.to_string();
    match r.store.commit(rec).await {
        Ok(Committed::Accepted { seq }) => {
            r.recent.insert(key, parsed.event_id.to_string(), trace_id.to_string());
            r.metrics.accepted.inc();
            tracing::info!(seq, "webhook committed");
            Answer {
                status: StatusCode::ACCEPTED,
                body: json!({"status": "accepted", "event_id": parsed.event_id.as_str(), "trace_id": trace_id.as_str()}),
                retry_after: None,
            }
        }
        Ok(Committed::Ignored { seq }) => {
            r.recent.insert(key, parsed.event_id.to_string(), trace_id.to_string());
            r.metrics.ignored.inc();
            tracing::info!(seq, event_type = %parsed.event_type_raw, "event type not acted on; recorded");
            Answer {
                status: StatusCode::ACCEPTED,
                body: json!({"status": "ignored", "event_id": parsed.event_id.as_str(), "trace_id": trace_id.as_str(), "event_type": parsed.event_type_raw}),
                retry_after: None,
            }
        }
        Ok(Committed::Duplicate { original, .. }) => {
            r.metrics.duplicate_event.inc();
            duplicate_answer(parsed.event_id.as_str(), trace_id, &original.trace_id)
        }
        Ok(Committed::Conflict { original, .. }) => {
            r.metrics.rejected.inc();
            tracing::warn!(existing_event_id = %original.event_id, "idempotency key reused with another event id");
            error(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("idempotency key already used by event {}", original.event_id),
            )
        }
        Ok(Committed::Rejected { .. }) => error(StatusCode::BAD_REQUEST, "invalid_payload", "rejected"),
        Err(e) => {
            tracing::error!(error = %e, "event store cannot commit; asking the provider to retry");
            Answer {
                retry_after: Some(2),
                ..error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the event store cannot commit right now; retry later",
                )
            }
        }
    }
}

fn duplicate_answer(event_id: &str, trace_id: &TraceId, original_trace_id: &str) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: json!({"status": "duplicate", "event_id": event_id, "trace_id": trace_id.as_str(), "original_trace_id": original_trace_id}),
        retry_after: None,
    }
}

async fn duplicate_fast_path(r: &Receiver, rec: &DeliveryRecord, body: &Value, trace_id: &TraceId) -> Option<Answer> {
    let key = body.get(r.policy.key_field())?.as_str()?;
    let event_id = body.get("event_id")?.as_str()?;
    let (original_event, original_trace) = match r.recent.get(key) {
        Some(hit) => hit,
        None => match r.store.find_key(key).await {
            Ok(Some(o)) => (o.event_id, o.trace_id),
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "idempotency look-up failed; deciding at commit");
                return None;
            }
        },
    };
    if original_event != event_id {
        return None; // a conflict: the commit path records and answers it
    }
    r.metrics.duplicate_event.inc();
    let mut dup = rec.clone();
    fill_claimed(&mut dup, body, r.policy.key_field(), r.policy.redact_fields());
    dup.intent = Intent::Duplicate;
    // The original keeps the payload; a duplicate row keeps the body hash.
    dup.payload = None;
    tracing::Span::current().record("event_id", event_id);
    tracing::info!(original_trace_id = %original_trace, "duplicate delivery acknowledged");
    r.store.record_later(dup);
    Some(duplicate_answer(event_id, trace_id, &original_trace))
}

fn fill_claimed(rec: &mut DeliveryRecord, body: &Value, key_field: &str, redact_fields: &[String]) {
    // Identifiers as the body claims them (for a rejected delivery: unverified,
    // and flagged so by `signature_valid`); a name the policy redacts is never kept.
    let c = intake::claimed(body, key_field);
    let keep = |name: &str, v: Option<String>| v.filter(|_| !redact_fields.iter().any(|f| f == name));
    rec.event_id = keep("event_id", c.event_id);
    rec.event_type = keep("event_type", c.event_type);
    rec.occurred_at = keep("occurred_at", c.occurred_at);
    rec.idempotency_key = keep(key_field, c.idempotency_key);
    rec.candidate_id = keep("candidate_id", c.candidate_id);
    rec.application_id = keep("application_id", c.application_id);
}

async fn invalid(r: &Receiver, mut rec: DeliveryRecord, body: &Value, e: PayloadError) -> Answer {
    fill_claimed(&mut rec, body, r.policy.key_field(), r.policy.redact_fields());
    rec.reject_code = Some("invalid_payload".into());
    tracing::warn!(field = %e.field, "webhook rejected: {e}");
    let mut a = error(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string());
    a.body["error"]["field"] = Value::String(e.field);
    reject(r, rec, a).await
}

async fn reject(r: &Receiver, rec: DeliveryRecord, answer: Answer) -> Answer {
    r.metrics.rejected.inc();
    if let Err(e) = r.store.commit(rec).await {
        tracing::error!(error = %e, "could not record a rejected delivery");
    }
    answer
}
