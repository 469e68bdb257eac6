//! The HTTP edge: the router, its layers and its handlers. Handlers read the
//! request and hand over; refusals map through one [`ApiError`].
//!
//! Layers, outermost first, on the webhook route: a request timeout, then a
//! bound on requests in flight that sheds the excess at once (503 +
//! `Retry-After`) rather than queueing it. The operator API sits behind the
//! auth layer ([`auth`]), each route open to the roles of its [`Action`]
//! (the one role matrix, [`roles`]); `/healthz` and `/readyz` are open.
//!
//! The operator API (`/v1`) and the console (`/console`) have a request
//! timeout of their own (`VBRIDGE_API_REQUEST_TIMEOUT_MS`): whatever they
//! wait on (the identity provider, the store, Temporal), the answer comes
//! within it, 503 `unavailable` + `Retry-After` at the latest.

pub mod api;
pub mod ats;
pub mod auth;
pub mod console;
pub mod controls;
pub mod erasure;
pub mod error;
pub mod health;
pub mod jwks;
pub mod oidc;
pub mod providers;
pub mod review;
pub mod roles;
pub mod routes;
pub mod webhook;

use crate::health::Readiness;
use crate::intake::Intake;
use crate::metrics::Metrics;
use crate::store::EventStore;
use auth::{Auth, Require};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use error::ApiError;
use roles::Action;
pub use routes::Routes;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use vbridge_core::Policy;
use vbridge_core::domain::TraceId;

#[derive(Clone)]
pub struct HttpState {
    pub intake: Arc<Intake>,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<Policy>,
    pub readiness: Arc<Readiness>,
    pub max_body_bytes: usize,
    /// Human moves go to Temporal through this.
    pub temporal: Arc<crate::temporal::human::TemporalLink>,
    pub console: Arc<console::Console>,
    /// Signs evidence packs; none: `evidence-pack` answers 503 with why.
    pub evidence_key: Option<Arc<vbridge_core::evidence::EvidenceKey>>,
}

/// The request's trace id (the policy's trace header), or a new one.
pub fn request_trace_id(headers: &axum::http::HeaderMap, trace_header: &str) -> TraceId {
    headers
        .get(trace_header)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceId::parse(v).ok())
        .unwrap_or_else(TraceId::new_random)
}

/// An operator API body as JSON; a malformed one is 400 `invalid_payload`.
pub fn json_body<T: serde::de::DeserializeOwned>(bytes: &bytes::Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest { code: "invalid_payload", message: format!("the body is not valid: {e}") })
}

/// As [`json_body`], where an empty body means the defaults.
pub fn optional_json_body<T: serde::de::DeserializeOwned + Default>(bytes: &bytes::Bytes) -> Result<T, ApiError> {
    if bytes.is_empty() { Ok(T::default()) } else { json_body(bytes) }
}

/// The way to Temporal, or 503 while this process is not connected.
pub fn forwarder(s: &HttpState) -> Result<crate::temporal::forward::Forwarder, ApiError> {
    s.temporal
        .forwarder()
        .ok_or_else(|| ApiError::Unavailable("this process is not connected to Temporal (yet)".into()))
}

/// The largest body an operator API request may have.
pub const MAX_API_BODY_BYTES: usize = 64 * 1024;

/// Bounds on the webhook route, and the operator API's and console's timeout.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub api_timeout: Duration,
}

/// The main listener's routes. `metrics_here`: serve `/metrics` (role `ops`)
/// on this listener; false when it has a listener of its own.
pub fn router(state: HttpState, auth: Auth, limits: Limits, metrics_here: bool) -> Router {
    let routes = routes(auth, limits, state.metrics.clone(), metrics_here);
    // Bodies read as `Bytes` (the operator API) stop here; the webhook
    // reads its body itself, bounded by `max_body_bytes`.
    routes.into_router().layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES)).with_state(state)
}

