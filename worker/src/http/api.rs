//! The read API under `/v1` (docs/contract.md §5). Behind the auth layer.

use super::HttpState;
use super::error::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use vbridge_core::domain::{ApplicationId, CandidateId};

#[derive(serde::Deserialize)]
pub struct TimelineQuery {
    application_id: Option<String>,
}

/// `GET /v1/candidates/{id}/timeline`: the audit timeline as JSON.
#[tracing::instrument(skip_all, fields(candidate_id = %id))]
pub async fn candidate_timeline(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let bad = |code, e: vbridge_core::domain::ParseError| ApiError::BadRequest { code, message: e.to_string() };
    CandidateId::parse(&id).map_err(|e| bad("invalid_candidate_id", e))?;
    if let Some(a) = &q.application_id {
        ApplicationId::parse(a).map_err(|e| bad("invalid_application_id", e))?;
    }
    let t = crate::audit::timeline::build(s.store.as_ref(), &id, q.application_id.as_deref()).await.map_err(|e| {
        tracing::error!(error = %e, "timeline failed");
        ApiError::Unavailable("the event store cannot be read right now".into())
    })?;
    Ok(Json(t).into_response())
}

#[derive(serde::Deserialize)]
pub struct PackQuery {
    /// `html`: the printable view; else the signed JSON file.
    format: Option<String>,
}

/// `GET /v1/candidates/{id}/evidence-pack` (auditor): the candidate's signed
/// evidence pack (docs/evidence.md), a file to keep; `?format=html` renders
/// the same content for people. 409 `conflict` when the bridge has no
/// evidence key.
#[tracing::instrument(skip_all, fields(candidate_id = %id))]
pub async fn evidence_pack(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<PackQuery>,
    who: Option<axum::Extension<crate::http::auth::Principal>>,
) -> Result<Response, ApiError> {
    use crate::audit::evidence::{self, EvidenceError};
    let c = CandidateId::parse(&id)
        .map_err(|e| ApiError::BadRequest { code: "invalid_candidate_id", message: e.to_string() })?;
    let by = who.map(|w| w.0.subject.clone()).unwrap_or_else(|| "api".into());
    let key = s.evidence_key.as_deref();
    let pack = evidence::export(s.store.as_ref(), &s.policy, key, c.as_str(), &by).await.map_err(|e| match e {
        // A bridge set up without the key: no retry will help (409).
        EvidenceError::NoKey => ApiError::Conflict(e.to_string()),
        EvidenceError::Unknown(_) => ApiError::NotFound(e.to_string()),
        EvidenceError::TooLarge(_) => ApiError::BadRequest { code: "too_large", message: e.to_string() },
        EvidenceError::Store(e) => {
            tracing::error!(error = %e, "evidence pack failed");
            ApiError::Unavailable("the event store cannot be read right now".into())
        }
    })?;
    tracing::info!(records = pack.chains.iter().map(|c| c.records.len()).sum::<usize>(), by = %by, "evidence pack exported");
    if q.format.as_deref() == Some("html") {
        let key = key.expect("a pack was signed");
        return Ok(axum::response::Html(evidence::to_html(&pack, key)).into_response());
    }
    let disposition = format!("attachment; filename=\"evidence-{}.json\"", c.as_str());
    let mut r = Json(pack).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Where the bridge publishes its evidence key's public half.
pub const EVIDENCE_KEY_PATH: &str = "/.well-known/vbridge-evidence-key";

/// `GET /.well-known/vbridge-evidence-key` (open): the public key that
/// checks this bridge's evidence packs; 404 when none is configured.
pub async fn evidence_key(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let key = s.evidence_key.as_ref().ok_or_else(|| ApiError::NotFound("no evidence key is configured".into()))?;
    Ok(Json(key.public().document()).into_response())
}

#[derive(serde::Deserialize)]
pub struct RefusedQuery {
    since: Option<String>,
    until: Option<String>,
    code: Option<String>,
    candidate_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/audit/refused-deliveries` (auditor): refused deliveries by time
/// window, code and claimed candidate, their ids marked as unverified claims.
#[tracing::instrument(skip_all)]
pub async fn refused_deliveries(
    State(s): State<HttpState>,
    Query(q): Query<RefusedQuery>,
) -> Result<Json<crate::audit::refused_deliveries::Listing>, ApiError> {
    use crate::audit::refused_deliveries as refused;
    let time = |t: Option<String>| {
        t.map(|t| refused::store_time(&t))
            .transpose()
            .map_err(|message| ApiError::BadRequest { code: "invalid_time", message })
    };
    let filter = crate::store::refused::Filter {
        since: time(q.since)?,
        until: time(q.until)?,
        code: q.code,
        candidate_id: q.candidate_id,
    };
    let after = q
        .cursor
        .as_deref()
        .map(crate::store::refused::Cursor::parse)
        .transpose()
        .map_err(|message| ApiError::BadRequest { code: "invalid_cursor", message })?;
    let limit = q.limit.unwrap_or(refused::DEFAULT_PAGE);
    Ok(Json(refused::list(s.store.as_ref(), &filter, after.as_ref(), limit).await.map_err(|e| {
        tracing::error!(error = %e, "refused deliveries read failed");
        ApiError::Unavailable("the event store cannot be read right now".into())
    })?))
}

/// `GET /metrics`: Prometheus text. The review queue's depth is read from
/// its projection at scrape time (left out when the store cannot answer).
pub async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let now = crate::review::queue::now_key(chrono::Utc::now());
    let counts = s
        .store
        .review_counts(&now)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "metrics: queue depth unreadable"));
    let lag =
        s.store.oldest_unforwarded().await.inspect_err(|e| tracing::warn!(error = %e, "metrics: relay lag unreadable"));
    let gauges = crate::metrics::Gauges {
        review_queue_depth: counts.as_ref().ok().map(|c| c.0),
        review_overdue: counts.as_ref().ok().map(|c| c.1),
        relay_lag_seconds: lag.ok().map(|oldest| oldest.map_or(0.0, |at| crate::health::age_of(&at).as_secs_f64())),
    };
    let mut text = s.metrics.render(&s.policy, &gauges);
    if let Some(addr) = s.metrics.sdk_exporter.get() {
        // The SDK's worker metrics (`temporal_*`), from its own exporter.
        match sdk_metrics(*addr).await {
            Ok(sdk) => text.push_str(&sdk),
            Err(e) => tracing::warn!(error = %e, "metrics: the Temporal SDK's exporter did not answer"),
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// What the SDK's exporter serves (bounded in time and size).
async fn sdk_metrics(addr: std::net::SocketAddr) -> Result<String, String> {
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(2)).build().expect("an HTTP client")
    });
    let resp = CLIENT.get(format!("http://{addr}/metrics")).send().await.map_err(|e| e.to_string())?;
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok(if text.len() > 4 << 20 { String::new() } else { text })
}
