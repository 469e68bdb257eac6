//! What each real provider sends (docs/contract.md §7, docs/providers.md):
//! its body shape, from the vendor's public docs (cited in the adapters,
//! `vbridge_core::intake::providers`), signed as the vendor signs. For the
//! tests now, for `simulate --provider` later. Each body carries a
//! candidate's personal data, as the real ones do, so that tests can show
//! none of it is kept.

use super::client::Reply;
use crate::intake::signature::Secret;
use serde_json::{Value, json};
use vbridge_core::intake::providers::{Adapter, Alg, ProviderKind, onfido, persona, sumsub, veriff};

/// The secret `vbridge dev` configures for a provider left unconfigured, and
/// `simulate --provider` signs with when given none: dev only, printed.
pub fn dev_secret(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Persona => "wbhsec_dev-persona-change-me",
        ProviderKind::Onfido => "dev-onfido-token-change-me",
        ProviderKind::Veriff => "dev-veriff-shared-secret-change-me",
        ProviderKind::Sumsub => "dev-sumsub-secret-change-me",
        ProviderKind::Custom => unreachable!("a declared provider is configured, not simulated"),
    }
}

/// Veriff's API key (`X-AUTH-CLIENT`) in dev.
pub const DEV_VERIFF_API_KEY: &str = "dev-veriff-api-key";

/// The setting that holds a provider's secrets (comma-separated, rotation).
pub fn secret_var(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Persona => "VBRIDGE_PERSONA_WEBHOOK_SECRETS",
        ProviderKind::Onfido => "VBRIDGE_ONFIDO_WEBHOOK_TOKENS",
        ProviderKind::Veriff => "VBRIDGE_VERIFF_SHARED_SECRETS",
        ProviderKind::Sumsub => "VBRIDGE_SUMSUB_WEBHOOK_SECRETS",
        ProviderKind::Custom => unreachable!("a declared provider is configured, not simulated"),
    }
}

/// The provider's adapter with its dev secret (`vbridge dev`).
pub fn dev_adapter(kind: ProviderKind) -> Box<dyn Adapter> {
    let secrets = vec![Secret::raw(dev_secret(kind), 1).expect("a dev secret")];
    match kind {
        ProviderKind::Persona => Box::new(persona::Persona { secrets }),
        ProviderKind::Onfido => Box::new(onfido::Onfido { tokens: secrets }),
        ProviderKind::Veriff => Box::new(veriff::Veriff { secrets, api_key: DEV_VERIFF_API_KEY.to_owned() }),
        ProviderKind::Sumsub => Box::new(sumsub::Sumsub { secrets }),
        ProviderKind::Custom => unreachable!("a declared provider is configured, not simulated"),
    }
}

/// Personal data the bodies carry; none of it may be kept anywhere.
pub const PII: [&str; 6] =
    ["Jane-PII-Doe", "1987-06-05", "7 PII Street", "DOC-PII-998877", "198.51.100.77", "PII@mail"];

/// What the provider decided, in the bridge's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    Verified,
    NeedsReview,
    Failed,
    Retake,
    Expired,
}

/// A provider's signing material, as configured in the bridge.
pub struct Signer {
    pub kind: ProviderKind,
    pub secret: Secret,
    /// Veriff's API key (`X-AUTH-CLIENT`).
    pub api_key: String,
}

impl Signer {
    pub fn new(kind: ProviderKind, secret: &str, api_key: &str) -> Signer {
        Signer { kind, secret: Secret::raw(secret, 1).expect("a secret"), api_key: api_key.to_owned() }
    }

    /// The headers the vendor sends with `bytes`, at `now` (Unix seconds).
    pub fn headers(&self, bytes: &[u8], now: i64) -> Vec<(String, String)> {
        let s = std::slice::from_ref(&self.secret);
        match self.kind {
            ProviderKind::Persona => vec![(persona::SIGNATURE_HEADER.into(), persona::sign(s, now, bytes))],
            ProviderKind::Onfido => vec![(onfido::SIGNATURE_HEADER.into(), onfido::sign(&self.secret, bytes))],
            ProviderKind::Veriff => vec![
                ("X-AUTH-CLIENT".into(), self.api_key.clone()),
                ("X-HMAC-SIGNATURE".into(), veriff::sign(&self.secret, bytes)),
            ],
            ProviderKind::Sumsub => vec![
                (sumsub::DIGEST_HEADER.into(), sumsub::sign(Alg::Sha256, &self.secret, bytes)),
                (sumsub::ALG_HEADER.into(), "HMAC_SHA256_HEX".into()),
            ],
            ProviderKind::Custom => unreachable!("a declared provider is configured, not simulated"),
        }
    }

