//! Ashby, as the connector's sources document it: RPC-style `POST`s with
//! HTTP Basic (API key, empty password); 401 without a valid key; answers
//! `{"success": true, "results": …}` or, for a request it refuses, HTTP 200
//! with `{"success": false, "errors": […]}`.

use super::api_key_ok;
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/customField.setValues", post(set_values))
        .route("/application.info", post(application_info))
        .route("/customField.list", post(field_list))
        .route("/apiKey.info", post(key_info))
}

/// Ashby's gate: a fault, else the key, else the JSON body.
async fn admit(s: &Sandbox, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    if let Some(a) = s.fault_answer("POST", path, headers).await {
        return Err(a);
    }
    if !api_key_ok(headers) {
        return Err(s.answer(
            "POST",
            path,
            headers,
            StatusCode::UNAUTHORIZED,
            json!({"success": false, "errors": ["invalid_api_key"]}),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        s.answer("POST", path, headers, StatusCode::BAD_REQUEST, json!({"success": false, "errors": [e.to_string()]}))
    })
}

fn failed(s: &Sandbox, path: &str, headers: &HeaderMap, error: String) -> Response {
    s.answer("POST", path, headers, StatusCode::OK, json!({"success": false, "errors": [error]}))
}

async fn set_values(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/customField.setValues";
    let v = match admit(&s, path, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let object_id = v.get("objectId").and_then(Value::as_str).unwrap_or_default().to_owned();
    if v.get("objectType").and_then(Value::as_str) != Some("Application") || object_id.is_empty() {
        return failed(&s, path, &headers, "invalid_input: objectType Application and objectId are required".into());
    }
    let Some(values) = v.get("values").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return failed(&s, path, &headers, "invalid_input: values must hold at least one field".into());
    };
    let mut fields = BTreeMap::new();
    for e in values {
        match (e.get("fieldId").and_then(Value::as_str), e.get("fieldValue")) {
            (Some(id), Some(Value::String(val))) => fields.insert(id.to_owned(), val.clone()),
            (Some(id), Some(Value::Null)) => fields.insert(id.to_owned(), String::new()),
            _ => return failed(&s, path, &headers, "invalid_input: each value needs fieldId and fieldValue".into()),
        };
    }
    let unknown = s.unknown_fields(fields.keys());
    if !unknown.is_empty() {
        return failed(&s, path, &headers, format!("custom_field_not_found: {}", unknown.join(", ")));
    }
    s.keep("ashby", &object_id, fields);
    s.answer("POST", path, &headers, StatusCode::OK, json!({"success": true, "results": {"id": object_id}}))
}

async fn application_info(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/application.info";
    let v = match admit(&s, path, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = v.get("applicationId").and_then(Value::as_str).unwrap_or_default();
    let Some(fields) = s.record("ashby", id) else {
        return failed(&s, path, &headers, "application_not_found".into());
    };
    let custom: Vec<Value> = fields.iter().map(|(k, val)| json!({"id": k, "title": k, "value": val})).collect();
    s.answer(
        "POST",
        path,
        &headers,
        StatusCode::OK,
        json!({"success": true, "results": {"id": id, "customFields": custom}}),
    )
}

async fn field_list(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/customField.list";
    if let Err(r) = admit(&s, path, &headers, &body).await {
        return r;
    }
    let known = s.inner.lock().unwrap().ats.catalogue.clone().unwrap_or_default();
    let list: Vec<Value> = known
        .iter()
        .map(|k| json!({"id": k, "title": k, "objectType": "Application", "fieldType": "String"}))
        .collect();
    s.answer(
        "POST",
        path,
        &headers,
        StatusCode::OK,
        json!({"success": true, "results": list, "moreDataAvailable": false}),
    )
}

async fn key_info(State(s): State<Sandbox>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let path = "/apiKey.info";
    if let Err(r) = admit(&s, path, &headers, &body).await {
        return r;
    }
    s.answer(
        "POST",
        path,
        &headers,
        StatusCode::OK,
        json!({"success": true, "results": {"title": "vbridge sandbox key"}}),
    )
}
