//! `GET /healthz` (liveness: the process answers) and `GET /readyz`
//! (readiness: see [`crate::health`]). Both open, as orchestrators expect.

use super::HttpState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(s): State<HttpState>) -> Response {
    let report = s.readiness.report().await;
    let status = if report.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}
