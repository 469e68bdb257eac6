//! The generic REST connector (CONTRACT §4), which the sandbox and an
//! in-house ATS speak.

use super::{Call, Checked, Connector, Outcome, classify, unanswered};
use crate::check_url;
use std::collections::BTreeMap;

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
        Ok(Some(fields.into_iter().map(|(k, v)| (k, super::text_of(&v))).collect()))
    }

    async fn check(&self, _keys: &[String]) -> Result<Checked, String> {
        Ok(Checked {
            credentials: if self.bearer_token.is_some() {
                "a bearer token is set (sent on every write)"
            } else {
                "no credentials configured"
            }
            .into(),
            missing: vec![],
            note: Some("the generic REST shape has no field catalogue: any field is accepted".into()),
        })
    }
}
