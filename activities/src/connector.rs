//! ATS connectors, behind one trait: how a write reaches an ATS, how a check
//! is read back (reconciliation), and how each answer is classified. The
//! activity around them (`AtsActivities::write_verification`) keeps what is
//! the same for every ATS: the audit records, the metrics, the retry policy.
//!
//! Built here: `generic` (CONTRACT §4, also the sandbox) and `webhook` (a
//! signed push to an HRIS or any receiver, Standard Webhooks). The
//! commercial ATS connectors (Greenhouse, Ashby, Lever) come with the
//! connectors issue; see docs/connectors.md.

use crate::check_url;
use std::collections::BTreeMap;
use std::time::Duration;
use vbridge_core::intake::signature::{Secret, sign_standard};
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
}

/// The classification every HTTP connector shares: 2xx written; 408, 429
/// (with its `Retry-After`), 5xx retryable; any other 4xx refused for good.
pub async fn classify(resp: reqwest::Response) -> Outcome {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Outcome::Written { status };
    }
    if status == 408 || status == 429 || status >= 500 {
        let delay = if status == 429 { crate::retry_after(&resp) } else { None };
        return Outcome::Retry { reason: format!("HTTP {status}"), message: format!("ATS answered {status}"), delay };
    }
    let text = resp.text().await.unwrap_or_default();
    Outcome::Refused { status, body: text.chars().take(200).collect() }
}

/// A request that never got an answer: retryable.
pub fn unanswered(e: reqwest::Error) -> Outcome {
    let what = if e.is_timeout() { "timed out" } else { "could not connect" };
    Outcome::Retry { reason: format!("ATS write {what}"), message: format!("ATS write {what}: {e}"), delay: None }
}

/// CONTRACT §4: `PUT {base}/applications/{a}/verification-checks/{c}` with
/// `{"candidate_id","fields"}`; `GET` on the same path reads it back.
pub struct GenericRest {
    pub client: reqwest::Client,
    pub base_url: String,
    pub bearer_token: Option<String>,
}

#[async_trait::async_trait]
impl Connector for GenericRest {
    fn kind(&self) -> &'static str {
        "generic"
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        let req = call.req;
        let url = check_url(&self.base_url, &req.application_id, &req.verification_check_id);
        let body = serde_json::json!({ "candidate_id": req.candidate_id, "fields": req.fields });
        let mut http = self
            .client
            .put(&url)
            .timeout(call.timeout)
            .header("Idempotency-Key", &req.idempotency_key)
            .header("X-Trace-Id", &req.trace_id)
            .json(&body);
        if let Some(token) = &self.bearer_token {
            http = http.bearer_auth(token);
        }
        match http.send().await {
            Ok(resp) => classify(resp).await,
            Err(e) => unanswered(e),
        }
    }

    async fn read(&self, application_id: &str, check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let mut http = self.client.get(check_url(&self.base_url, application_id, check_id));
        if let Some(token) = &self.bearer_token {
            http = http.bearer_auth(token);
        }
        let resp = http.send().await.map_err(|e| e.to_string())?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        let fields = body.get("fields").and_then(|f| f.as_object()).cloned().unwrap_or_default();
        Ok(Some(
            fields
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                .collect(),
        ))
    }
}

/// A signed push of each write to one URL (an HRIS, a data pipeline):
/// `POST` of `{"type":"verification.updated","candidate_id","application_id",
/// "verification_check_id","fields"}`, signed with Standard Webhooks
/// (`webhook-id` = the write's idempotency key, `webhook-timestamp`,
/// `webhook-signature: v1,<base64>`), with `Idempotency-Key` and
/// `X-Trace-Id`. A webhook cannot be read back: reconciliation counts its
/// checks as unreadable.
pub struct SignedWebhook {
    pub client: reqwest::Client,
    pub url: String,
    pub secret: Secret,
}

/// The body a signed webhook push carries.
pub fn webhook_body(req: &AtsWriteRequest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "verification.updated",
        "candidate_id": req.candidate_id,
        "application_id": req.application_id,
        "verification_check_id": req.verification_check_id,
        "fields": req.fields,
    }))
    .expect("a JSON object serializes")
}

#[async_trait::async_trait]
impl Connector for SignedWebhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        let req = call.req;
        let body = webhook_body(req);
        let ts = chrono::Utc::now().timestamp();
        let http = self
            .client
            .post(&self.url)
            .timeout(call.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &req.idempotency_key)
            .header("X-Trace-Id", &req.trace_id)
            .header("webhook-id", &req.idempotency_key)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign_standard(&self.secret, &req.idempotency_key, ts, &body))
            .body(body);
        match http.send().await {
            Ok(resp) => classify(resp).await,
            Err(e) => unanswered(e),
        }
    }

    async fn read(&self, _application_id: &str, _check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        Err("a webhook connector cannot read back what it pushed".into())
    }
}
