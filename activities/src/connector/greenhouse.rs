//! Greenhouse Harvest: the bridge's fields are the application's custom
//! fields.
//!
//! Sources (read 2026-11): Harvest v3 authentication guide
//! (harvestdocs.greenhouse.io/docs/authentication: `POST
//! https://auth.greenhouse.io/token`, HTTP Basic `client_id:client_secret`,
//! form `grant_type=client_credentials&sub=<user id>`, then `Authorization:
//! Bearer`); the write-endpoint migration guide (`PATCH /v1/applications/{id}`
//! becomes `PATCH /v3/applications/{id}`); the rate-limiting guide
//! (`X-RateLimit-Limit`/`-Remaining` per 10 s window, 429 with `Retry-After`
//! and `X-RateLimit-Reset`); the v1 Harvest reference
//! (developers.greenhouse.io/harvest.html: Basic auth with the API key as
//! user name and an empty password, the `On-Behalf-Of` header on writes,
//! `custom_fields: [{"name_key"|"id", "value"}]`, `delete_value: "true"` to
//! clear, `GET /v1/custom_fields/application`).
//!
//! Not documented in what we could read: the v3 custom-field body of `PATCH
//! /v3/applications/{id}` and the v3 custom-field listing. Both are kept in
//! [`custom_fields_body`] and [`FIELDS_PATH`] only, assuming the v1 shapes,
//! so that a correction is one place.

use super::limit::Limiter;
use super::oauth::{TokenError, TokenSource};
use super::{Call, Checked, Connector, Outcome, classify, paced_send, text_of, unsendable};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://harvest.greenhouse.io";
pub const DEFAULT_AUTH_URL: &str = "https://auth.greenhouse.io/token";
/// Greenhouse's rate-limit window.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The pace before the first answer says the real limit.
pub const INITIAL_LIMIT: u32 = 20;

/// The two ways in.
pub enum Auth {
    /// Harvest v3: OAuth2 client credentials, `sub` = the acting user.
    V3 { tokens: TokenSource, user_id: String },
    /// Harvest v1 (tenants not yet migrated): Basic with the API key, and the
    /// acting user in `On-Behalf-Of`.
    V1 { api_key: String, on_behalf_of: String },
}

pub struct Greenhouse {
    pub client: reqwest::Client,
    pub api_url: String,
    pub auth: Auth,
    pub limiter: Limiter,
}

/// The custom-field listing, per version.
pub const FIELDS_PATH: [(&str, &str); 2] =
    [("v1", "/v1/custom_fields/application"), ("v3", "/v3/custom_fields?field_type=application")];

/// The PATCH body: each field by its key (`name_key`), or by its numeric id
/// when the field map names one; an empty value clears the field.
pub fn custom_fields_body(fields: &BTreeMap<String, String>) -> Value {
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

/// An application's custom fields as key → text, from either shape Harvest
/// answers with: an object keyed by `name_key`, or an array of entries.
pub fn custom_fields_of(application: &Value) -> BTreeMap<String, String> {
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

impl Greenhouse {
    fn version(&self) -> &'static str {
        match self.auth {
            Auth::V3 { .. } => "v3",
            Auth::V1 { .. } => "v1",
        }
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

    /// Send with credentials; on a 401 with a bearer token, refresh it once
    /// and send again.
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
        tracing::info!("Greenhouse answered 401: refreshing the token once");
        let fresh = tokens.refresh(&stale).await.map_err(token_outcome)?;
        let (req, _) = self.authorized(build(), write, Some(fresh)).await.map_err(token_outcome)?;
        paced_send(&self.limiter, req, timeout).await
    }
}

fn token_outcome(e: TokenError) -> Outcome {
    match e {
        TokenError::Refused(m) => Outcome::Refused { status: 401, body: format!("Greenhouse token: {m}") },
        TokenError::Unavailable(m) => {
            Outcome::Retry { reason: "Greenhouse token unavailable".into(), message: m, delay: None }
        }
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
        let url = self.url(&format!("/{}/applications/{id}", self.version()));
        let body = custom_fields_body(&call.req.fields);
        let build = || self.client.patch(&url).json(&body);
        match self.send(build, true, call.timeout).await {
            Ok(resp) => classify(resp).await,
            Err(outcome) => outcome,
        }
    }

    async fn read(&self, application_id: &str, _check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let Some(id) = self::application_id(application_id) else { return Ok(None) };
        let url = self.url(&format!("/{}/applications/{id}", self.version()));
        let resp =
            self.send(|| self.client.get(&url), false, Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        Ok(Some(custom_fields_of(&body)))
    }

    async fn check(&self, keys: &[String]) -> Result<Checked, String> {
        let path = FIELDS_PATH.iter().find(|(v, _)| *v == self.version()).map(|(_, p)| *p).unwrap_or_default();
        let url = self.url(path);
        let resp =
            self.send(|| self.client.get(&url), false, Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("GET {path}: HTTP {status}: {}", text.chars().take(200).collect::<String>()));
        }
        let list: Vec<Value> = serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}"))?;
        let known: BTreeSet<String> = list
            .iter()
            .flat_map(|f| [f.get("name_key").and_then(Value::as_str).map(str::to_owned), f.get("id").map(text_of)])
            .flatten()
            .collect();
        let credentials = match &self.auth {
            Auth::V3 { user_id, .. } => format!("OAuth2 token issued (acting as user {user_id}), custom fields listed"),
            Auth::V1 { on_behalf_of, .. } => {
                format!("API key accepted (writes On-Behalf-Of user {on_behalf_of}), custom fields listed")
            }
        };
        Ok(Checked { credentials, missing: keys.iter().filter(|k| !known.contains(*k)).cloned().collect(), note: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_body_names_keys_or_ids_and_clears_empty_values() {
        let fields: BTreeMap<String, String> =
            [("verification_state", "verified"), ("12345", "x"), ("verification_banner", "")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(
            custom_fields_body(&fields),
            json!({"custom_fields": [
                {"id": 12345, "value": "x"},
                {"name_key": "verification_banner", "delete_value": "true"},
                {"name_key": "verification_state", "value": "verified"},
            ]})
        );
    }

    #[test]
    fn custom_fields_read_from_either_shape() {
        let obj = json!({"custom_fields": {"verification_state": "verified", "n": 3, "none": null}});
        let arr = json!({"custom_fields": [{"name_key": "verification_state", "value": "verified"}, {"id": 7, "value": "x"}]});
        assert_eq!(custom_fields_of(&obj).get("n").map(String::as_str), Some("3"));
        assert_eq!(custom_fields_of(&obj).get("none").map(String::as_str), Some(""));
        assert_eq!(custom_fields_of(&arr).get("7").map(String::as_str), Some("x"));
        assert_eq!(custom_fields_of(&arr).get("verification_state").map(String::as_str), Some("verified"));
    }
}
