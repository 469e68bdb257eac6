//! ATS connectors, behind one trait: how a write reaches an ATS, how a check
//! is read back (reconciliation), and how each answer is classified. The
//! activity around them (`AtsActivities::write_verification`) keeps what is
//! the same for every ATS: the audit records, the metrics, the retry policy.
//!
//! One room per ATS: `generic` (CONTRACT §4, also the sandbox), `webhook`
//! (a signed push to an HRIS, Standard Webhooks), `greenhouse` (Harvest v3
//! with OAuth2 client credentials, or v1 with Basic auth), `ashby`
//! (`customField.setValues`), `lever` (opportunity tags and notes). Shared
//! here: the trait, the classification of HTTP answers, the field map.
//! Client-side rate limits are in `limit`, the OAuth2 token cache in `oauth`.
//! See docs/connectors.md for each API's shapes and where they come from.

pub mod ashby;
pub mod generic;
pub mod greenhouse;
pub mod lever;
pub mod limit;
pub mod oauth;
pub mod webhook;

pub use generic::GenericRest;
pub use webhook::{SignedWebhook, webhook_body};

use std::collections::BTreeMap;
use std::time::Duration;
use vbridge_proto::AtsWriteRequest;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written {
        status: u16,
    },
    /// Worth another attempt: `reason` for the attempt's record, `message`
    /// for the failure, `delay` when the ATS asked for one (`Retry-After`).
    Retry {
        reason: String,
        message: String,
        delay: Option<Duration>,
    },
    /// Not sent: the client-side rate limit holds writes for `delay` (the
    /// ATS did not fail; the write goes again after the delay).
    Held {
        delay: Duration,
    },
    /// Refused for good (a 4xx other than 408/429).
    Refused {
        status: u16,
        body: String,
    },
}

/// What a connector needs to know about one write.
pub struct Call<'a> {
    pub req: &'a AtsWriteRequest,
    pub timeout: Duration,
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// `generic`, `webhook`, ...: what `VBRIDGE_ATS_KIND` names.
    fn kind(&self) -> &'static str;
    /// One attempt of a write, classified.
    async fn write(&self, call: Call<'_>) -> Outcome;
    /// What the ATS holds for a check (`None`: no such check); an error when
    /// it cannot be read (or the connector cannot read at all).
    async fn read(&self, application_id: &str, check_id: &str) -> Result<Option<BTreeMap<String, String>>, String>;
    /// `vbridge ats check`: do the credentials work, and does the ATS have a
    /// field for each of `keys` (the ATS's keys the bridge writes)? An error
    /// when the credentials or the ATS fail.
    async fn check(&self, keys: &[String]) -> Result<Checked, String>;
    /// One page of the interviews changed since `since` (RFC 3339), or the
    /// page `next` names (a URL an earlier page gave). `Ok(None)`: this ATS
    /// has no interviews to poll (it pushes them, or has none).
    async fn interviews(&self, _since: &str, _next: Option<&str>) -> Result<Option<ListPage>, String> {
        Ok(None)
    }
}

/// A page of an ATS's listing: its items as sent, and the next page's URL.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<serde_json::Value>,
    pub next: Option<String>,
}

/// What `vbridge ats check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    /// What was verified about the credentials (e.g. "token issued for user 1001").
    pub credentials: String,
    /// Keys the ATS has no field for (the names given to `check`).
    pub missing: Vec<String>,
    /// Why fields could not be checked, when the ATS has no field catalogue.
    pub note: Option<String>,
}

/// A request that was never sent because the write cannot be expressed in
/// the ATS's API (e.g. an application id it cannot hold): refused for good.
pub fn unsendable(why: String) -> Outcome {
    Outcome::Refused { status: 0, body: format!("not sent: {why}") }
}

/// The field map (`VBRIDGE_ATS_FIELD_MAP`): the policy's field names to the
/// ATS's keys. Fields it does not name keep their names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap(pub BTreeMap<String, String>);

impl FieldMap {
    pub fn to_ats(&self, fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        fields.iter().map(|(k, v)| (self.0.get(k).cloned().unwrap_or_else(|| k.clone()), v.clone())).collect()
    }

