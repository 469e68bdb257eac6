//! `POST /webhooks/persona|onfido|veriff|sumsub` (docs/contract.md §7): read
//! the request, hand it to the provider's adapter through
//! [`Intake::receive_provider`](crate::intake::Intake::receive_provider),
//! answer as the IL route does. A provider that is not configured answers 404.
//! `POST /webhooks/custom/{name}`: a provider declared in
//! `VBRIDGE_CUSTOM_PROVIDERS` (docs/providers.md), 404 for any other name.

use super::HttpState;
use super::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use vbridge_core::intake::providers::{Adapter, ProviderKind};

pub async fn persona(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(ProviderKind::Persona, s, headers, body).await
}

pub async fn onfido(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(ProviderKind::Onfido, s, headers, body).await
}

pub async fn veriff(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(ProviderKind::Veriff, s, headers, body).await
}

pub async fn sumsub(s: State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    receive(ProviderKind::Sumsub, s, headers, body).await
}

pub async fn custom(Path(name): Path<String>, State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let adapter = s.intake.providers.declared(&name);
    let missing = || format!("no provider named {name:?} is declared");
    serve(&s, adapter, missing, headers, body).await
}

async fn receive(kind: ProviderKind, State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let adapter = s.intake.providers.get(kind);
    serve(&s, adapter, || format!("the {} route is not configured", kind.as_str()), headers, body).await
}

async fn serve(
    s: &HttpState,
    adapter: Option<&dyn Adapter>,
    missing: impl FnOnce() -> String,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let trace_header = s.policy.trace_header();
    let trace_id = super::request_trace_id(&headers, trace_header);
    let mut resp = match adapter {
        None => ApiError::NotFound(missing()).into_response(),
        Some(adapter) => {
            let span = tracing::info_span!(
                "webhook",
                trace_id = %trace_id.as_str(),
                provider = adapter.name(),
                event_id = tracing::field::Empty,
                candidate_id = tracing::field::Empty
            );
            crate::telemetry::join_trace(&span, trace_id.as_str(), "webhook");
            use tracing::Instrument;
            async {
                let arrival = super::webhook::read(&headers, body, s.max_body_bytes).await;
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                match s.intake.receive_provider(adapter, header, arrival, &trace_id).await {
                    Ok(receipt) => super::webhook::answer(receipt, &trace_id),
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
