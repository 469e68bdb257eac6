//! The sandbox's impersonations of commercial ATS APIs (dev tooling): each
//! checks credentials, shapes and documented headers as the real API does,
//! keeps what it is given per record, and logs every request. Shared here:
//! the sandbox's credentials, the custom-field catalogue, Greenhouse-style
//! rate-limit windows, and `/_sandbox/ats/...` to inspect and edit records
//! behind the bridge's back. The verification providers' start APIs
//! (`veriff`, `persona`) live here too: the sessions they create are listed
//! at `/_sandbox/providers/sessions`, and each session's link opens a
//! sandbox page.

mod ashby;
mod greenhouse;
mod greenhouse_interviews;
mod greenhouse_v3;
mod lever;
mod persona;
#[cfg(test)]
mod provider_tests;
mod veriff;

use super::{AppliedWrite, Sandbox, err};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Greenhouse v3 OAuth client (`VBRIDGE_GREENHOUSE_CLIENT_ID`/`_SECRET`).
pub const CLIENT_ID: &str = "sandbox-client";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";
/// The API key of Greenhouse v1, Ashby and Lever, and of Veriff and Persona.
pub const API_KEY: &str = "sandbox-api-key";
/// The user the bridge acts as (Greenhouse `sub`/`On-Behalf-Of`, Lever `perform_as`).
pub const USER_ID: &str = "1001";

#[derive(Default)]
pub struct AtsState {
    /// The custom fields the ATSs know (None: any, none listed).
    pub catalogue: Option<BTreeSet<String>>,
    /// Greenhouse v3: archived custom fields (listed with `active: false`,
    /// not writable).
    archived: BTreeSet<String>,
    /// Custom fields per (ATS, record id).
    records: HashMap<(&'static str, String), BTreeMap<String, String>>,
    /// Lever: tags and notes (created-at ms, text) per opportunity.
    tags: HashMap<String, Vec<String>>,
    notes: HashMap<String, Vec<(i64, String)>>,
    /// Greenhouse v3 access tokens in force (one per credential: taking a
    /// new one revokes the last, as integrators report), with their expiry;
    /// and how many were issued.
    tokens: HashMap<String, Instant>,
    issued: u64,
    token_lifetime_s: Option<u64>,
    /// Greenhouse's interviews (booked with `/_sandbox/ats/greenhouse/interviews`).
    interviews: Vec<greenhouse_interviews::Booked>,
    /// Greenhouse's windows: v3 and v1 (legacy).
    rate: Rate,
    rate_v1: RateV1,
}

/// A Greenhouse-style fixed window: `limit` requests per `window`.
struct Rate {
    limit: u32,
    window: Duration,
    start: Option<Instant>,
    used: u32,
}

impl Rate {
    fn new(limit: u32, window: Duration) -> Rate {
        Rate { limit: limit.max(1), window, start: None, used: 0 }
    }
}

/// Harvest v1's window (legacy): 100 per 10 s.
struct RateV1(Rate);

impl Default for RateV1 {
    fn default() -> RateV1 {
        RateV1(Rate::new(100, Duration::from_secs(10)))
    }
}

impl Default for Rate {
    /// Harvest v3's: 30-s windows, e.g. `X-RateLimit-Limit: 75`.
    fn default() -> Rate {
        Rate::new(75, Duration::from_secs(30))
    }
}

/// A verification session created through an impersonated provider (a
/// Veriff session, a Persona inquiry), as `/_sandbox/providers/sessions`
/// lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderSession {
    /// `veriff` or `persona`.
    pub provider: String,
    pub id: String,
    /// Veriff's `vendorData`, Persona's `reference-id` (empty when absent).
    pub reference: String,
    /// Persona's inquiry template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Where the end user goes: Veriff's session URL, Persona's latest
    /// one-time link (a sandbox page, either way).
    pub url: String,
    /// Persona one-time links generated for it.
    pub links_generated: u32,
    pub created_at: String,
    /// Persona's inquiry tags, as created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Veriff's `sessionToken` / Persona's account: answered, not listed.
    #[serde(skip)]
    secret: String,
    /// Persona: the `Idempotency-Key` it was created with.
    #[serde(skip)]
    idempotency_key: Option<String>,
}

/// The base URL a client reached the sandbox at, for the links it answers.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

impl Sandbox {
    fn provider_session(&self, provider: &str, id: &str) -> Option<ProviderSession> {
        let g = self.inner.lock().unwrap();
        g.providers.iter().find(|p| p.provider == provider && p.id == id).cloned()
    }
}