    pub fn from_ats(&self, fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let back: BTreeMap<&String, &String> = self.0.iter().map(|(policy, ats)| (ats, policy)).collect();
        fields
            .iter()
            .map(|(k, v)| (back.get(k).map(|p| (*p).clone()).unwrap_or_else(|| k.clone()), v.clone()))
            .collect()
    }
}

/// Any connector, with its fields renamed by a field map: written under the
/// ATS's keys, read back under the policy's names (reconciliation compares
/// in the policy's names).
pub struct Mapped {
    pub inner: std::sync::Arc<dyn Connector>,
    pub map: FieldMap,
}

#[async_trait::async_trait]
impl Connector for Mapped {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        let mut req = call.req.clone();
        req.fields = self.map.to_ats(&req.fields);
        self.inner.write(Call { req: &req, timeout: call.timeout }).await
    }

    async fn read(&self, application_id: &str, check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        Ok(self.inner.read(application_id, check_id).await?.map(|f| self.map.from_ats(&f)))
    }

    async fn check(&self, keys: &[String]) -> Result<Checked, String> {
        let ats: Vec<String> = keys.iter().map(|k| self.map.0.get(k).cloned().unwrap_or_else(|| k.clone())).collect();
        let mut checked = self.inner.check(&ats).await?;
        // Report a missing field by the policy's name and the ATS's key.
        let back: BTreeMap<&String, &String> = self.map.0.iter().map(|(p, a)| (a, p)).collect();
        checked.missing = checked
            .missing
            .iter()
            .map(|k| match back.get(k) {
                Some(p) => format!("{p} (ATS key {k})"),
                None => k.clone(),
            })
            .collect();
        Ok(checked)
    }
}

/// The classification every HTTP connector shares: 2xx written; 408, 429
/// (with its `Retry-After`, else its `X-RateLimit-Reset`), 5xx retryable;
/// any other 4xx refused for good.
pub async fn classify(resp: reqwest::Response) -> Outcome {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Outcome::Written { status };
    }
    if status == 408 || status == 429 || status >= 500 {
        let delay = if status == 429 { throttled_for(resp.headers()) } else { None };
        return Outcome::Retry { reason: format!("HTTP {status}"), message: format!("ATS answered {status}"), delay };
    }
    let text = resp.text().await.unwrap_or_default();
    Outcome::Refused { status, body: text.chars().take(200).collect() }
}

/// How long a throttled answer asks to wait: `Retry-After` (seconds or a
/// date), else `X-RateLimit-Reset` (Unix seconds, as Greenhouse sends),
/// capped like every delay.
pub fn throttled_for(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let now = std::time::SystemTime::now();
    if let Some(v) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        return crate::parse_retry_after(v, now);
    }
    let reset: u64 = headers.get("x-ratelimit-reset")?.to_str().ok()?.trim().parse().ok()?;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(reset);
    Some(at.duration_since(now).unwrap_or_default().min(crate::RETRY_AFTER_CAP))
}

/// A JSON value as the text the bridge compares: strings as they are, null
/// as empty, anything else as its JSON.
pub fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Send one request under a rate limiter: wait for a slot (at most the
/// write's timeout), send, and let the limiter learn from the answer. An
/// `Err` is the attempt's outcome (no slot in time, or no answer).
pub async fn paced_send(
    limiter: &limit::Limiter,
    req: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, Outcome> {
    if let Err(wait) = limiter.acquire(timeout).await {
        return Err(Outcome::Held { delay: wait });
    }
    match req.timeout(timeout).send().await {
        Ok(resp) => {
            limiter.observe(resp.status().as_u16(), resp.headers());
            Ok(resp)
        }
        Err(e) => Err(unanswered(e)),
    }
}

/// A request that never got an answer: retryable.
pub fn unanswered(e: reqwest::Error) -> Outcome {
    let what = if e.is_timeout() { "timed out" } else { "could not connect" };
    Outcome::Retry { reason: format!("ATS write {what}"), message: format!("ATS write {what}: {e}"), delay: None }
}
