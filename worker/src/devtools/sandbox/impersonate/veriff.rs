//! Veriff's session start, as its public API reference documents it
//! (devdocs.veriff.com, "Create session"): `POST /v1/sessions` with the API
//! key in `X-AUTH-CLIENT` and `Content-Type: application/json`, a body
//! `{"verification": {...}}` (an empty object is the documented minimum;
//! `vendorData` a string of at most 1000 symbols; `endUserId` a UUID). It
//! answers 201 `{"status": "success", "verification": {id, url, vendorData,
//! host, status: "created", sessionToken}}`, and refuses with Veriff's
//! `{"status": "fail", "code", "message"}` and its documented codes (1102
//! missing parameters, 1104 invalid ones, 1500/1501 vendorData, 1801/1803
//! the key). The session URL opens a sandbox page (`/veriff/v/{token}`).

use super::{API_KEY, ProviderSession, base_url, session_page};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v1/sessions", post(create_session))
        // The documented curl samples post to `/v1/sessions/`.
        .route("/v1/sessions/", post(create_session))
        .route("/veriff/v/{token}", get(session_link))
}

/// Veriff's error body.
fn fail(s: &Sandbox, path: &str, headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
    s.answer("POST", path, headers, status, json!({"status": "fail", "code": code, "message": message}))
}

/// The `verification` object's fields Veriff checks, or its refusal (code, message).
fn check_verification(body: &[u8]) -> Result<Value, (&'static str, &'static str)> {
    const MISSING: (&str, &str) = ("1102", "Mandatory parameters are missing from the request.");
    const INVALID: (&str, &str) = ("1104", "Request includes invalid parameters.");
    let v: Value = serde_json::from_slice(body).map_err(|_| INVALID)?;
    let verification = match v.get("verification") {
        Some(o @ Value::Object(_)) => o.clone(),
        Some(_) => return Err(INVALID),
        None => return Err(MISSING),
    };
    match verification.get("vendorData") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if d.chars().count() <= 1000 => {}
        Some(Value::String(_)) => {
            return Err((
                "1500",
                "vendorData field cannot be more than 1000 symbols. We require only non-semantic data to be submitted (UUID-s etc., that can not be resolved or used outside the customer's domain)",
            ));
        }
        Some(_) => {
            return Err((
                "1501",
                "vendorData must be a string. We require only non-semantic data to be submitted (UUID-s etc., that can not be resolved or used outside the customer's domain)",
            ));
        }
    }
    let end_user_ok = match verification.get("endUserId") {
        None | Some(Value::Null) => true,
        Some(Value::String(u)) => uuid::Uuid::parse_str(u).is_ok(),
        Some(_) => false,
    };
    let callback_ok = match verification.get("callback") {
        None | Some(Value::Null) => true,
        Some(Value::String(u)) => u.starts_with("https://") || u.starts_with("http://"),
        Some(_) => false,
    };
    let person_ok = verification.get("person").is_none_or(|p| p.is_object() || p.is_null());
    if !(end_user_ok && callback_ok && person_ok) {
        return Err(INVALID);
    }
    Ok(verification)
}

async fn create_session(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/v1/sessions";
    if let Some(a) = s.fault_answer("POST", path, &headers).await {
        return a;
    }
    match headers.get("x-auth-client").and_then(|v| v.to_str().ok()) {
        None => {
            let msg = "Mandatory X-AUTH-CLIENT header containing the API key is missing from the request.";
            return fail(&s, path, &headers, StatusCode::UNAUTHORIZED, "1801", msg);
        }
        Some(key) if key != API_KEY => {
            let msg = "Integration with the API key was not found.";
            return fail(&s, path, &headers, StatusCode::UNAUTHORIZED, "1803", msg);
        }
        Some(_) => {}
    }
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json_body {
        return fail(&s, path, &headers, StatusCode::BAD_REQUEST, "1104", "Request includes invalid parameters.");
    }
    let verification = match check_verification(&body) {
        Ok(v) => v,
        Err((code, msg)) => return fail(&s, path, &headers, StatusCode::BAD_REQUEST, code, msg),
    };
    // Created only now, past any fault's wait: a client gone during a slow
    // fault drops this handler, and no session exists.
    let id = uuid::Uuid::new_v4().to_string();
    let token = format!("sbx.{}", uuid::Uuid::new_v4().simple());
    let host = base_url(&headers);
    let url = format!("{host}/veriff/v/{token}");
    let vendor_data = verification.get("vendorData").cloned().unwrap_or(Value::Null);
    s.inner.lock().unwrap().providers.push(ProviderSession {
        provider: "veriff".into(),
        id: id.clone(),
        reference: vendor_data.as_str().unwrap_or_default().to_owned(),
        template: None,
        url: url.clone(),
        links_generated: 0,
        created_at: crate::now_rfc3339(),
        secret: token.clone(),
        tags: vec![],
        idempotency_key: None,
    });
    let answer = json!({"status": "success", "verification": {
        "id": id, "url": url, "vendorData": vendor_data, "host": host, "status": "created", "sessionToken": token,
    }});
    s.answer("POST", path, &headers, StatusCode::CREATED, answer)
}

/// The session URL: the sandbox's page for that session.
async fn session_link(State(s): State<Sandbox>, Path(token): Path<String>) -> Response {
    let found = s.inner.lock().unwrap().providers.iter().find(|p| p.provider == "veriff" && p.secret == token).cloned();
    match found {
        Some(p) => session_page(&p),
        None => crate::devtools::sandbox::err(StatusCode::NOT_FOUND, "no such Veriff session"),
    }
}
