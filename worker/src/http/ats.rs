//! `POST /webhooks/ats/greenhouse` and `/webhooks/ats/ashby`
//! (docs/contract.md §8): read the request, hand it to the ATS's adapter
//! through [`Intake::receive_ats`](crate::intake::Intake::receive_ats).
//! Every answer that takes the delivery is exactly 200 (Greenhouse treats
//! anything else as a failure and retries), with the same JSON body as the
//! other routes; refusals are the contract's 4xx/5xx. An ATS whose secret
//! is not configured answers 404.

use super::HttpState;
use super::error::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vbridge_core::intake::ats::AtsKind;

pub async fn greenhouse(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(AtsKind::Greenhouse, s, headers, body).await
}

pub async fn ashby(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(AtsKind::Ashby, s, headers, body).await
}

async fn receive(kind: AtsKind, State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let trace_header = s.policy.trace_header();
    let trace_id = super::request_trace_id(&headers, trace_header);
    let mut resp = match s.intake.ats.get(kind) {
        None => ApiError::NotFound(format!("the {} webhook route is not configured", kind.as_str())).into_response(),
        Some(adapter) => {
            let span = tracing::info_span!(
                "webhook",
                trace_id = %trace_id.as_str(),
                ats = kind.as_str(),
                event_id = tracing::field::Empty,
                candidate_id = tracing::field::Empty
            );
            crate::telemetry::join_trace(&span, trace_id.as_str(), "webhook");
            use tracing::Instrument;
            async {
                let arrival = super::webhook::read(&headers, body, s.max_body_bytes).await;
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                match s.intake.receive_ats(adapter, header, arrival, &trace_id).await {
                    Ok(receipt) => {
                        let mut r = super::webhook::answer(receipt, &trace_id);
                        *r.status_mut() = StatusCode::OK;
                        r
                    }
                    Err(e) => ApiError::from(e).into_response(),
                }
            }
            .instrument(span)
            .await
        }
    };
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(trace_header), HeaderValue::from_str(trace_id.as_str())) {
        resp.headers_mut().insert(name, value);
    }
    resp
}
