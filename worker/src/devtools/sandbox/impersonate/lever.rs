//! Lever, as the connector's sources document it: HTTP Basic (API key, empty
//! password) under `/v1`; opportunities' tags (`addTags`/`removeTags` with
//! `{"tags": [...]}`) and notes (`{"value": text}`), writes with
//! `perform_as` naming a user; `GET /users/{id}`. Every opportunity id
//! exists in the sandbox (it starts with no tags and no notes).

use super::{USER_ID, api_key_ok};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v1/opportunities/{id}", get(opportunity))
        .route("/v1/opportunities/{id}/addTags", post(add_tags))
        .route("/v1/opportunities/{id}/removeTags", post(remove_tags))
        .route("/v1/opportunities/{id}/notes", get(notes).post(add_note))
        .route("/v1/users/{id}", get(user))
}

/// Lever's gate: a fault, the key, and `perform_as` on writes.
async fn admit(
    s: &Sandbox,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Response> {
    let m = method.as_str();
    if let Some(a) = s.fault_answer(m, path, headers).await {
        return Err(a);
    }
    if !api_key_ok(headers) {
        return Err(s.refuse(m, path, headers, StatusCode::UNAUTHORIZED, "invalid API key"));
    }
    if *method == Method::POST && query.get("perform_as").map(String::as_str) != Some(USER_ID) {
        return Err(s.refuse(m, path, headers, StatusCode::BAD_REQUEST, "perform_as must name a Lever user"));
    }
    Ok(())
}

fn opportunity_json(s: &Sandbox, id: &str) -> Value {
    let tags = s.inner.lock().unwrap().ats.tags.get(id).cloned().unwrap_or_default();
    json!({"id": id, "tags": tags})
}

async fn opportunity(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/opportunities/{id}");
    if let Err(r) = admit(&s, &Method::GET, &path, &headers, &q).await {
        return r;
    }
    s.answer("GET", &path, &headers, StatusCode::OK, json!({"data": opportunity_json(&s, &id)}))
}

/// The tags of a `{"tags": [...]}` body, or why not.
fn tags_of(body: &[u8]) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let tags = v.get("tags").and_then(Value::as_array).ok_or("tags must be an array of strings")?;
    tags.iter().map(|t| t.as_str().map(str::to_owned).ok_or_else(|| "tags must be strings".to_owned())).collect()
}

async fn change_tags(
    s: Sandbox,
    id: String,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: &[u8],
    add: bool,
) -> Response {
    let path = format!("/v1/opportunities/{id}/{}", if add { "addTags" } else { "removeTags" });
    if let Err(r) = admit(&s, &Method::POST, &path, &headers, &q).await {
        return r;
    }
    let tags = match tags_of(body) {
        Ok(t) => t,
        Err(e) => return s.refuse("POST", &path, &headers, StatusCode::BAD_REQUEST, &e),
    };
    {
        let mut g = s.inner.lock().unwrap();
        let current = g.ats.tags.entry(id.clone()).or_default();
        for t in &tags {
            if add && !current.contains(t) {
                current.push(t.clone());
            }
            if !add {
                current.retain(|c| c != t);
            }
        }
    }
    if add {
        let fields: BTreeMap<String, String> =
            tags.iter().filter_map(|t| t.split_once(':')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        s.keep("lever", &id, fields);
    }
    s.answer("POST", &path, &headers, StatusCode::OK, json!({"data": opportunity_json(&s, &id)}))
}

async fn add_tags(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    change_tags(s, id, q, headers, &body, true).await
}

async fn remove_tags(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    change_tags(s, id, q, headers, &body, false).await
}

async fn notes(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/opportunities/{id}/notes");
    if let Err(r) = admit(&s, &Method::GET, &path, &headers, &q).await {
        return r;
    }
    let list: Vec<Value> = s
        .inner
        .lock()
        .unwrap()
        .ats
        .notes
        .get(&id)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, (at, text))| {
            json!({"id": format!("note-{i}"), "createdAt": at, "fields": [{"type": "note", "text": "Note", "value": text}]})
        })
        .collect();
    s.answer("GET", &path, &headers, StatusCode::OK, json!({"data": list, "hasNext": false}))
}

async fn add_note(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/v1/opportunities/{id}/notes");
    if let Err(r) = admit(&s, &Method::POST, &path, &headers, &q).await {
        return r;
    }
    let text = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("value")?.as_str().map(str::to_owned))
    {
        Some(t) => t,
        None => {
            return s.refuse("POST", &path, &headers, StatusCode::BAD_REQUEST, "value (the note's text) is required");
        }
    };
    let fields: BTreeMap<String, String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k != "idempotency-key")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    {
        let mut g = s.inner.lock().unwrap();
        let n = g.ats.notes.entry(id.clone()).or_default();
        n.push((chrono::Utc::now().timestamp_millis() + n.len() as i64, text));
    }
    s.keep("lever", &id, fields);
    s.answer("POST", &path, &headers, StatusCode::CREATED, json!({"data": {"noteId": "note"}}))
}

async fn user(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/users/{id}");
    if let Err(r) = admit(&s, &Method::GET, &path, &headers, &q).await {
        return r;
    }
    if id != USER_ID {
        return s.refuse("GET", &path, &headers, StatusCode::NOT_FOUND, "no such user");
    }
    s.answer("GET", &path, &headers, StatusCode::OK, json!({"data": {"id": id, "name": "Sandbox Recruiter"}}))
}
