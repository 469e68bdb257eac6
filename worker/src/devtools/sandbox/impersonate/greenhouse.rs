//! Greenhouse Harvest, as its documents describe it (the connector's module
//! comment names them). Shared by both versions here: `POST /token` (HTTP
//! Basic client id and secret, form `grant_type=client_credentials` and
//! `sub`; the answer's expiry in `expires_at`, RFC 3339; one active token
//! per credential: a new token revokes the last), every API answer's
//! `X-RateLimit-Limit`/`-Remaining` and, past the limit, a 429 with
//! `Retry-After` and `X-RateLimit-Reset` (v3: a 30-s window). v3's routes,
//! strictly as its OpenAPI document says, are in `greenhouse_v3`; v1
//! (legacy) is here: Basic (API key, empty password), `On-Behalf-Of` on
//! writes, `PATCH`/`GET /v1/applications/{id}` with only `custom_fields:
//! [{name_key|id, value|delete_value:"true"}]`, `GET
//! /v1/custom_fields/application`.

use super::{CLIENT_ID, CLIENT_SECRET, Rate, USER_ID, api_key_ok, basic, greenhouse_v3};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/token", post(token))
        .route("/v1/applications/{id}", axum::routing::patch(v1_application).get(v1_application))
        .route("/v1/custom_fields/application", get(v1_fields))
        .merge(greenhouse_v3::routes())
        .merge(super::greenhouse_interviews::routes())
}

async fn token(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/token";
    if let Some(a) = s.fault_answer("POST", path, &headers).await {
        return a;
    }
    let form: BTreeMap<String, String> =
        reqwest::Url::parse(&format!("http://form/?{}", String::from_utf8_lossy(&body)))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
    // RFC 6749 §2.3.1: the id and secret are form-encoded inside Basic.
    let decode = |v: &str| {
        reqwest::Url::parse(&format!("http://x/?v={v}"))
            .ok()
            .and_then(|u| u.query_pairs().next().map(|(_, v)| v.into_owned()))
            .unwrap_or_default()
    };
    let creds = basic(&headers).map(|(u, p)| (decode(&u), decode(&p)));
    if creds != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return s.answer("POST", path, &headers, StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return s.answer("POST", path, &headers, StatusCode::BAD_REQUEST, json!({"error": "unsupported_grant_type"}));
    }
    if form.get("sub").map(String::as_str) != Some(USER_ID) {
        return s.answer(
            "POST",
            path,
            &headers,
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "sub must be a user id of this account"}),
        );
    }
    let (token, lifetime) = {
        let mut g = s.inner.lock().unwrap();
        g.ats.issued += 1;
        let token = format!("gh-sandbox-token-{}", g.ats.issued);
        let lifetime = g.ats.token_lifetime_s.unwrap_or(3600);
        // One active token per credential: this one revokes the last.
        g.ats.tokens.clear();
        g.ats.tokens.insert(token.clone(), Instant::now() + std::time::Duration::from_secs(lifetime));
        (token, lifetime)
    };
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(lifetime as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    s.answer(
        "POST",
        path,
        &headers,
        StatusCode::OK,
        json!({"access_token": token, "token_type": "Bearer", "expires_at": expires_at}),
    )
}

/// Take a slot of the window: `Ok(remaining)` or `Err(seconds to wait)`;
/// with the limit and the window's reset (Unix seconds).
fn take_slot(rate: &mut Rate) -> (Result<u32, u64>, u32, u64) {
    let now = Instant::now();
    let start = match rate.start {
        Some(s) if now.duration_since(s) < rate.window => s,
        _ => {
            rate.used = 0;
            rate.start = Some(now);
            now
        }
    };
    let left = (start + rate.window).saturating_duration_since(now);
    let reset = chrono::Utc::now().timestamp() as u64 + left.as_secs_f64().ceil() as u64;
    if rate.used < rate.limit {
        rate.used += 1;
        (Ok(rate.limit - rate.used), rate.limit, reset)
    } else {
        (Err(left.as_secs_f64().ceil().max(1.0) as u64), rate.limit, reset)
    }
}

pub(super) fn with_rate(mut r: Response, limit: u32, remaining: u32) -> Response {
    r.headers_mut().insert("x-ratelimit-limit", HeaderValue::from(limit));
    r.headers_mut().insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    r
}

/// The answer that ends a request early (boxed: a response is large).
pub(super) type Early = Box<Response>;

