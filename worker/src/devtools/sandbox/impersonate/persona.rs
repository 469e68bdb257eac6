//! Persona's inquiry start, as its public API reference documents it
//! (docs.withpersona.com, "Create an Inquiry", "List all Inquiries",
//! "Generate a one-time link"): JSON:API under `/api/v1`, `Authorization:
//! Bearer <key>`. `POST /api/v1/inquiries` takes `{"data": {"attributes":
//! {"inquiry-template-id": "itmpl_…", "reference-id": …}}}` and answers 201
//! with the inquiry (`inq_…`, status `created`); `GET /api/v1/inquiries`
//! filters with `filter[reference-id]` etc. (how the bridge looks up before
//! it creates); `POST …/{id}/generate-one-time-link` answers the inquiry
//! with `meta.one-time-link` and `meta.one-time-link-short`. Errors are
//! `{"errors": [{"title", "details"}]}` (Persona's "Error Handling" page).
//!
//! Headers: `Persona-Version` is optional (a date when given);
//! `Key-Inflection` (`kebab`, the default, `snake` or `camel`) sets the
//! casing of the answer's keys, and the request's attributes are read in
//! that casing (kebab always).

use super::{API_KEY, ProviderSession, base_url};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/api/v1/inquiries", post(create).get(list))
        .route("/api/v1/inquiries/{id}", get(retrieve))
        .route("/api/v1/inquiries/{id}/generate-one-time-link", post(one_time_link))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Inflection {
    Kebab,
    Snake,
    Camel,
}

/// A kebab-case key in `inf`'s casing.
fn key(kebab: &str, inf: Inflection) -> String {
    match inf {
        Inflection::Kebab => kebab.to_owned(),
        Inflection::Snake => kebab.replace('-', "_"),
        Inflection::Camel => {
            let mut out = String::new();
            for (i, w) in kebab.split('-').enumerate() {
                let mut c = w.chars();
                match (i, c.next()) {
                    (0, Some(f)) => out.push(f),
                    (_, Some(f)) => out.extend(f.to_uppercase()),
                    _ => {}
                }
                out.push_str(c.as_str());
            }
            out
        }
    }
}

/// Every object key of an answer (written kebab-case) in `inf`'s casing.
fn inflect(v: Value, inf: Inflection) -> Value {
    match v {
        Value::Object(m) if inf != Inflection::Kebab => {
            Value::Object(m.into_iter().map(|(k, v)| (key(&k, inf), inflect(v, inf))).collect::<Map<_, _>>())
        }
        Value::Array(a) if inf != Inflection::Kebab => Value::Array(a.into_iter().map(|v| inflect(v, inf)).collect()),
        v => v,
    }
}

fn error(title: &str, details: &str) -> Value {
    json!({"errors": [{"title": title, "details": details}]})
}

/// Persona's gate: a fault, the bearer key, then the documented headers.
async fn admit(s: &Sandbox, method: &str, path: &str, headers: &HeaderMap) -> Result<Inflection, Response> {
    if let Some(a) = s.fault_answer(method, path, headers).await {
        return Err(a);
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer.map(str::trim) != Some(API_KEY) {
        let e = error("Unauthorized", "Must be authenticated to access this endpoint");
        return Err(s.answer(method, path, headers, StatusCode::UNAUTHORIZED, e));
    }
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap_or("?"));
    if let Some(v) = h("persona-version") {
        let date =
            v.len() == 10 && v.split('-').map(str::len).eq([4, 2, 2]) && v.split('-').all(|p| p.parse::<u16>().is_ok());
        if !date {
            let e = error("Bad request", &format!("Persona-Version is not a version: {v}"));
            return Err(s.answer(method, path, headers, StatusCode::BAD_REQUEST, e));
        }
    }
    match h("key-inflection").map(str::to_ascii_lowercase).as_deref() {
        None | Some("kebab") => Ok(Inflection::Kebab),
        Some("snake") => Ok(Inflection::Snake),
        Some("camel") => Ok(Inflection::Camel),
        Some(other) => {
            let e = error("Bad request", &format!("Key-Inflection must be kebab, snake or camel, not {other}"));
            Err(s.answer(method, path, headers, StatusCode::BAD_REQUEST, e))
        }
    }
}