    /// POST `bytes` to the provider's route with exactly `headers`.
    pub async fn send_raw(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        bytes: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> reqwest::Result<Reply> {
        let url = format!("{}/webhooks/{}", base_url.trim_end_matches('/'), self.kind.as_str());
        let mut req = http.post(url).header("content-type", "application/json").body(bytes);
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

    /// Sign `body` now and send it.
    pub async fn send(&self, http: &reqwest::Client, base_url: &str, body: &Value) -> reqwest::Result<Reply> {
        let bytes = serde_json::to_vec(body).expect("JSON body");
        let headers = self.headers(&bytes, chrono::Utc::now().timestamp());
        self.send_raw(http, base_url, bytes, headers).await
    }
}

/// The vendor's body for `outcome` of the verification whose reference is
/// `reference` (`"{candidate}:{application}"`, or anything for a test of a
/// bad one); `check` is the provider's id of the verification, `n` makes the
/// event unique, `at` is the event's time (RFC 3339, UTC, whole seconds).
pub fn body(kind: ProviderKind, outcome: Outcome, reference: &str, check: &str, n: u32, at: &str) -> Value {
    match kind {
        ProviderKind::Persona => persona_body(outcome, reference, check, n, at),
        ProviderKind::Onfido => onfido_body(outcome, reference, check, at),
        ProviderKind::Veriff => veriff_body(outcome, reference, check, n, at),
        ProviderKind::Sumsub => sumsub_body(outcome, reference, check, n, at),
        ProviderKind::Custom => unreachable!("a declared provider is configured, not simulated"),
    }
}

fn persona_body(outcome: Outcome, reference: &str, check: &str, n: u32, at: &str) -> Value {
    let (name, status) = match outcome {
        Outcome::Started => ("inquiry.started", "pending"),
        Outcome::Verified => ("inquiry.approved", "approved"),
        Outcome::NeedsReview => ("inquiry.marked-for-review", "needs_review"),
        Outcome::Failed => ("inquiry.declined", "declined"),
        Outcome::Retake => ("verification.requires-retry", "requires_retry"),
        Outcome::Expired => ("inquiry.expired", "expired"),
    };
    let verification = if outcome == Outcome::Failed || outcome == Outcome::NeedsReview { "failed" } else { "passed" };
    json!({"data": {"type": "event", "id": format!("evt_{check}{n}"), "attributes": {
    "name": name, "created-at": at, "redacted-at": null,
    "payload": {
        "data": {"type": "inquiry", "id": check, "attributes": {
            "status": status, "reference-id": reference, "created-at": at,
            "name-first": PII[0], "birthdate": PII[1], "address-street-1": PII[2],
            "email-address": PII[5], "ip-address": PII[4]}},
        "included": [{"type": "verification/government-id", "id": format!("ver_{check}"), "attributes": {
            "status": verification, "identification-number": PII[3], "name-first": PII[0], "birthdate": PII[1],
            "checks": [{"name": "id_expired", "status": verification, "reasons": []}]}}]
    }}}})
}

fn onfido_body(outcome: Outcome, reference: &str, run: &str, at: &str) -> Value {
    let output = json!({"first_name": PII[0], "date_of_birth": PII[1], "address": PII[2],
        "document_number": PII[3], "ip_address": PII[4], "email": PII[5]});
    if outcome == Outcome::Started {
        return json!({"payload": {"resource_type": "workflow_task", "action": "workflow_task.started",
            "object": {"id": "profile_1eb92", "task_spec_id": "profile_1eb92", "task_def_id": "profile_data",
                "workflow_run_id": run, "status": "started", "started_at_iso8601": at,
                "href": format!("https://api.eu.onfido.com/v3.6/workflow_runs/{run}/tasks/profile_1eb92")},
            "resource": {"id": "profile_1eb92", "workflow_run_id": run, "customer_user_id": reference,
                "created_at": at, "updated_at": at, "input": output, "task_def_id": "profile_data", "output": null}}});
    }
    let status = match outcome {
        Outcome::Verified => "approved",
        Outcome::NeedsReview => "review",
        Outcome::Failed => "declined",
        Outcome::Expired => "abandoned",
        Outcome::Retake | Outcome::Started => "awaiting_input",
    };
    json!({"payload": {"resource_type": "workflow_run", "action": "workflow_run.completed",
        "object": {"id": run, "status": status, "completed_at_iso8601": at,
            "href": format!("https://api.eu.onfido.com/v3.6/workflow_runs/{run}")},
        "resource": {"id": run, "status": status, "customer_user_id": reference,
            "workflow_id": "5b9a3fd2-bd29-4bd3-a4ef-e2e1ea2a0d3b", "workflow_version_id": 3,
            "applicant_id": "7af75a3a-ba34-4aa5-9e3e-096c9f56256b", "reasons": ["document_expired"], "tags": [],
            "output": output, "created_at": at, "updated_at": at,
            "dashboard_url": format!("https://dashboard.onfido.com/results/{run}")}}})
}

fn veriff_body(outcome: Outcome, reference: &str, session: &str, n: u32, at: &str) -> Value {
    let attempt = format!("00bca969-b53a-4fad-b065-{n:012}");
    let (status, code) = match outcome {
        Outcome::Started => {
            return json!({"id": session, "attemptId": attempt, "feature": "selfid", "code": 7001,
                "action": "started", "vendorData": reference, "endUserId": null});
        }
        Outcome::Verified => ("approved", 9001),
        Outcome::NeedsReview => ("review", 9121),
        Outcome::Failed => ("declined", 9102),
        Outcome::Retake => ("resubmission_requested", 9103),
        Outcome::Expired => ("expired", 9104),
    };
    let reason_code = if outcome == Outcome::Verified { Value::Null } else { json!(102) };
    json!({"status": "success", "verification": {
        "id": session, "attemptId": attempt, "vendorData": reference, "endUserId": null,
        "status": status, "code": code, "reason": null, "reasonCode": reason_code,
        "decisionTime": at, "acceptanceTime": at,
        "person": {"firstName": PII[0], "lastName": "DOE", "dateOfBirth": PII[1], "idNumber": PII[3],
            "addresses": [{"fullAddress": PII[2]}]},
        "document": {"number": PII[3], "type": "PASSPORT", "country": "EE"},
        "additionalVerifiedData": {}, "riskLabels": []},
        "technicalData": {"ip": PII[4]}})
}

fn sumsub_body(outcome: Outcome, reference: &str, applicant: &str, n: u32, at: &str) -> Value {
    // createdAtMs: `yyyy-MM-dd HH:mm:ss.fff`, UTC.
    let created = chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let (kind, review) = match outcome {
        Outcome::Started => ("applicantPending", None),
        Outcome::Verified => ("applicantReviewed", Some(json!({"reviewAnswer": "GREEN"}))),
        Outcome::NeedsReview => ("applicantOnHold", None),
        Outcome::Failed => ("applicantReviewed", Some(red("FINAL"))),
        Outcome::Retake => ("applicantReviewed", Some(red("RETRY"))),
        Outcome::Expired => ("applicantDeactivated", None),
    };
    let mut b = json!({"applicantId": applicant, "inspectionId": format!("{applicant}i"),
        "correlationId": format!("req-{applicant}-{n}"), "externalUserId": reference,
        "levelName": "basic-kyc-level", "type": kind, "sandboxMode": false,
        "reviewStatus": if review.is_some() { "completed" } else { "pending" },
        "createdAtMs": created, "applicantType": "individual"});
    if let Some(r) = review {
        b["reviewResult"] = r;
    }
    b
}

fn red(reject_type: &str) -> Value {
    json!({"reviewAnswer": "RED", "rejectLabels": ["FORGERY"], "reviewRejectType": reject_type,
        "moderationComment": "", "clientComment": ""})
}
