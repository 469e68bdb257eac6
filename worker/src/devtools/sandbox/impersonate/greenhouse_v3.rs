//! Harvest v3's application and custom-field routes, strictly as
//! Greenhouse's OpenAPI 3.1 document says (amp-labs/connectors keeps a
//! verbatim copy: providers/greenhouse/metadata/openapi/harvest-api.json),
//! so that a connector that assumes anything else fails here as it would
//! against Greenhouse:
//! - `PATCH /v3/applications/{id}`: the body's properties are the
//!   document's only (`additionalProperties: false`); each `custom_fields`
//!   entry has exactly one of `name_key` (string) and `custom_field_id`
//!   (integer), besides only `value` (string, boolean, number, an array of
//!   strings or of numbers, a currency `{amount, currency_code}`, or null,
//!   which clears); anything else is a 422;
//! - no `GET /v3/applications/{id}` (404): one application is read with
//!   `GET /v3/applications?ids={id}` (at most 50 ids), an array, each
//!   application's `custom_fields` keyed by `name_key`, each `{name, type,
//!   value}`;
//! - list endpoints page by cursor: `per_page` 1 to 500 (default 100) on the
//!   first request, then the `Link` header's `rel="next"` URL, whose
//!   `cursor` must be the only parameter (the pagination guide);
//! - `GET /v3/custom_fields?field_type=application` lists archived fields
//!   too, with `active: false` (the `custom_field` schema's `active`).
//!
//! Not in the document, the sandbox's choices: an unknown or archived field
//! is a 422; values are kept as text.

use super::greenhouse::{admit, with_rate};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v3/applications", get(list_applications))
        .route("/v3/applications/{id}", patch(update_application).get(no_read_by_id))
        .route("/v3/custom_fields", get(list_fields))
}

/// The largest `per_page`, and the default.
const PER_PAGE_MAX: usize = 500;
const PER_PAGE_DEFAULT: usize = 100;
/// The properties `PATCH /v3/applications/{id}` accepts.
const PATCH_PROPERTIES: [&str; 9] = [
    "source_id",
    "referrer_id",
    "recruiter_id",
    "coordinator_id",
    "prospect_pool_id",
    "prospect_stage_id",
    "rejected_at",
    "created_at",
    "custom_fields",
];

pub(super) fn pairs(query: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://q/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A list request: its filters, and the page asked for.
pub(super) struct ListQuery {
    pub(super) filters: BTreeMap<String, String>,
    per_page: usize,
    offset: usize,
    /// The first request's query (a cursor carries it).
    first: String,
}

pub(super) fn list_query(raw: Option<&str>) -> Result<ListQuery, String> {
    let given = pairs(raw.unwrap_or_default());
    if let Some(cursor) = given.get("cursor") {
        if given.len() > 1 {
            return Err("cursor must be the only query parameter".into());
        }
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("invalid cursor")?;
        let mut parts = text.splitn(3, '|');
        let (offset, per_page, first) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
        let num = |p: Option<&str>| p.and_then(|p| p.parse::<usize>().ok()).ok_or("invalid cursor");
        let (offset, per_page) = (num(offset)?, num(per_page)?);
        let mut filters = pairs(first);
        filters.remove("per_page");
        return Ok(ListQuery { filters, per_page, offset, first: first.to_owned() });
    }
    let per_page = match given.get("per_page") {
        None => PER_PAGE_DEFAULT,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PER_PAGE_MAX).contains(n))
            .ok_or(format!("per_page must be an integer from 1 to {PER_PAGE_MAX}"))?,
    };
    let mut filters = given;
    filters.remove("per_page");
    Ok(ListQuery { filters, per_page, offset: 0, first: raw.unwrap_or_default().to_owned() })
}

/// The page `q` asks for, and the `Link` header to the next one.
pub(super) fn page(items: Vec<Value>, q: &ListQuery, path: &str, headers: &HeaderMap) -> (Vec<Value>, Option<String>) {
    let next = q.offset + q.per_page;
    let link = (next < items.len()).then(|| {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{next}|{}|{}", q.per_page, q.first));
        format!("<http://{host}{path}?cursor={cursor}>; rel=\"next\"")
    });
    (items.into_iter().skip(q.offset).take(q.per_page).collect(), link)
}

/// The custom fields listed: (id, name_key, active), archived ones too.
fn listing(s: &Sandbox) -> Vec<(u64, String, bool)> {
    let g = s.inner.lock().unwrap();
    let Some(active) = &g.ats.catalogue else { return vec![] };
    let mut all: Vec<(&String, bool)> = active.iter().map(|k| (k, true)).collect();
    all.extend(g.ats.archived.iter().filter(|k| !active.contains(*k)).map(|k| (k, false)));
    all.sort();
    all.into_iter().enumerate().map(|(i, (k, a))| (4000 + i as u64, k.clone(), a)).collect()
}