async fn list_sessions(State(s): State<Sandbox>) -> Response {
    axum::Json(s.inner.lock().unwrap().providers.clone()).into_response()
}

/// What the end user sees at a session's link: which session, for whom.
async fn verify_page(State(s): State<Sandbox>, Path((provider, id)): Path<(String, String)>) -> Response {
    match s.provider_session(&provider, &id) {
        Some(p) => session_page(&p),
        None => err(StatusCode::NOT_FOUND, "no such verification session"),
    }
}

fn session_page(p: &ProviderSession) -> Response {
    let e = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    // What the provider would send once the candidate is done, as the
    // command that sends it (docs/hiring.md's walkthrough).
    let (c, a) = p.reference.split_once(':').unwrap_or((&p.reference, ""));
    let complete = format!(
        "vbridge simulate --provider {} --check {} --candidate {c} --application {a} --outcome verified",
        p.provider, p.id
    );
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sandbox {provider}</title></head><body>\
         <h1>Sandbox {provider}</h1><p>verification session <code>{id}</code> for <b>{reference}</b></p>\
         <p>Created {at}. The sandbox does not verify anyone: it only shows that the link works.</p>\
         <p>To play the provider's decision: <code>{complete}</code></p></body></html>",
        provider = e(&p.provider),
        id = e(&p.id),
        reference = e(&p.reference),
        at = e(&p.created_at),
        complete = e(&complete),
    );
    ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The connector settings that point the bridge at the sandbox speaking
/// `kind` (`vbridge dev --ats KIND`), with the sandbox's credentials.
pub fn connector_for(kind: &str, sandbox_url: &str) -> Option<vbridge_activities::AtsKind> {
    use vbridge_activities::{AtsKind, GreenhouseConfig, GreenhouseCredentials, Redacted};
    let key = || Redacted(API_KEY.to_owned());
    let greenhouse = |credentials: GreenhouseCredentials| {
        AtsKind::Greenhouse(GreenhouseConfig {
            api_url: sandbox_url.to_owned(),
            auth_url: format!("{sandbox_url}/token"),
            rate_window: match credentials {
                GreenhouseCredentials::OAuth { .. } => vbridge_activities::connector::greenhouse::RATE_WINDOW,
                GreenhouseCredentials::ApiKey { .. } => vbridge_activities::connector::greenhouse::V1_RATE_WINDOW,
            },
            token_quiet: vbridge_activities::connector::greenhouse::TOKEN_QUIET,
            credentials,
        })
    };
    Some(match kind {
        "greenhouse" => greenhouse(GreenhouseCredentials::OAuth {
            client_id: CLIENT_ID.to_owned(),
            client_secret: Redacted(CLIENT_SECRET.to_owned()),
            user_id: USER_ID.to_owned(),
        }),
        "greenhouse-v1" => {
            greenhouse(GreenhouseCredentials::ApiKey { api_key: key(), on_behalf_of: USER_ID.to_owned() })
        }
        "ashby" => AtsKind::Ashby { api_url: sandbox_url.to_owned(), api_key: key() },
        "lever" => AtsKind::Lever {
            api_url: format!("{sandbox_url}/v1"),
            api_key: key(),
            perform_as: USER_ID.to_owned(),
            tag_fields: vec!["verification_state".to_owned()],
        },
        _ => return None,
    })
}

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .merge(greenhouse::routes())
        .merge(ashby::routes())
        .merge(lever::routes())
        .merge(veriff::routes())
        .merge(persona::routes())
        .route("/_sandbox/providers/sessions", get(list_sessions))
        .route("/_sandbox/verify/{provider}/{id}", get(verify_page))
        .route("/_sandbox/ats/fields", post(set_fields))
        .route("/_sandbox/ats/revoke-tokens", post(revoke_tokens))
        .route("/_sandbox/ats/token-lifetime", post(token_lifetime))
        .route("/_sandbox/ats/rate-limit", post(rate_limit))
        .route("/_sandbox/ats/{kind}/{id}", get(show_record).post(edit_record))
}

/// `user:password` of a Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Basic auth with the sandbox API key as user name and an empty password.
fn api_key_ok(headers: &HeaderMap) -> bool {
    basic(headers) == Some((API_KEY.to_owned(), String::new()))
}

impl Sandbox {
    /// Log and answer.
    fn answer(&self, method: &str, path: &str, headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
        self.log(method, path.to_owned(), headers, status.as_u16());
        (status, axum::Json(body)).into_response()
    }

    fn refuse(&self, method: &str, path: &str, headers: &HeaderMap, status: StatusCode, msg: &str) -> Response {
        self.log(method, path.to_owned(), headers, status.as_u16());
        err(status, msg)
    }

