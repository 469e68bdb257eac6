//! Greenhouse Harvest: the bridge's fields are the application's custom
//! fields.
//!
//! Harvest v3 follows Greenhouse's own OpenAPI 3.1 document ("Harvest API",
//! version v3, embedded in every harvestdocs.greenhouse.io `/reference/`
//! page; a verbatim copy is in the public repository amp-labs/connectors at
//! providers/greenhouse/metadata/openapi/harvest-api.json):
//! - `PATCH /v3/applications/{id}` takes `custom_fields: [{name_key |
//!   custom_field_id, value}]`, each entry with exactly one of the two keys
//!   and nothing else (`additionalProperties: false`); `value: null` clears;
//! - there is no `GET /v3/applications/{id}`: one application is read with
//!   `GET /v3/applications?ids={id}`, which answers an array;
//! - an application's `custom_fields` is an object keyed by `name_key`, each
//!   `{name, type, value}`;
//! - `GET /v3/custom_fields?field_type=application` is a list endpoint:
//!   `per_page` up to 500, the next page in the `Link` header (`rel="next"`,
//!   followed as given: the pagination guide), `active: false` when archived;
//! - scopes: `harvest:applications:update` (writes),
//!   `harvest:applications:list` (reads), `harvest:custom_fields:list`
//!   (`ats check`).
//!
//! Tokens: the authentication guide (`POST https://auth.greenhouse.io/token`,
//! HTTP Basic `client_id:client_secret`, form
//! `grant_type=client_credentials&sub=<user id>`, then `Authorization:
//! Bearer`); the answer's `expires_at` is read in [`super::oauth`].
//!
//! Harvest v1 is legacy (v1 and v2 were sunset on 2026-08-31), kept for
//! tenants not yet migrated, as its reference (developers.greenhouse.io/
//! harvest.html) describes it: Basic auth with the API key as user name and
//! an empty password, `On-Behalf-Of` on writes, `custom_fields: [{"name_key"
//! | "id", "value"}]`, `delete_value: "true"` to clear, `GET
//! /v1/applications/{id}`, `GET /v1/custom_fields/application`, a 10-s
//! rate window.

use super::limit::Limiter;
use super::oauth::{TokenError, TokenSource};
use super::{Call, Checked, Connector, ListPage, Outcome, classify, paced_send, text_of, unsendable};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://harvest.greenhouse.io";
pub const DEFAULT_AUTH_URL: &str = "https://auth.greenhouse.io/token";
/// Harvest v3's rate-limit window (30 s; the limit per window comes in
/// `X-RateLimit-Limit`, e.g. 75).
pub const RATE_WINDOW: Duration = Duration::from_secs(30);
/// Harvest v1's (legacy) rate-limit window.
pub const V1_RATE_WINDOW: Duration = Duration::from_secs(10);
/// How long a refused v3 token is waited on before a new one is taken
/// (`super::oauth`): at most one token per worker per this period.
pub const TOKEN_QUIET: Duration = Duration::from_secs(10);
/// The pace before the first answer says the real limit.
pub const INITIAL_LIMIT: u32 = 20;
/// The largest page `GET /v3/custom_fields` serves.
pub const FIELDS_PER_PAGE: u32 = 500;
/// Pages `ats check` follows at most (500 fields each).
const MAX_PAGES: usize = 100;

/// The two ways in.
pub enum Auth {
    /// Harvest v3: OAuth2 client credentials, `sub` = the acting user.
    V3 { tokens: TokenSource, user_id: String },
    /// Harvest v1 (legacy, tenants not yet migrated): Basic with the API key,
    /// and the acting user in `On-Behalf-Of`.
    V1 { api_key: String, on_behalf_of: String },
}

pub struct Greenhouse {
    pub client: reqwest::Client,
    pub api_url: String,
    pub auth: Auth,
    pub limiter: Limiter,
}

/// The custom-field listing, per version (v3: the first page; the next ones
/// come from `Link`).
pub const FIELDS_PATH: [(&str, &str); 2] =
    [("v1", "/v1/custom_fields/application"), ("v3", "/v3/custom_fields?field_type=application&per_page=500")];

/// The interview listing, per version.
pub const INTERVIEWS_PATH: [(&str, &str); 2] = [("v1", "/v1/scheduled_interviews"), ("v3", "/v3/interviews")];
/// The page size asked of the interview listing (both versions' largest).
pub const INTERVIEWS_PER_PAGE: u32 = 500;

/// The v3 PATCH body: each field by its `name_key`, or by its
/// `custom_field_id` when the field map names a number; an empty value
/// clears the field (`value: null`).
pub fn custom_fields_body(fields: &BTreeMap<String, String>) -> Value {
    let entries: Vec<Value> = fields
        .iter()
        .map(|(k, v)| {
            let value = if v.is_empty() { Value::Null } else { json!(v) };
            match k.parse::<u64>() {
                Ok(id) => json!({"custom_field_id": id, "value": value}),
                Err(_) => json!({"name_key": k, "value": value}),
            }
        })
        .collect();
    json!({ "custom_fields": entries })
}