/// An application as v3 answers it: its values, and `null` for each other
/// active field of the account.
fn application(id: u64, fields: &BTreeMap<String, String>, listed: &[(u64, String, bool)]) -> Value {
    let entry = |k: &String, v: Value| (k.clone(), json!({"name": k, "type": "short_text", "value": v}));
    let mut custom: Map<String, Value> =
        listed.iter().filter(|(_, _, active)| *active).map(|(_, k, _)| entry(k, Value::Null)).collect();
    custom.extend(fields.iter().map(|(k, v)| entry(k, json!(v))));
    json!({"id": id, "status": "in_process", "prospect": false, "custom_fields": custom})
}

pub(super) fn answer_page(
    s: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    limits: (u32, u32),
    items: Vec<Value>,
    link: Option<String>,
) -> Response {
    let mut r = with_rate(s.answer("GET", path, headers, StatusCode::OK, json!(items)), limits.0, limits.1);
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert("link", l);
    }
    r
}

async fn list_applications(State(s): State<Sandbox>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let path = match &raw {
        Some(q) => format!("/v3/applications?{q}"),
        None => "/v3/applications".to_owned(),
    };
    if let Some(a) = s.fault_answer("GET", &path, &headers).await {
        return a;
    }
    let limits = match admit(&s, "v3", &Method::GET, &path, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let refuse = |msg: &str| {
        with_rate(s.refuse("GET", &path, &headers, StatusCode::UNPROCESSABLE_ENTITY, msg), limits.0, limits.1)
    };
    let q = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return refuse(&e),
    };
    let ids: Option<Vec<u64>> = match q.filters.get("ids") {
        None => None,
        Some(list) => match list.split(',').map(|i| i.trim().parse::<u64>()).collect::<Result<Vec<_>, _>>() {
            Ok(ids) if ids.len() <= 50 => Some(ids),
            _ => return refuse("ids: a comma-separated list of at most 50 integers"),
        },
    };
    let mut apps: Vec<(u64, BTreeMap<String, String>)> = {
        let g = s.inner.lock().unwrap();
        g.ats
            .records
            .iter()
            .filter(|((kind, _), _)| *kind == "greenhouse")
            .filter_map(|((_, id), f)| Some((id.parse::<u64>().ok()?, f.clone())))
            .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .collect()
    };
    apps.sort_by_key(|(id, _)| *id);
    let listed = listing(&s);
    let items = apps.iter().map(|(id, f)| application(*id, f, &listed)).collect();
    let (items, link) = page(items, &q, "/v3/applications", &headers);
    answer_page(&s, &path, &headers, limits, items, link)
}

async fn no_read_by_id(State(s): State<Sandbox>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/v3/applications/{id}");
    s.refuse("GET", &path, &headers, StatusCode::NOT_FOUND, "no such route: read with GET /v3/applications?ids={id}")
}

/// Whether `v` is one of the values the document's `value` allows.
fn value_ok(v: &Value) -> bool {
    match v {
        Value::Null | Value::String(_) | Value::Bool(_) | Value::Number(_) => true,
        Value::Array(a) => a.iter().all(Value::is_string) || a.iter().all(Value::is_number),
        Value::Object(o) => {
            o.len() == 2
                && o.get("amount").is_some_and(Value::is_number)
                && o.get("currency_code").and_then(Value::as_str).is_some_and(|c| c.chars().count() <= 3)
        }
    }
}

/// The fields a v3 PATCH body sets (key → text; empty clears), or why the
/// body breaks the document's schema, or names a field the account lacks.
fn patch_fields(body: &[u8], fields: &[(u64, String, bool)], any: bool) -> Result<BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("body must be an object")?;
    if let Some(k) = obj.keys().find(|k| !PATCH_PROPERTIES.contains(&k.as_str())) {
        return Err(format!("additional property not allowed: {k}"));
    }
    let Some(entries) = obj.get("custom_fields") else { return Ok(BTreeMap::new()) };
    let entries = entries.as_array().ok_or("custom_fields must be an array")?;
    let mut out = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let e = e.as_object().ok_or(format!("custom_fields[{i}] must be an object"))?;
        if let Some(k) = e.keys().find(|k| !["name_key", "custom_field_id", "value"].contains(&k.as_str())) {
            return Err(format!("custom_fields[{i}]: additional property not allowed: {k}"));
        }
        let name_key = e.get("name_key").map(|k| k.as_str().filter(|k| k.chars().count() <= 255));
        let key = match (name_key, e.get("custom_field_id").map(Value::as_u64)) {
            (Some(Some(k)), None) => k.to_owned(),
            (None, Some(Some(id))) => match fields.iter().find(|(fid, _, _)| *fid == id) {
                Some((_, k, _)) => k.clone(),
                None if any => id.to_string(),
                None => return Err(format!("custom_fields[{i}]: no custom field {id}")),
            },
            _ => {
                return Err(format!(
                    "custom_fields[{i}]: exactly one of name_key (a string) or custom_field_id (an integer)"
                ));
            }
        };
        if !any && !fields.iter().any(|(_, k, active)| *k == key && *active) {
            return Err(format!("unknown custom fields: {key}"));
        }
        let Some(value) = e.get("value") else { continue };
        if !value_ok(value) {
            return Err(format!("custom_fields[{i}]: value is not a string, boolean, number, array, currency or null"));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        out.insert(key, text);
    }
    Ok(out)
}