    /// Keys the catalogue does not know.
    fn unknown_fields<'a>(&self, keys: impl Iterator<Item = &'a String>) -> Vec<String> {
        let g = self.inner.lock().unwrap();
        match &g.ats.catalogue {
            None => vec![],
            Some(known) => keys.filter(|k| !known.contains(*k)).cloned().collect(),
        }
    }

    /// Keep fields written to a record, and list the write.
    fn keep(&self, ats: &'static str, id: &str, fields: BTreeMap<String, String>) {
        let mut g = self.inner.lock().unwrap();
        let rec = g.ats.records.entry((ats, id.to_owned())).or_default();
        for (k, v) in &fields {
            if v.is_empty() {
                rec.remove(k);
            } else {
                rec.insert(k.clone(), v.clone());
            }
        }
        g.applied.push(AppliedWrite {
            application_id: id.to_owned(),
            verification_check_id: String::new(),
            candidate_id: String::new(),
            idempotency_key: String::new(),
            trace_id: String::new(),
            fields,
            at: crate::now_rfc3339(),
        });
    }

    fn record(&self, ats: &'static str, id: &str) -> Option<BTreeMap<String, String>> {
        self.inner.lock().unwrap().ats.records.get(&(ats, id.to_owned())).cloned()
    }
}

#[derive(Deserialize)]
struct Fields {
    fields: Vec<String>,
    /// Greenhouse v3: archived fields, listed but inactive.
    #[serde(default)]
    archived: Vec<String>,
}

async fn set_fields(State(s): State<Sandbox>, axum::Json(f): axum::Json<Fields>) -> Response {
    let mut g = s.inner.lock().unwrap();
    g.ats.catalogue = Some(f.fields.into_iter().collect());
    g.ats.archived = f.archived.into_iter().collect();
    StatusCode::NO_CONTENT.into_response()
}

async fn revoke_tokens(State(s): State<Sandbox>) -> Response {
    s.inner.lock().unwrap().ats.tokens.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Lifetime {
    seconds: u64,
}

async fn token_lifetime(State(s): State<Sandbox>, axum::Json(l): axum::Json<Lifetime>) -> Response {
    s.inner.lock().unwrap().ats.token_lifetime_s = Some(l.seconds);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct RateLimit {
    limit: u32,
    window_ms: u64,
}

async fn rate_limit(State(s): State<Sandbox>, axum::Json(r): axum::Json<RateLimit>) -> Response {
    let mut g = s.inner.lock().unwrap();
    g.ats.rate = Rate::new(r.limit, Duration::from_millis(r.window_ms.max(1)));
    g.ats.rate_v1 = RateV1(Rate::new(r.limit, Duration::from_millis(r.window_ms.max(1))));
    StatusCode::NO_CONTENT.into_response()
}

fn kind_of(kind: &str) -> Option<&'static str> {
    ["greenhouse", "ashby", "lever"].into_iter().find(|k| *k == kind)
}

async fn show_record(State(s): State<Sandbox>, Path((kind, id)): Path<(String, String)>) -> Response {
    let Some(kind) = kind_of(&kind) else { return err(StatusCode::NOT_FOUND, "greenhouse, ashby or lever") };
    let g = s.inner.lock().unwrap();
    let fields = g.ats.records.get(&(kind, id.clone())).cloned().unwrap_or_default();
    let tags = g.ats.tags.get(&id).cloned().unwrap_or_default();
    let notes: Vec<String> = g.ats.notes.get(&id).into_iter().flatten().map(|(_, t)| t.clone()).collect();
    axum::Json(json!({"fields": fields, "tags": tags, "notes": notes})).into_response()
}

#[derive(Deserialize)]
struct Edit {
    field: String,
    value: String,
}

/// A recruiter's edit behind the bridge's back (for reconciliation demos).
async fn edit_record(
    State(s): State<Sandbox>,
    Path((kind, id)): Path<(String, String)>,
    axum::Json(e): axum::Json<Edit>,
) -> Response {
    let Some(kind) = kind_of(&kind) else { return err(StatusCode::NOT_FOUND, "greenhouse, ashby or lever") };
    let mut g = s.inner.lock().unwrap();
    if kind == "lever" {
        let tags = g.ats.tags.entry(id).or_default();
        tags.retain(|t| !t.starts_with(&format!("{}:", e.field)));
        tags.push(format!("{}:{}", e.field, e.value));
    } else {
        g.ats.records.entry((kind, id)).or_default().insert(e.field, e.value);
    }
    StatusCode::NO_CONTENT.into_response()
}