/// The v1 (legacy) PATCH body: `id` for a number, `delete_value` to clear.
pub fn v1_custom_fields_body(fields: &BTreeMap<String, String>) -> Value {
    let entries: Vec<Value> = fields
        .iter()
        .map(|(k, v)| {
            let mut e = match k.parse::<u64>() {
                Ok(id) => json!({"id": id}),
                Err(_) => json!({"name_key": k}),
            };
            if v.is_empty() {
                e["delete_value"] = json!("true");
            } else {
                e["value"] = json!(v);
            }
            e
        })
        .collect();
    json!({ "custom_fields": entries })
}

/// A v3 application's custom fields as `name_key` → text: each entry's
/// `value` (null, or a missing value, reads as cleared).
pub fn custom_fields_of(application: &Value) -> BTreeMap<String, String> {
    match application.get("custom_fields") {
        Some(Value::Object(m)) => {
            m.iter().map(|(k, e)| (k.clone(), text_of(e.get("value").unwrap_or(&Value::Null)))).collect()
        }
        _ => BTreeMap::new(),
    }
}

/// A v1 (legacy) application's custom fields as key → text, from either
/// shape v1 answers with: an object of plain values keyed by `name_key`, or
/// an array of entries.
pub fn v1_custom_fields_of(application: &Value) -> BTreeMap<String, String> {
    match application.get("custom_fields") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|e| {
                let key = e
                    .get("name_key")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| e.get("id").map(text_of))?;
                Some((key, text_of(e.get("value").unwrap_or(&Value::Null))))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), if any.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        next.then(|| url.to_owned())
    })
}

/// The keys of the fields a listing names: `name_key` and `id`, of active
/// fields only (`active: false` is an archived field, which takes no value).
fn active_keys(list: &[Value]) -> impl Iterator<Item = String> + '_ {
    list.iter()
        .filter(|f| f.get("active") != Some(&Value::Bool(false)))
        .flat_map(|f| [f.get("name_key").and_then(Value::as_str).map(str::to_owned), f.get("id").map(text_of)])
        .flatten()
}

impl Greenhouse {
    fn is_v3(&self) -> bool {
        matches!(self.auth, Auth::V3 { .. })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url.trim_end_matches('/'), path)
    }

    /// The request with its credentials; the bearer token it carries (v3).
    async fn authorized(
        &self,
        req: reqwest::RequestBuilder,
        write: bool,
        token: Option<String>,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), TokenError> {
        match &self.auth {
            Auth::V3 { tokens, .. } => {
                let token = match token {
                    Some(t) => t,
                    None => tokens.token().await?,
                };
                Ok((req.bearer_auth(&token), Some(token)))
            }
            Auth::V1 { api_key, on_behalf_of } => {
                let req = req.basic_auth(api_key, Some(""));
                Ok((if write { req.header("On-Behalf-Of", on_behalf_of) } else { req }, None))
            }
        }
    }

    /// Send with credentials; on a 401 with a bearer token, take the token
    /// that replaced it (`TokenSource::refresh`) and send again. A second
    /// 401 is another holder of the credential taking a token in between:
    /// worth another attempt later, not a refusal.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        write: bool,
        timeout: Duration,
    ) -> Result<reqwest::Response, Outcome> {
        let (req, token) = self.authorized(build(), write, None).await.map_err(token_outcome)?;
        let resp = paced_send(&self.limiter, req, timeout).await?;
        let (Some(stale), Auth::V3 { tokens, .. }) = (token, &self.auth) else { return Ok(resp) };
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        tracing::info!("Greenhouse answered 401: taking the token that replaced ours");
        let fresh = tokens.refresh(&stale).await.map_err(token_outcome)?;
        let (req, _) = self.authorized(build(), write, Some(fresh)).await.map_err(token_outcome)?;
        let resp = paced_send(&self.limiter, req, timeout).await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Outcome::Retry {
                reason: "HTTP 401".into(),
                message: "Greenhouse refused a new token: another holder of the credential took one".into(),
                delay: Some(tokens.quiet()),
            });
        }
        Ok(resp)
    }

    /// GET `url` (JSON), with its `Link` header's next page.
    async fn get_json(&self, url: &str, what: &str) -> Result<(Value, Option<String>), String> {
        let resp =
            self.send(|| self.client.get(url), false, Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        let status = resp.status();
        let next = resp.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("GET {what}: HTTP {status}: {}", text.chars().take(200).collect::<String>()));
        }
        let body = serde_json::from_str(&text).map_err(|e| format!("GET {what}: {e}"))?;
        Ok((body, next))
    }

    /// `next` when it is on the API's own origin (the credentials go
    /// nowhere else).
    fn same_origin(&self, what: &str, next: &str) -> Result<String, String> {
        let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
        match origin(next) {
            Some(o) if Some(&o) == origin(&self.api_url).as_ref() => Ok(next.to_owned()),
            _ => Err(format!("GET {what}: the next page is elsewhere ({next})")),
        }
    }

    /// Every page of the v3 field listing, following `Link`.
    async fn v3_fields(&self) -> Result<Vec<Value>, String> {
        let mut url = self.url(FIELDS_PATH[1].1);
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.get_json(&url, "/v3/custom_fields").await?;
            let page = page.as_array().cloned().ok_or("GET /v3/custom_fields: not an array")?;
            all.extend(page);
            match next {
                None => return Ok(all),
                Some(n) => url = self.same_origin("/v3/custom_fields", &n)?,
            }
        }
        Err(format!("GET /v3/custom_fields: more than {MAX_PAGES} pages"))
    }

    /// The first page of the interviews changed since `since`: v3 `GET
    /// /v3/interviews?updated_at[gte]=` (cursor pages), v1 (legacy) `GET
    /// /v1/scheduled_interviews?updated_after=` (numbered pages); both name
    /// the next page in `Link`.
    fn interviews_url(&self, since: &str) -> (String, &'static str) {
        let (path, filter) = if self.is_v3() {
            (INTERVIEWS_PATH[1].1, "updated_at[gte]")
        } else {
            (INTERVIEWS_PATH[0].1, "updated_after")
        };
        let mut url = reqwest::Url::parse(&self.url(path)).expect("the API URL was checked at start");
        url.query_pairs_mut().append_pair("per_page", &INTERVIEWS_PER_PAGE.to_string()).append_pair(filter, since);
        (url.to_string(), path)
    }
}

