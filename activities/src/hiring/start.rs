//! Starting a verification at the provider (docs/contract.md §8): Persona
//! (an inquiry, then a one-time link) or Veriff (a session), chosen by
//! `VBRIDGE_START_PROVIDER`. A retried start never creates a second session
//! for one start key:
//! - the key's row (`hiring_starts`) is read first: a start that finished
//!   before a crash is found there;
//! - Persona is asked next for the inquiry tagged with the start's key
//!   (look up before create), and the create itself carries the key as
//!   Persona's `Idempotency-Key`: a crash after Persona created the inquiry
//!   and before the row was kept never makes a second one;
//! - Veriff has no look-up: the window between its answer and the row is
//!   the one place a crash can leave an unused session behind (never
//!   mailed: only the kept session is). docs/hiring.md says so.
//!
//! Failures are classified like the ATS's: 408, 429, 5xx and no answer are
//! retried; any other 4xx is refused for good.

use super::{Outreach, StartRow};
use serde_json::{Value, json};
use std::time::Duration;
use vbridge_core::intake::providers::Reference;
use vbridge_proto::StartRequest;

/// Persona's API host (`VBRIDGE_PERSONA_API_URL`'s default).
pub const PERSONA_API_URL: &str = "https://withpersona.com";
/// Veriff's API host (`VBRIDGE_VERIFF_API_URL`'s default).
pub const VERIFF_API_URL: &str = "https://stationapi.veriff.com";

/// Which provider the bridge starts verifications at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartProvider {
    Persona,
    Veriff,
}

impl StartProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            StartProvider::Persona => "persona",
            StartProvider::Veriff => "veriff",
        }
    }

    pub fn parse(s: &str) -> Option<StartProvider> {
        match s {
            "persona" => Some(StartProvider::Persona),
            "veriff" => Some(StartProvider::Veriff),
            _ => None,
        }
    }
}

/// The provider's API: its base URL and key.
#[derive(Debug, Clone)]
pub struct ProviderApi {
    pub provider: StartProvider,
    pub url: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("refused for good: {0}")]
    Rejected(String),
    #[error("worth retrying: {0}")]
    Transient(String),
}

#[derive(Clone)]
pub struct Starter {
    pub api: Option<ProviderApi>,
    pub http: reqwest::Client,
    pub timeout: Duration,
}

/// An answer the bridge can read, or the failure it is.
async fn answer(what: &str, sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, StartError> {
    let resp = sent.map_err(|e| {
        let how = if e.is_timeout() { "timed out" } else { "could not connect" };
        StartError::Transient(format!("{what} {how}: {e}"))
    })?;
    let status = resp.status().as_u16();
    if status == 408 || status == 429 || status >= 500 {
        return Err(StartError::Transient(format!("{what}: the provider answered {status}")));
    }
    let text = resp.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        let body: String = text.chars().take(200).collect();
        return Err(StartError::Rejected(format!("{what}: the provider answered {status}: {body}")));
    }
    serde_json::from_str(&text)
        .map_err(|e| StartError::Rejected(format!("{what}: the provider's answer is not JSON ({e})")))
}

fn field<'v>(v: &'v Value, pointer: &str, what: &str) -> Result<&'v str, StartError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StartError::Rejected(format!("{what}: the provider's answer has no {pointer}")))
}

impl Starter {
    /// The session for `req.key`: found (false) or created (true).
    pub async fn start(&self, store: &dyn Outreach, req: &StartRequest) -> Result<(StartRow, bool), StartError> {
        let stored = store
            .start(&req.candidate_id, &req.key)
            .await
            .map_err(|e| StartError::Transient(format!("the store: {e}")))?;
        if let Some(row) = stored {
            return Ok((row, false));
        }
        let Some(api) = &self.api else {
            return Err(StartError::Rejected("no provider to start verifications at (VBRIDGE_START_PROVIDER)".into()));
        };
        let reference = Reference::format(&req.candidate_id, &req.application_id);
        let (row, created) = match api.provider {
            StartProvider::Persona => self.persona(api, req, &reference).await?,
            StartProvider::Veriff => (self.veriff(api, &reference).await?, true),
        };
        store
            .put_start(&req.candidate_id, &req.key, &row)
            .await
            .map_err(|e| StartError::Transient(format!("the store: {e}")))?;
        // Another attempt may have kept its row first: the kept one wins.
        let kept = store
            .start(&req.candidate_id, &req.key)
            .await
            .map_err(|e| StartError::Transient(format!("the store: {e}")))?;
        Ok((kept.unwrap_or(row), created))
    }

