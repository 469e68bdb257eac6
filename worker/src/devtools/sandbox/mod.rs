//! The sandbox ATS: a small server speaking docs/contract.md §4 that keeps what it is
//! given, so the demo and the tests have a real HTTP peer. Its own API under
//! `/_sandbox` tells it to fail (503, 429 + Retry-After, slow, a 4xx) and shows
//! what it received.
//!
//! Like a careful ATS, it honours `Idempotency-Key`: a key it has applied is
//! answered again with the first answer and not applied twice.
//!
//! It also impersonates the commercial ATS APIs the connectors speak, on the
//! same port (their paths do not collide), checking each request's shape,
//! credentials and documented headers as strictly as the real API: Greenhouse
//! Harvest v3 and v1 (`greenhouse`), Ashby (`ashby`), Lever (`lever`). Its
//! credentials are [`impersonate::CLIENT_ID`] etc.; `vbridge dev --ats
//! greenhouse` points the bridge at it with them. The verification
//! providers' start APIs are impersonated the same way, Veriff and Persona,
//! and [`mailbox`] is a mail sink on its own SMTP port
//! ([`serve_with_mail`]), so the invitations the bridge sends can be read.

pub mod impersonate;
pub mod mailbox;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status (5xx, 408, or a 4xx for a permanent rejection).
    Status { status: u16 },
    /// Answer 429 with `Retry-After: seconds`.
    RetryAfter { seconds: u32 },
    /// Wait before answering normally.
    Slow { delay_ms: u64 },
    /// Answer this status with exactly this body (a peer that answers
    /// something the bridge does not expect, a token echoed in it, say).
    Body { status: u16, body: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRequest {
    #[serde(flatten)]
    pub fault: Fault,
    /// How many requests it applies to; absent: until cleared.
    #[serde(default)]
    pub count: Option<u32>,
    /// Only requests whose path ends with this (e.g. `/notes`); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_suffix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppliedWrite {
    pub application_id: String,
    pub verification_check_id: String,
    pub candidate_id: String,
    pub idempotency_key: String,
    pub trace_id: String,
    pub fields: BTreeMap<String, String>,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestLog {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub trace_id: Option<String>,
    pub status: u16,
    pub at: String,
    /// The `Authorization` header (the sandbox's credentials are not secret).
    #[serde(default)]
    pub authorization: Option<String>,
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

#[derive(Default)]
struct Inner {
    checks: HashMap<(String, String), (String, BTreeMap<String, String>)>,
    applied: Vec<AppliedWrite>,
    answers: HashMap<String, (u16, Value)>,
    requests: Vec<RequestLog>,
    fault: Option<(Fault, Option<u32>, Option<String>)>,
    ats: impersonate::AtsState,
    /// Verification sessions created through the impersonated providers.
    providers: Vec<impersonate::ProviderSession>,
    mail: mailbox::MailState,
}

#[derive(Clone, Default)]
pub struct Sandbox {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Deserialize)]
struct PutBody {
    candidate_id: String,
    fields: BTreeMap<String, String>,
}

impl Sandbox {
    pub fn router(&self) -> Router {
        Router::new()
            .route("/applications/{app}/verification-checks/{check}", put(put_check).get(get_check))
            .route("/_sandbox/faults", axum::routing::post(set_fault).delete(clear_fault))
            .route("/_sandbox/writes", get(list_writes))
            .route("/_sandbox/requests", get(list_requests))
            .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
            .merge(impersonate::routes())
            .merge(mailbox::routes())
            .with_state(self.clone())
    }

    /// Take the fault for one request to `path`, counting it down.
    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut g = self.inner.lock().unwrap();
        let (fault, count, suffix) = g.fault.clone()?;
        if suffix.as_ref().is_some_and(|s| !path.ends_with(s.as_str())) {
            return None;
        }
        match count {
            Some(0) => {
                g.fault = None;
                None
            }
            Some(n) => {
                g.fault = if n <= 1 { None } else { Some((fault.clone(), Some(n - 1), suffix)) };
                Some(fault)
            }
            None => Some(fault),
        }
    }

    /// The answer a pending fault gives this request (logged), if it is one
    /// that answers; a slow fault only waits.
    async fn fault_answer(&self, method: &str, path: &str, headers: &HeaderMap) -> Option<Response> {
        match self.take_fault(path)? {
            Fault::Status { status } => {
                self.log(method, path.to_owned(), headers, status);
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                Some(err(code, "sandbox fault"))
            }
            Fault::RetryAfter { seconds } => {
                self.log(method, path.to_owned(), headers, 429);
                let mut r = err(StatusCode::TOO_MANY_REQUESTS, "sandbox rate limit");
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                Some(r)
            }
            Fault::Slow { delay_ms } => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                None
            }
            Fault::Body { status, body } => {
                self.log(method, path.to_owned(), headers, status);
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                Some((code, [(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
        }
    }

    fn log(&self, method: &str, path: String, headers: &HeaderMap, status: u16) {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.inner.lock().unwrap().requests.push(RequestLog {
            method: method.into(),
            path,
            idempotency_key: h("idempotency-key"),
            trace_id: h("x-trace-id"),
            status,
            at: crate::now_rfc3339(),
            authorization: h("authorization"),
            on_behalf_of: h("on-behalf-of"),
        });
    }
}

fn err(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"error": msg}))).into_response()
}

async fn put_check(
    State(s): State<Sandbox>,
    Path((app, check)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/applications/{app}/verification-checks/{check}");
    if let Some(answer) = s.fault_answer("PUT", &path, &headers).await {
        return answer;
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        s.log("PUT", path, &headers, 400);
        return err(StatusCode::BAD_REQUEST, "Idempotency-Key header is required");
    };
    let parsed: PutBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            s.log("PUT", path, &headers, 422);
            return err(StatusCode::UNPROCESSABLE_ENTITY, &format!("bad body: {e}"));
        }
    };
    let trace_id = headers.get("x-trace-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (status, answer) = {
        let mut g = s.inner.lock().unwrap();
        if let Some((status, answer)) = g.answers.get(&key).cloned() {
            (status, answer)
        } else {
            let entry = g
                .checks
                .entry((app.clone(), check.clone()))
                .or_insert_with(|| (parsed.candidate_id.clone(), BTreeMap::new()));
            entry.0 = parsed.candidate_id.clone();
            entry.1.extend(parsed.fields.clone());
            let answer =
                json!({"status": "written", "application_id": app, "verification_check_id": check, "fields": entry.1});
            g.applied.push(AppliedWrite {
                application_id: app.clone(),
                verification_check_id: check.clone(),
                candidate_id: parsed.candidate_id,
                idempotency_key: key.clone(),
                trace_id,
                fields: parsed.fields,
                at: crate::now_rfc3339(),
            });
            g.answers.insert(key, (200, answer.clone()));
            (200, answer)
        }
    };
    s.log("PUT", path, &headers, status);
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), axum::Json(answer)).into_response()
}

