//! Greenhouse's interview listings, which the bridge polls (Greenhouse sends
//! no web hook for interviews), as strictly as the rest of the
//! impersonation:
//! - v3 `GET /v3/interviews`: an array of the OpenAPI document's `interview`
//!   schema (`id`, `application_id`, `starts_at`, `status`, `updated_at`,
//!   … and nothing else), filtered by `updated_at[gte]` (RFC 3339; the v3
//!   filter style, `{field}[gte|lte|gt|lt]`), paged by cursor like every
//!   v3 list (`per_page` 1 to 500, then the `Link` header's cursor alone);
//!   v1's `updated_after` here is a 422, as any unknown parameter;
//! - v1 (legacy) `GET /v1/scheduled_interviews`: the scheduled-interview
//!   object (`start.date_time`, `end.date_time`, `interview`, `organizer`,
//!   `interviewers`), filtered by `updated_after`, paged by `page` and
//!   `per_page` with `rel="next"` in `Link`.
//!
//! `POST /_sandbox/ats/greenhouse/interviews` books, moves or skips one
//! (`{"id", "application_id", "starts_at", "status"}`), stamping
//! `updated_at` with the time, as Greenhouse does on any change.

use super::greenhouse::admit;
use super::greenhouse_v3::{answer_page, list_query, page, pairs};
use crate::devtools::sandbox::Sandbox;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// The most interviews the sandbox keeps (it is a test peer, not a store).
const KEEP: usize = 10_000;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v3/interviews", get(v3_list))
        .route("/v1/scheduled_interviews", get(v1_list))
        .route("/_sandbox/ats/greenhouse/interviews", post(book))
}

/// An interview as booked in the sandbox.
#[derive(Debug, Clone, Deserialize)]
pub struct Booked {
    pub id: u64,
    pub application_id: u64,
    /// `None`: not scheduled yet (`to_be_scheduled`).
    #[serde(default)]
    pub starts_at: Option<DateTime<FixedOffset>>,
    #[serde(default = "scheduled")]
    pub status: String,
    #[serde(skip, default = "Utc::now")]
    pub created_at: DateTime<Utc>,
    #[serde(skip, default = "Utc::now")]
    pub updated_at: DateTime<Utc>,
}

fn scheduled() -> String {
    "scheduled".into()
}

/// The v3 document's statuses.
const V3_STATUSES: [&str; 9] = [
    "to_be_scheduled",
    "scheduled",
    "awaiting_feedback",
    "complete",
    "skipped",
    "collect_feedback",
    "to_be_sent",
    "sent",
    "received",
];

fn ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Booked {
    fn ends_at(&self) -> Option<String> {
        self.starts_at.map(|t| ms(t.with_timezone(&Utc) + chrono::Duration::hours(1)))
    }

    /// The v3 `interview` schema, every property and no other.
    fn v3(&self) -> Value {
        json!({
            "id": self.id, "created_at": ms(self.created_at), "updated_at": ms(self.updated_at),
            "job_id": 4001, "application_id": self.application_id, "job_interview_id": 7001,
            "starts_at": self.starts_at.map(|t| ms(t.with_timezone(&Utc))), "ends_at": self.ends_at(),
            "location": null, "status": self.status, "organizer_id": 1001,
            "scheduled_at": self.starts_at.map(|_| ms(self.created_at)),
            "all_day_start_on": null, "all_day_end_on": null, "external_event_id": null,
            "video_conferencing_url": null, "availability_received_at": null,
        })
    }

    /// v1's scheduled interview (legacy).
    fn v1(&self) -> Value {
        json!({
            "id": self.id, "application_id": self.application_id, "external_event_id": null,
            "start": {"date_time": self.starts_at.map(|t| ms(t.with_timezone(&Utc)))},
            "end": {"date_time": self.ends_at()},
            "location": null, "video_conferencing_url": null, "status": self.status,
            "created_at": ms(self.created_at), "updated_at": ms(self.updated_at),
            "interview": {"id": 7001, "name": "Technical interview"},
            "organizer": {"id": 1001, "first_name": "Sandbox", "last_name": "Recruiter", "name": "Sandbox Recruiter",
                "employee_id": null},
            "interviewers": [],
        })
    }
}

async fn book(State(s): State<Sandbox>, axum::Json(b): axum::Json<Booked>) -> Response {
    if !V3_STATUSES.contains(&b.status.as_str()) {
        return super::super::err(StatusCode::UNPROCESSABLE_ENTITY, "status is not one of the document's");
    }
    let mut g = s.inner.lock().unwrap();
    let list = &mut g.ats.interviews;
    let full = list.len() >= KEEP;
    let b = match list.iter_mut().find(|i| i.id == b.id) {
        Some(i) => {
            i.application_id = b.application_id;
            i.starts_at = b.starts_at;
            i.status = b.status;
            i.updated_at = Utc::now();
            i.clone()
        }
        None if !full => {
            list.push(b.clone());
            b
        }
        None => return super::super::err(StatusCode::INSUFFICIENT_STORAGE, "the sandbox keeps 10,000 interviews"),
    };
    axum::Json(b.v3()).into_response()
}

/// The interviews updated at or after `since` (all without one), by id.
fn since(s: &Sandbox, since: Option<DateTime<Utc>>) -> Vec<Booked> {
    let mut all: Vec<Booked> = s.inner.lock().unwrap().ats.interviews.clone();
    all.retain(|i| since.is_none_or(|t| i.updated_at >= t));
    all.sort_by_key(|i| i.id);
    all
}

fn time(v: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("not an ISO-8601 time: {e}"))
}

/// The v3 list's filters on the document's fields (`{field}[op]`), and ids.
const V3_FILTERS: [&str; 3] = ["updated_at", "created_at", "starts_at"];