fn token_outcome(e: TokenError) -> Outcome {
    match e {
        TokenError::Refused(m) => Outcome::Refused { status: 401, body: format!("Greenhouse token: {m}") },
        TokenError::Unavailable(m) => {
            Outcome::Retry { reason: "Greenhouse token unavailable".into(), message: m, delay: None }
        }
        // Nothing was sent again: the write waits, like a rate-limit hold.
        TokenError::Contended(delay) => Outcome::Held { delay },
    }
}

/// Harvest application ids are numbers.
fn application_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

#[async_trait::async_trait]
impl Connector for Greenhouse {
    fn kind(&self) -> &'static str {
        "greenhouse"
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        let Some(id) = application_id(&call.req.application_id) else {
            return unsendable(format!(
                "Greenhouse application ids are numbers; \"{}\" is not one",
                call.req.application_id
            ));
        };
        let (url, body) = if self.is_v3() {
            (self.url(&format!("/v3/applications/{id}")), custom_fields_body(&call.req.fields))
        } else {
            (self.url(&format!("/v1/applications/{id}")), v1_custom_fields_body(&call.req.fields))
        };
        let build = || self.client.patch(&url).json(&body);
        match self.send(build, true, call.timeout).await {
            Ok(resp) => classify(resp).await,
            Err(outcome) => outcome,
        }
    }

    async fn read(&self, application_id: &str, _check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let Some(id) = self::application_id(application_id) else { return Ok(None) };
        if self.is_v3() {
            let (list, _) = self.get_json(&self.url(&format!("/v3/applications?ids={id}")), "/v3/applications").await?;
            let list = list.as_array().ok_or("GET /v3/applications: not an array")?;
            let found = list.iter().find(|a| a.get("id").and_then(Value::as_u64) == Some(id));
            return Ok(found.map(custom_fields_of));
        }
        let url = self.url(&format!("/v1/applications/{id}"));
        let resp =
            self.send(|| self.client.get(&url), false, Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        Ok(Some(v1_custom_fields_of(&body)))
    }

    async fn check(&self, keys: &[String]) -> Result<Checked, String> {
        let known: BTreeSet<String> = if self.is_v3() {
            active_keys(&self.v3_fields().await?).collect()
        } else {
            let path = FIELDS_PATH[0].1;
            let (list, _) = self.get_json(&self.url(path), path).await?;
            let list: Vec<Value> = serde_json::from_value(list).map_err(|e| format!("GET {path}: {e}"))?;
            list.iter()
                .flat_map(|f| [f.get("name_key").and_then(Value::as_str).map(str::to_owned), f.get("id").map(text_of)])
                .flatten()
                .collect()
        };
        let credentials = match &self.auth {
            Auth::V3 { user_id, .. } => format!("OAuth2 token issued (acting as user {user_id}), custom fields listed"),
            Auth::V1 { on_behalf_of, .. } => {
                format!("API key accepted (writes On-Behalf-Of user {on_behalf_of}), custom fields listed")
            }
        };
        Ok(Checked { credentials, missing: keys.iter().filter(|k| !known.contains(*k)).cloned().collect(), note: None })
    }

    async fn interviews(&self, since: &str, next: Option<&str>) -> Result<Option<ListPage>, String> {
        let (first, path) = self.interviews_url(since);
        let url = match next {
            Some(n) => self.same_origin(path, n)?,
            None => first,
        };
        let (list, next) = self.get_json(&url, path).await?;
        let Value::Array(items) = list else { return Err(format!("GET {path}: not an array")) };
        Ok(Some(ListPage { items, next }))
    }
}

#[cfg(test)]
mod tests;