async fn get_check(State(s): State<Sandbox>, Path((app, check)): Path<(String, String)>) -> Response {
    let g = s.inner.lock().unwrap();
    match g.checks.get(&(app, check)) {
        Some((cand, fields)) => axum::Json(json!({"candidate_id": cand, "fields": fields})).into_response(),
        None => err(StatusCode::NOT_FOUND, "no such verification check"),
    }
}

async fn set_fault(State(s): State<Sandbox>, axum::Json(req): axum::Json<FaultRequest>) -> Response {
    s.inner.lock().unwrap().fault = Some((req.fault.clone(), req.count, req.path_suffix.clone()));
    axum::Json(json!({"fault": req})).into_response()
}

async fn clear_fault(State(s): State<Sandbox>) -> Response {
    s.inner.lock().unwrap().fault = None;
    StatusCode::NO_CONTENT.into_response()
}

async fn list_writes(State(s): State<Sandbox>) -> Response {
    axum::Json(s.inner.lock().unwrap().applied.clone()).into_response()
}

async fn list_requests(State(s): State<Sandbox>) -> Response {
    axum::Json(s.inner.lock().unwrap().requests.clone()).into_response()
}

/// Serve the sandbox on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, None, shutdown).await
}

/// Serve the sandbox, its impersonated ATSs knowing only the custom fields
/// `fields` names (none: any field is accepted, and none is listed).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    fields: Option<std::collections::BTreeSet<String>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sandbox = Sandbox::default();
    sandbox.inner.lock().unwrap().ats.catalogue = fields;
    axum::serve(listener, sandbox.router()).with_graceful_shutdown(shutdown).await
}

/// Serve the sandbox on `http` and, if given, its mail sink on `smtp`, one
/// sandbox behind both (so a test reads over HTTP the mail it had sent),
/// until `shutdown` resolves; `fields` as for [`serve_with`].
pub async fn serve_with_mail(
    http: tokio::net::TcpListener,
    smtp: Option<tokio::net::TcpListener>,
    fields: Option<std::collections::BTreeSet<String>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use futures::FutureExt;
    let sandbox = Sandbox::default();
    sandbox.inner.lock().unwrap().ats.catalogue = fields;
    let stop = shutdown.boxed().shared();
    let web = async { axum::serve(http, sandbox.router()).with_graceful_shutdown(stop.clone()).await };
    let mail = async {
        match smtp {
            Some(l) => mailbox::serve_smtp(l, sandbox.clone(), stop.clone()).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(web, mail).map(|_| ())
}
