//! The signed HRIS webhook: a push of each write, Standard Webhooks.

use super::{Call, Checked, Connector, Outcome, classify, unanswered};
use std::collections::BTreeMap;
use vbridge_core::intake::signature::{Secret, sign_standard};
use vbridge_proto::AtsWriteRequest;

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

    async fn check(&self, _keys: &[String]) -> Result<Checked, String> {
        Ok(Checked {
            credentials: "pushes are signed with the configured secret (receivers verify them)".into(),
            missing: vec![],
            note: Some("a webhook receiver has no field catalogue to check".into()),
        })
    }
}