/// An inquiry as the API serializes it (kebab-case).
fn inquiry(p: &ProviderSession) -> Value {
    let reference = if p.reference.is_empty() { Value::Null } else { json!(p.reference) };
    json!({
        "type": "inquiry",
        "id": p.id,
        "attributes": {
            "status": "created", "reference-id": reference, "note": null, "tags": p.tags, "creator": "API",
            "created-at": p.created_at, "updated-at": p.created_at, "started-at": null, "completed-at": null,
            "failed-at": null, "expired-at": null, "redacted-at": null, "fields": {},
        },
        "relationships": {
            "account": {"data": {"type": "account", "id": p.secret}},
            "inquiry-template": {"data": {"type": "inquiry-template", "id": p.template}},
            "sessions": {"data": []},
        },
    })
}

/// A Persona-style id: a prefix and 24 random characters.
fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..24])
}

/// The template and reference of a create body, or the status and error.
fn attributes(body: &[u8], inf: Inflection) -> Result<(String, Option<String>), (StatusCode, Value)> {
    let missing =
        || (StatusCode::BAD_REQUEST, error("Parameter missing", "param is missing or the value is empty: data"));
    let v: Value =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, error("Bad request", &e.to_string())))?;
    let attrs = v.get("data").and_then(|d| d.get("attributes")).and_then(Value::as_object).ok_or_else(missing)?;
    let get = |k: &str| attrs.get(&key(k, inf)).or_else(|| attrs.get(k));
    let template_key = key("inquiry-template-id", inf);
    let template = match get("inquiry-template-id") {
        Some(Value::String(t)) if t.starts_with("itmpl_") && t.len() > "itmpl_".len() => t.clone(),
        other => {
            let details = match other {
                None | Some(Value::Null) => format!("{template_key} is required"),
                Some(_) => format!("{template_key} must name an inquiry template (itmpl_…)"),
            };
            let mut e = error("Record invalid", &details);
            e["errors"][0]["source"] = json!({"pointer": format!("/data/attributes/{template_key}")});
            return Err((StatusCode::UNPROCESSABLE_ENTITY, e));
        }
    };
    let reference = match get("reference-id") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => {
            let mut e = error("Record invalid", "reference-id must be a string");
            e["errors"][0]["source"] = json!({"pointer": format!("/data/attributes/{}", key("reference-id", inf))});
            return Err((StatusCode::UNPROCESSABLE_ENTITY, e));
        }
    };
    Ok((template, reference))
}

async fn create(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/api/v1/inquiries";
    let inf = match admit(&s, "POST", path, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json_body {
        let e = error("Bad request", "Content-Type must be application/json");
        return s.answer("POST", path, &headers, StatusCode::BAD_REQUEST, e);
    }
    let (template, reference) = match attributes(&body, inf) {
        Ok(a) => a,
        Err((status, e)) => return s.answer("POST", path, &headers, status, inflect(e, inf)),
    };
    // Persona's `tags` on creation: strings, kept as given (bounded).
    let tags: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/data/attributes/tags").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(|t| t.chars().take(255).collect()))
        .take(32)
        .collect();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Created only now, past any fault's wait (see Veriff's).
    let id = new_id("inq");
    let session = {
        let mut g = s.inner.lock().unwrap();
        // A repeated Idempotency-Key answers the inquiry it created.
        if let Some(k) = &key
            && let Some(first) = g.providers.iter().find(|p| p.idempotency_key.as_ref() == Some(k)).cloned()
        {
            drop(g);
            return s.answer(
                "POST",
                path,
                &headers,
                StatusCode::CREATED,
                inflect(json!({"data": inquiry(&first)}), inf),
            );
        }
        // Inquiries with one reference share an account, as Persona's do.
        let account = reference
            .as_ref()
            .and_then(|r| g.providers.iter().find(|p| p.provider == "persona" && &p.reference == r))
            .map(|p| p.secret.clone())
            .unwrap_or_else(|| new_id("act"));
        let session = ProviderSession {
            provider: "persona".into(),
            id: id.clone(),
            reference: reference.unwrap_or_default(),
            template: Some(template),
            url: format!("{}/_sandbox/verify/persona/{id}", base_url(&headers)),
            links_generated: 0,
            created_at: crate::now_rfc3339(),
            tags,
            secret: account,
            idempotency_key: key,
        };
        g.providers.push(session.clone());
        session
    };
    s.answer("POST", path, &headers, StatusCode::CREATED, inflect(json!({"data": inquiry(&session)}), inf))
}

