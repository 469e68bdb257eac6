//! `ApiError`: every refusal the HTTP edge answers, mapped in one place to a
//! status, the contract's error code and the JSON error shape
//! `{"error":{"code":..,"message":..}}` (docs/contract.md §2, §5).

use crate::intake::IntakeError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Seconds a 503 asks the caller to wait before retrying.
pub const RETRY_AFTER_SECONDS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("this credential lacks the role {0}")]
    Forbidden(String),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the verification's state (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// A human move the workflow refused, with the contract's code.
    #[error("{}", .0.message)]
    Refused(vbridge_core::review::Refusal),
    #[error("the server is at capacity; retry later")]
    Overloaded,
    #[error("the request took too long; retry later")]
    TimedOut,
}

/// How a refused or failed human move (or control) is answered.
impl From<crate::temporal::human::MoveError> for ApiError {
    fn from(e: crate::temporal::human::MoveError) -> ApiError {
        use crate::temporal::human::MoveError;
        match e {
            MoveError::Refused(r) => ApiError::Refused(r),
            e @ MoveError::Unknown(_) => ApiError::Conflict(e.to_string()),
            e @ MoveError::BadQuery(_) => ApiError::BadRequest { code: "invalid_request", message: e.to_string() },
            MoveError::Store(e) => {
                tracing::error!(error = %e, "store read failed");
                ApiError::Unavailable("the event store cannot be read right now".into())
            }
            MoveError::Temporal(e) => {
                tracing::error!(error = %e, "Temporal call failed");
                ApiError::Unavailable("Temporal cannot take the request right now".into())
            }
        }
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Intake(e) => match e {
                IntakeError::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
                IntakeError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                IntakeError::Signature(s) => (StatusCode::UNAUTHORIZED, s.code()),
                IntakeError::Payload(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
                IntakeError::Conflict(_) => (StatusCode::CONFLICT, "idempotency_conflict"),
                IntakeError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            },
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Refused(r) if r.code == vbridge_core::review::CONFLICT => (StatusCode::CONFLICT, r.code),
            ApiError::Refused(r) => (StatusCode::UNPROCESSABLE_ENTITY, r.code),
            ApiError::Unavailable(_) | ApiError::Overloaded | ApiError::TimedOut => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let mut body = json!({"error": {"code": code, "message": self.to_string()}});
        if let ApiError::Intake(IntakeError::Payload(p)) = &self {
            body["error"]["field"] = p.field.clone().into();
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED && matches!(self, ApiError::Unauthenticated) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
