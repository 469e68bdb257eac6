//! A signing webhook client: what a provider does, for `simulate`, `bench`
//! and the tests.

use crate::intake::signature::{Secret, sign_il, sign_standard};
use serde_json::Value;

#[derive(Clone)]
pub struct WebhookClient {
    pub http: reqwest::Client,
    pub url: String,
    pub secret: Secret,
}

/// The answer the bridge gave.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub trace_id: Option<String>,
    pub retry_after: Option<String>,
}

impl WebhookClient {
    pub fn new(base_url: &str, secret: &str) -> WebhookClient {
        WebhookClient {
            http: reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("HTTP client"),
            url: format!("{}/webhooks/verification", base_url.trim_end_matches('/')),
            secret: Secret::parse(secret, 1).expect("a valid secret"),
        }
    }

    /// Send `body` signed with the IL scheme, timestamped now.
    pub async fn send(&self, body: &Value) -> reqwest::Result<Reply> {
        let bytes = serde_json::to_vec(body).expect("JSON body");
        self.send_il(&self.secret, chrono::Utc::now().timestamp(), bytes).await
    }

    /// Send bytes signed with the IL scheme by `secret` at timestamp `ts`.
    pub async fn send_il(&self, secret: &Secret, ts: i64, bytes: Vec<u8>) -> reqwest::Result<Reply> {
        let sig = sign_il(secret, ts, &bytes);
        self.send_raw(bytes, vec![("X-IL-Timestamp".into(), ts.to_string()), ("X-IL-Signature".into(), sig)]).await
    }

    /// Send `body` signed with Standard Webhooks.
    pub async fn send_standard(&self, id: &str, body: &Value) -> reqwest::Result<Reply> {
        let bytes = serde_json::to_vec(body).expect("JSON body");
        let ts = chrono::Utc::now().timestamp();
        let sig = sign_standard(&self.secret, id, ts, &bytes);
        self.send_raw(
            bytes,
            vec![
                ("webhook-id".into(), id.to_owned()),
                ("webhook-timestamp".into(), ts.to_string()),
                ("webhook-signature".into(), sig),
            ],
        )
        .await
    }

    /// Send bytes with exactly these headers (plus JSON content type).
    pub async fn send_raw(&self, bytes: Vec<u8>, headers: Vec<(String, String)>) -> reqwest::Result<Reply> {
        let mut req = self.http.post(&self.url).header("content-type", "application/json").body(bytes);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (trace_id, retry_after) = (header("x-trace-id"), header("retry-after"));
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok(Reply { status, body, trace_id, retry_after })
    }
}

/// A `verification.started` body.
pub fn started(candidate: &str, application: &str, event_id: &str, occurred_at: &str) -> Value {
    serde_json::json!({
        "event_id": event_id,
        "event_type": "verification.started",
        "occurred_at": occurred_at,
        "idempotency_key": format!("idem-{event_id}"),
        "candidate_id": candidate,
        "application_id": application,
        "verification_check_id": format!("chk-{candidate}-{application}"),
    })
}

/// A `verification.decision` body.
pub fn decision(candidate: &str, application: &str, event_id: &str, occurred_at: &str, state: &str) -> Value {
    let mut v = started(candidate, application, event_id, occurred_at);
    v["event_type"] = "verification.decision".into();
    v["decision_state"] = state.into();
    v["evidence_pack_url"] = format!("https://evidence.example/packs/{event_id}").into();
    if state == "needs_review" {
        v["reason_codes"] = serde_json::json!(["liveness-low"]);
    }
    v
}