/// The main listener's routes, before the state (see [`router`]).
fn routes(auth: Auth, limits: Limits, metrics: Arc<Metrics>, metrics_here: bool) -> Routes<HttpState> {
    let api_metrics = metrics.clone();
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: tower::BoxError| {
            let metrics = metrics.clone();
            async move {
                if e.is::<tower::timeout::error::Elapsed>() {
                    metrics.http_timed_out.inc();
                    ApiError::TimedOut
                } else {
                    metrics.http_shed.inc();
                    ApiError::Overloaded
                }
            }
        }))
        .timeout(limits.request_timeout)
        .load_shed()
        .concurrency_limit(limits.max_in_flight);
    let need = |action: Action| {
        let any_of = action.roles();
        axum::middleware::from_fn_with_state(Require { auth: auth.clone(), any_of }, auth::require)
    };
    let mut api = Routes::new()
        .route("/v1/candidates/{id}/timeline", get(api::candidate_timeline).layer(need(Action::ReadTimeline)))
        .route("/v1/candidates/{id}/evidence-pack", get(api::evidence_pack).layer(need(Action::ExportEvidence)))
        .route("/v1/candidates/{id}/erase", post(erasure::erase).layer(need(Action::Erase)))
        .route("/v1/audit/refused-deliveries", get(api::refused_deliveries).layer(need(Action::ReadRefusals)))
        .route("/v1/reviews", get(review::list).layer(need(Action::ReadQueue)))
        .route("/v1/reviews/{candidate}/{application}/decision", post(review::decide).layer(need(Action::Decide)))
        .route(
            "/v1/controls/gating",
            get(controls::gating)
                .layer(need(Action::ReadControls))
                .merge(axum::routing::put(controls::set_gating).layer(need(Action::SetControls))),
        )
        .route("/v1/applications/{application}/gate", get(controls::gate).layer(need(Action::ReadGate)))
        .route("/v1/reconcile", post(controls::reconcile).layer(need(Action::Operate)))
        .route("/v1/reconcile/{run_id}", get(controls::reconcile_report).layer(need(Action::Operate)))
        .route("/v1/writes/failed", get(controls::failed_writes).layer(need(Action::Operate)))
        .route("/v1/writes/retry", post(controls::retry_writes).layer(need(Action::Operate)))
        .route("/v1/verifications/{candidate}/{application}/pause", post(controls::pause).layer(need(Action::Operate)))
        .route(
            "/v1/verifications/{candidate}/{application}/resume",
            post(controls::resume).layer(need(Action::Operate)),
        )
        .route(
            "/v1/verifications/{candidate}/{application}/override",
            post(review::override_state).layer(need(Action::Override)),
        );
    if metrics_here {
        api = api.route("/metrics", get(api::metrics).layer(need(Action::Metrics)));
    }
    // A request timeout answered with the contract's 503 `unavailable`.
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: tower::BoxError| {
            let metrics = api_metrics.clone();
            async move {
                metrics.http_timed_out.inc();
                ApiError::TimedOut
            }
        }))
        .timeout(limits.api_timeout);
    let api = api.merge(console::routes()).map(|r| r.layer(timeout));
    Routes::new()
        .route("/webhooks/verification", post(webhook::webhook).layer(guarded.clone()))
        .route("/webhooks/persona", post(providers::persona).layer(guarded.clone()))
        .route("/webhooks/onfido", post(providers::onfido).layer(guarded.clone()))
        .route("/webhooks/veriff", post(providers::veriff).layer(guarded.clone()))
        .route("/webhooks/sumsub", post(providers::sumsub).layer(guarded.clone()))
        .route("/webhooks/custom/{name}", post(providers::custom).layer(guarded.clone()))
        .route("/webhooks/ats/greenhouse", post(ats::greenhouse).layer(guarded.clone()))
        .route("/webhooks/ats/ashby", post(ats::ashby).layer(guarded))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(api::EVIDENCE_KEY_PATH, get(api::evidence_key))
        .merge(api)
}

/// The separate, open metrics listener (`VBRIDGE_METRICS_LISTEN`).
pub fn metrics_router(state: HttpState) -> Router {
    metrics_routes().into_router().with_state(state)
}

fn metrics_routes() -> Routes<HttpState> {
    Routes::new().route("/metrics", get(api::metrics))
}

/// Every path either listener can serve (`/metrics` on the main one or its
/// own), as registered: what docs/openapi.yaml must document. Built with a
/// closed placeholder credential set; the paths do not depend on it.
pub fn served_paths() -> Vec<&'static str> {
    let metrics = Arc::new(Metrics::default());
    let auth = Auth {
        grants: Default::default(),
        open: false,
        metrics: metrics.clone(),
        refusals: Default::default(),
        trace_header: String::new(),
        oidc: None,
    };
    let limits =
        Limits { max_in_flight: 1, request_timeout: Duration::from_secs(1), api_timeout: Duration::from_secs(1) };
    let mut paths = routes(auth, limits, metrics, true).paths().to_vec();
    paths.extend(metrics_routes().paths());
    paths.sort_unstable();
    paths.dedup();
    paths
}