/// Greenhouse's checks common to every API call: the version's rate window,
/// then its credentials. `Err` is the answer.
pub(super) fn admit(
    s: &Sandbox,
    version: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(u32, u32), Early> {
    let (slot, limit, reset) = {
        let mut g = s.inner.lock().unwrap();
        take_slot(if version == "v3" { &mut g.ats.rate } else { &mut g.ats.rate_v1.0 })
    };
    let m = method.as_str();
    let remaining = match slot {
        Ok(r) => r,
        Err(wait) => {
            let mut r = s.refuse(m, path, headers, StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            r.headers_mut().insert("retry-after", HeaderValue::from(wait));
            r.headers_mut().insert("x-ratelimit-reset", HeaderValue::from(reset));
            return Err(Box::new(with_rate(r, limit, 0)));
        }
    };
    let refuse = |status, msg| Err(Box::new(with_rate(s.refuse(m, path, headers, status, msg), limit, remaining)));
    if version == "v3" {
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let valid = token
            .is_some_and(|t| s.inner.lock().unwrap().ats.tokens.get(t).is_some_and(|expiry| Instant::now() < *expiry));
        if !valid {
            return refuse(StatusCode::UNAUTHORIZED, "invalid or expired access token");
        }
    } else {
        if !api_key_ok(headers) {
            return refuse(StatusCode::UNAUTHORIZED, "Basic auth with the API key as user name and no password");
        }
        let writes = *method != Method::GET;
        if writes && headers.get("on-behalf-of").and_then(|v| v.to_str().ok()) != Some(USER_ID) {
            return refuse(StatusCode::FORBIDDEN, "On-Behalf-Of must name a user of this account");
        }
    }
    Ok((limit, remaining))
}

/// The fields of a v1 PATCH body, or why it is not v1's shape.
fn patch_fields(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("body must be an object")?;
    if obj.keys().any(|k| k != "custom_fields") {
        return Err("only custom_fields may be patched by this integration".into());
    }
    let entries = obj.get("custom_fields").and_then(Value::as_array).ok_or("custom_fields must be an array")?;
    let mut fields = BTreeMap::new();
    for e in entries {
        let e = e.as_object().ok_or("each custom field must be an object")?;
        let key = match (e.get("name_key").and_then(Value::as_str), e.get("id").and_then(Value::as_u64)) {
            (Some(k), None) => k.to_owned(),
            (None, Some(id)) => id.to_string(),
            _ => return Err("each custom field needs name_key or id (one of them)".into()),
        };
        let value = match (e.get("value"), e.get("delete_value")) {
            (Some(Value::String(v)), None) => v.clone(),
            (None, Some(Value::String(d))) if d == "true" => String::new(),
            _ => return Err(format!("{key}: value (a string here) or delete_value: \"true\"")),
        };
        if e.keys().any(|k| !["name_key", "id", "value", "delete_value"].contains(&k.as_str())) {
            return Err(format!("{key}: unknown attribute"));
        }
        fields.insert(key, value);
    }
    Ok(fields)
}

async fn v1_application(
    State(s): State<Sandbox>,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let version = "v1";
    let path = format!("/{version}/applications/{id}");
    let m = method.as_str();
    if let Some(a) = s.fault_answer(m, &path, &headers).await {
        return a;
    }
    let (limit, remaining) = match admit(&s, version, &method, &path, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let answer = |status, body| with_rate(s.answer(m, &path, &headers, status, body), limit, remaining);
    let refuse = |status, msg: &str| with_rate(s.refuse(m, &path, &headers, status, msg), limit, remaining);
    if id.parse::<u64>().is_err() {
        return refuse(StatusCode::NOT_FOUND, "no such application");
    }
    if method == Method::GET {
        return match s.record("greenhouse", &id) {
            Some(f) => answer(StatusCode::OK, json!({"id": id.parse::<u64>().unwrap_or(0), "custom_fields": f})),
            None => refuse(StatusCode::NOT_FOUND, "no such application"),
        };
    }
    let fields = match patch_fields(&body) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let unknown = s.unknown_fields(fields.keys());
    if !unknown.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &format!("unknown custom fields: {}", unknown.join(", ")));
    }
    s.keep("greenhouse", &id, fields);
    let current = s.record("greenhouse", &id).unwrap_or_default();
    answer(StatusCode::OK, json!({"id": id.parse::<u64>().unwrap_or(0), "custom_fields": current}))
}

async fn v1_fields(State(s): State<Sandbox>, headers: HeaderMap) -> Response {
    let path = "/v1/custom_fields/application";
    let (limit, remaining) = match admit(&s, "v1", &Method::GET, path, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let known = s.inner.lock().unwrap().ats.catalogue.clone().unwrap_or_default();
    let list: Vec<Value> = known
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"id": 4000 + i, "name": k, "name_key": k, "field_type": "application", "value_type": "short_text"}))
        .collect();
    with_rate(s.answer("GET", path, &headers, StatusCode::OK, json!(list)), limit, remaining)
}