/// Newest first, filtered by `filter[reference-id]`, `filter[inquiry-template-id]`
/// and `filter[status]`, paged by `page[size]` (1–100, default 10) and `page[after]`.
async fn list(State(s): State<Sandbox>, headers: HeaderMap, Query(q): Query<Vec<(String, String)>>) -> Response {
    let path = "/api/v1/inquiries";
    let inf = match admit(&s, "GET", path, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let size = match get("page[size]").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            let e = error("Bad request", "page[size] must be between 1 and 100");
            return s.answer("GET", path, &headers, StatusCode::BAD_REQUEST, inflect(e, inf));
        }
    };
    let filter = |name: &str| get(&format!("filter[{name}]")).or_else(|| get(&format!("filter[{}]", key(name, inf))));
    let (reference, template, status) = (filter("reference-id"), filter("inquiry-template-id"), filter("status"));
    let mut all: Vec<ProviderSession> = s
        .inner
        .lock()
        .unwrap()
        .providers
        .iter()
        .filter(|p| p.provider == "persona")
        .filter(|p| reference.is_none_or(|r| p.reference == r))
        .filter(|p| template.is_none_or(|t| p.template.as_deref() == Some(t)))
        .filter(|_| status.is_none_or(|st| st.split(',').any(|x| x == "created")))
        .cloned()
        .collect();
    all.reverse();
    if let Some(after) = get("page[after]") {
        let skip = all.iter().position(|p| p.id == after).map_or(all.len(), |i| i + 1);
        all.drain(..skip);
    }
    let more = all.len() > size;
    all.truncate(size);
    let next = match (more, all.last()) {
        (true, Some(last)) => json!(format!("/api/v1/inquiries?page%5Bafter%5D={}", last.id)),
        _ => Value::Null,
    };
    let data: Vec<Value> = all.iter().map(inquiry).collect();
    let answer = json!({"data": data, "links": {"prev": null, "next": next}});
    s.answer("GET", path, &headers, StatusCode::OK, inflect(answer, inf))
}

fn not_found(s: &Sandbox, method: &str, path: &str, headers: &HeaderMap, inf: Inflection) -> Response {
    let e = error("Record not found", "Could not find inquiry");
    s.answer(method, path, headers, StatusCode::NOT_FOUND, inflect(e, inf))
}

async fn retrieve(State(s): State<Sandbox>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/api/v1/inquiries/{id}");
    let inf = match admit(&s, "GET", &path, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match s.provider_session("persona", &id) {
        Some(p) => s.answer("GET", &path, &headers, StatusCode::OK, inflect(json!({"data": inquiry(&p)}), inf)),
        None => not_found(&s, "GET", &path, &headers, inf),
    }
}

/// A new link each time (a new inquiry session in Persona), counted.
async fn one_time_link(State(s): State<Sandbox>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/api/v1/inquiries/{id}/generate-one-time-link");
    let inf = match admit(&s, "POST", &path, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    let base = base_url(&headers);
    let link = format!("{base}/_sandbox/verify/persona/{id}?code={code}");
    let short = format!("{base}/_sandbox/verify/persona/{id}?c={}", &code[..8]);
    let updated = {
        let mut g = s.inner.lock().unwrap();
        g.providers.iter_mut().find(|p| p.provider == "persona" && p.id == id).map(|p| {
            p.links_generated += 1;
            p.url = link.clone();
            p.clone()
        })
    };
    let Some(p) = updated else { return not_found(&s, "POST", &path, &headers, inf) };
    let answer = json!({"data": inquiry(&p), "meta": {"one-time-link": link, "one-time-link-short": short}});
    s.answer("POST", &path, &headers, StatusCode::OK, inflect(answer, inf))
}