    async fn persona(
        &self,
        api: &ProviderApi,
        req: &StartRequest,
        reference: &str,
    ) -> Result<(StartRow, bool), StartError> {
        let base = api.url.trim_end_matches('/');
        let auth = format!("Bearer {}", api.key);
        let found = self
            .http
            .get(format!("{base}/api/v1/inquiries"))
            .query(&[("filter[reference-id]", reference)])
            .header("Authorization", &auth)
            .timeout(self.timeout)
            .send()
            .await;
        let list = answer("listing Persona inquiries", found).await?;
        // The start's own inquiry: tagged with its key at creation (a step-up
        // at a tier the trigger also used shares the reference and template).
        let existing = list.get("data").and_then(Value::as_array).and_then(|items| {
            items.iter().find(|i| {
                let tagged = i.pointer("/attributes/tags").and_then(Value::as_array);
                tagged.is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(req.key.as_str())))
            })
        });
        let (id, created) = match existing {
            Some(i) => (field(i, "/id", "a Persona inquiry")?.to_owned(), false),
            None => {
                let body = json!({"data": {"attributes": {
                    "inquiry-template-id": req.template,
                    "reference-id": reference,
                    "tags": [req.key],
                }}});
                // Persona's Idempotency-Key: a create retried with the start's
                // key answers the inquiry the first one made.
                let sent = self
                    .http
                    .post(format!("{base}/api/v1/inquiries"))
                    .header("Authorization", &auth)
                    .header("Idempotency-Key", &req.key)
                    .json(&body)
                    .timeout(self.timeout)
                    .send()
                    .await;
                let made = answer("creating a Persona inquiry", sent).await?;
                (field(&made, "/data/id", "creating a Persona inquiry")?.to_owned(), true)
            }
        };
        let link = self.persona_link(api, &id).await?;
        Ok((StartRow { provider: "persona".into(), session_id: id, link }, created))
    }

    /// A new one-time link to Persona's inquiry `id` (each is good for one
    /// visit).
    async fn persona_link(&self, api: &ProviderApi, id: &str) -> Result<String, StartError> {
        let base = api.url.trim_end_matches('/');
        let sent = self
            .http
            .post(format!("{base}/api/v1/inquiries/{id}/generate-one-time-link"))
            .header("Authorization", format!("Bearer {}", api.key))
            .timeout(self.timeout)
            .send()
            .await;
        let linked = answer("generating Persona's one-time link", sent).await?;
        Ok(field(&linked, "/meta/one-time-link", "generating Persona's one-time link")?.to_owned())
    }

    /// A link for the candidate to take `start`'s check again (a retake):
    /// Persona's one-time link was used by the first attempt, so a new one;
    /// Veriff's session URL stays valid for a resubmission, so the same.
    pub async fn fresh_link(&self, start: &StartRow) -> Result<String, StartError> {
        match (&self.api, StartProvider::parse(&start.provider)) {
            (Some(api), Some(StartProvider::Persona)) if api.provider == StartProvider::Persona => {
                self.persona_link(api, &start.session_id).await
            }
            (None, Some(StartProvider::Persona)) => {
                Err(StartError::Rejected("no Persona API to take a new link from (VBRIDGE_START_PROVIDER)".into()))
            }
            _ => Ok(start.link.clone()),
        }
    }

    async fn veriff(&self, api: &ProviderApi, reference: &str) -> Result<StartRow, StartError> {
        let base = api.url.trim_end_matches('/');
        let body = json!({"verification": {"vendorData": reference}});
        let sent = self
            .http
            .post(format!("{base}/v1/sessions"))
            .header("X-AUTH-CLIENT", &api.key)
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await;
        let made = answer("creating a Veriff session", sent).await?;
        let id = field(&made, "/verification/id", "creating a Veriff session")?.to_owned();
        let link = field(&made, "/verification/url", "creating a Veriff session")?.to_owned();
        Ok(StartRow { provider: "veriff".into(), session_id: id, link })
    }
}