async fn update_application(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/v3/applications/{id}");
    if let Some(a) = s.fault_answer("PATCH", &path, &headers).await {
        return a;
    }
    let (limit, remaining) = match admit(&s, "v3", &Method::PATCH, &path, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let refuse = |status, msg: &str| with_rate(s.refuse("PATCH", &path, &headers, status, msg), limit, remaining);
    let Ok(n) = id.parse::<u64>() else { return refuse(StatusCode::NOT_FOUND, "no such application") };
    let any = s.inner.lock().unwrap().ats.catalogue.is_none();
    let listed = listing(&s);
    let fields = match patch_fields(&body, &listed, any) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    s.keep("greenhouse", &id, fields);
    let current = s.record("greenhouse", &id).unwrap_or_default();
    with_rate(s.answer("PATCH", &path, &headers, StatusCode::OK, application(n, &current, &listed)), limit, remaining)
}

async fn list_fields(State(s): State<Sandbox>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let path = match &raw {
        Some(q) => format!("/v3/custom_fields?{q}"),
        None => "/v3/custom_fields".to_owned(),
    };
    let limits = match admit(&s, "v3", &Method::GET, &path, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let q = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => {
            let r = s.refuse("GET", &path, &headers, StatusCode::UNPROCESSABLE_ENTITY, &e);
            return with_rate(r, limits.0, limits.1);
        }
    };
    // Every listed field is an application field.
    let wanted = q.filters.get("field_type").is_none_or(|t| t == "application");
    let items: Vec<Value> = listing(&s)
        .into_iter()
        .filter(|_| wanted)
        .map(|(id, k, active)| {
            json!({"id": id, "name": k, "name_key": k, "field_type": "application", "value_type": "short_text",
                "active": active, "private": false, "required": false})
        })
        .collect();
    let (items, link) = page(items, &q, "/v3/custom_fields", &headers);
    answer_page(&s, &path, &headers, limits, items, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(u64, String, bool)> {
        vec![(4000, "archived".into(), false), (4001, "state".into(), true)]
    }

    #[test]
    fn entries_that_break_the_schema_are_refused() {
        let bad = [
            json!({"custom_fields": [{"name_key": "state", "custom_field_id": 4001, "value": "x"}]}),
            json!({"custom_fields": [{"value": "x"}]}),
            json!({"custom_fields": [{"name_key": "state", "value": "x", "extra": 1}]}),
            json!({"custom_fields": [{"id": 4001, "value": "x"}]}),
            json!({"custom_fields": [{"name_key": "state", "delete_value": "true"}]}),
            json!({"custom_fields": [{"name_key": "state", "value": {"amount": 1}}]}),
            json!({"custom_fields": [{"name_key": "archived", "value": "x"}]}),
            json!({"other": 1}),
        ];
        for b in bad {
            assert!(patch_fields(b.to_string().as_bytes(), &fields(), false).is_err(), "{b}");
        }
        let ok = json!({"custom_fields": [{"custom_field_id": 4001, "value": null}]});
        assert_eq!(patch_fields(ok.to_string().as_bytes(), &fields(), false).unwrap()["state"], "");
    }

    #[test]
    fn pages_follow_the_cursor_alone() {
        let q = list_query(Some("field_type=application&per_page=2")).unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "gh".parse().unwrap());
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (first, link) = page(items.clone(), &q, "/v3/custom_fields", &h);
        assert_eq!(first, vec![json!(0), json!(1)]);
        let next = link.unwrap();
        let cursor = next.split("cursor=").nth(1).unwrap().split('>').next().unwrap();
        let q2 = list_query(Some(&format!("cursor={cursor}"))).unwrap();
        assert_eq!(
            (q2.offset, q2.per_page, q2.filters.get("field_type").map(String::as_str)),
            (2, 2, Some("application"))
        );
        assert!(list_query(Some(&format!("cursor={cursor}&per_page=2"))).is_err());
        assert!(list_query(Some("per_page=501")).is_err());
    }
}