fn v3_since(filters: &std::collections::BTreeMap<String, String>) -> Result<Option<DateTime<Utc>>, String> {
    let mut since = None;
    for (k, v) in filters {
        let known = k
            .split_once('[')
            .is_some_and(|(field, op)| V3_FILTERS.contains(&field) && ["gte]", "lte]", "gt]", "lt]"].contains(&op));
        if !known && !["ids", "application_id", "job_id"].contains(&k.as_str()) {
            return Err(format!("unknown query parameter: {k}"));
        }
        if known {
            let t = time(v).map_err(|e| format!("{k}: {e}"))?;
            if k == "updated_at[gte]" {
                since = Some(t);
            }
        }
    }
    Ok(since)
}

/// A listing's request as logged, its fault, rate window and credentials:
/// `Err` is the answer; else the path and the window's (limit, remaining).
async fn admitted(
    s: &Sandbox,
    version: &str,
    route: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<(String, (u32, u32)), Response> {
    let path = format!("{route}{}", raw.map(|q| format!("?{q}")).unwrap_or_default());
    if let Some(a) = s.fault_answer("GET", &path, headers).await {
        return Err(a);
    }
    let limits = admit(s, version, &Method::GET, &path, headers).map_err(|r| *r)?;
    Ok((path, limits))
}

/// A 422 in the window's headers.
fn unprocessable(s: &Sandbox, path: &str, headers: &HeaderMap, limits: (u32, u32), e: String) -> Response {
    let r = s.refuse("GET", path, headers, StatusCode::UNPROCESSABLE_ENTITY, &e);
    super::greenhouse::with_rate(r, limits.0, limits.1)
}

async fn v3_list(State(s): State<Sandbox>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let (path, limits) = match admitted(&s, "v3", "/v3/interviews", raw.as_deref(), &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let refused = |e: String| unprocessable(&s, &path, &headers, limits, e);
    let q = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return refused(e),
    };
    let from = match v3_since(&q.filters) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let items = since(&s, from).iter().map(Booked::v3).collect();
    let (items, link) = page(items, &q, "/v3/interviews", &headers);
    answer_page(&s, &path, &headers, limits, items, link)
}

async fn v1_list(State(s): State<Sandbox>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let (path, limits) = match admitted(&s, "v1", "/v1/scheduled_interviews", raw.as_deref(), &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let refused = |e: String| unprocessable(&s, &path, &headers, limits, e);
    let q = pairs(raw.as_deref().unwrap_or_default());
    let known = [
        "per_page",
        "page",
        "updated_after",
        "updated_before",
        "created_after",
        "created_before",
        "starts_after",
        "starts_before",
        "ends_after",
        "ends_before",
        "external_event_id",
        "actionable",
    ];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return refused(format!("unknown query parameter: {k}"));
    }
    let num = |k: &str, default: usize, max: usize| match q.get(k) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| (1..=max).contains(n)).ok_or(format!("{k}: 1 to {max}")),
    };
    let (per_page, page_no) = match (num("per_page", 100, 500), num("page", 1, usize::MAX)) {
        (Ok(p), Ok(n)) => (p, n),
        (Err(e), _) | (_, Err(e)) => return refused(e),
    };
    let from = match q.get("updated_after").map(|v| time(v)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return refused(format!("updated_after: {e}")),
    };
    let all = since(&s, from);
    let items: Vec<Value> = all.iter().skip((page_no - 1) * per_page).take(per_page).map(Booked::v1).collect();
    let mut r = super::greenhouse::with_rate(
        s.answer("GET", &path, &headers, StatusCode::OK, json!(items)),
        limits.0,
        limits.1,
    );
    if page_no * per_page < all.len() {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let mut next = reqwest::Url::parse(&format!("http://{host}/v1/scheduled_interviews")).expect("a URL");
        for (k, v) in q.iter().filter(|(k, _)| *k != "page") {
            next.query_pairs_mut().append_pair(k, v);
        }
        next.query_pairs_mut().append_pair("page", &(page_no + 1).to_string());
        if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            r.headers_mut().insert("link", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_takes_its_own_filters_and_refuses_v1s() {
        let f = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = v3_since(&f(&[("updated_at[gte]", "2026-12-03T10:00:00Z")])).unwrap();
        assert_eq!(t.unwrap().to_rfc3339(), "2026-12-03T10:00:00+00:00");
        assert!(v3_since(&f(&[("updated_after", "2026-12-03T10:00:00Z")])).is_err());
        assert!(v3_since(&f(&[("updated_at[gte]", "yesterday")])).is_err());
        assert!(v3_since(&f(&[("updated_at[eq]", "2026-12-03T10:00:00Z")])).is_err());
    }

    #[test]
    fn the_v3_item_has_the_documents_properties_only() {
        let b = Booked {
            id: 1,
            application_id: 2,
            starts_at: DateTime::parse_from_rfc3339("2026-12-10T15:00:00Z").ok(),
            status: scheduled(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let v = b.v3();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let documented = [
            "id",
            "created_at",
            "updated_at",
            "job_id",
            "application_id",
            "job_interview_id",
            "starts_at",
            "ends_at",
            "location",
            "status",
            "organizer_id",
            "scheduled_at",
            "all_day_start_on",
            "all_day_end_on",
            "external_event_id",
            "video_conferencing_url",
            "availability_received_at",
        ];
        assert!(keys.iter().all(|k| documented.contains(k)), "{keys:?}");
        assert_eq!(keys.len(), documented.len());
        let read = vbridge_core::intake::ats::greenhouse::polled_interview(&v).unwrap();
        let read_v1 = vbridge_core::intake::ats::greenhouse::polled_interview(&b.v1()).unwrap();
        assert_eq!(read.starts_at, read_v1.starts_at, "both shapes read alike");
    }
}
