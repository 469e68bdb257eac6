//! Veriff (docs/contract.md §7).
//!
//! Signature: `X-HMAC-SIGNATURE` (or `vrf-hmac-signature`): hex HMAC-SHA256
//! of the raw body keyed with the integration's shared secret; no timestamp.
//! `X-AUTH-CLIENT` (or `vrf-auth-client`) carries the integration's API key
//! and, when sent, must equal the configured one.
//! <https://devdocs.veriff.com/docs/hmac-authentication-and-endpoint-security>.
//!
//! Bodies: the decision webhook, `{"status": "success", "verification":
//! {"id", "attemptId", "vendorData", "status", "code", "reason",
//! "reasonCode", "decisionTime", "acceptanceTime", "person": {…},
//! "document": {…}, …}, "technicalData": {"ip"}}`
//! (<https://devdocs.veriff.com/docs/decision-webhook>), and the event
//! webhook, `{"id", "attemptId", "feature", "code", "action", "vendorData",
//! "endUserId"}` (<https://devdocs.veriff.com/docs/event-webhook>).

use super::{Adapter, Alg, Clock, Mapping, Meaning, ProviderKind, Read, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{Secret, SignatureError};
use serde_json::Value;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADERS: [&str; 2] = ["X-HMAC-SIGNATURE", "vrf-hmac-signature"];
pub const AUTH_CLIENT_HEADERS: [&str; 2] = ["X-AUTH-CLIENT", "vrf-auth-client"];

pub struct Veriff {
    pub secrets: Vec<Secret>,
    pub api_key: String,
}

/// A decision's status → meaning.
fn decision(status: &str) -> Option<Meaning> {
    Some(match status {
        "approved" => Meaning::Verified,
        "review" => Meaning::NeedsReview,
        "declined" => Meaning::Failed,
        "resubmission_requested" => Meaning::Retake,
        "expired" | "abandoned" => Meaning::Expired,
        _ => return None,
    })
}

/// An event's action → meaning.
fn event(action: &str) -> Option<Meaning> {
    (action == "started").then_some(Meaning::Started)
}

impl Adapter for Veriff {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Veriff
    }

    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        _clock: &Clock,
    ) -> Result<(), SignatureError> {
        let value = bounded(header, &SIGNATURE_HEADERS)?;
        let candidates: Vec<Vec<u8>> = hex_digest(value, Alg::Sha256).into_iter().collect();
        let signed = any_matches(Alg::Sha256, &self.secrets, &[body], &candidates);
        let client_ok = match AUTH_CLIENT_HEADERS.iter().find_map(|n| header(n)) {
            Some(sent) => bool::from(sent.trim().as_bytes().ct_eq(self.api_key.as_bytes())),
            None => true,
        };
        if signed && client_ok { Ok(()) } else { Err(SignatureError::InvalidSignature) }
    }

    fn map(&self, body: &Value) -> Mapping {
        let is_decision = body.get("verification").is_some_and(Value::is_object);
        let (root, status, meaning, name) = if is_decision {
            let status = str_at(body, "/verification/status").unwrap_or("");
            ("/verification", status, decision(status), "decision")
        } else {
            let action = str_at(body, "/action").unwrap_or("");
            ("", action, event(action), "event")
        };
        let session = str_at(body, &format!("{root}/id"));
        let attempt = str_at(body, &format!("{root}/attemptId"));
        let event_key = match (session.and_then(super::key_part), super::key_part(status)) {
            (Some(s), Some(st)) => Some(match attempt.and_then(super::key_part) {
                Some(a) => format!("{s}:{a}:{st}"),
                None => format!("{s}:{st}"),
            }),
            _ => None,
        };
        let reason_code = body.pointer("/verification/reasonCode").filter(|v| !v.is_null());
        Read {
            provider: ProviderKind::Veriff,
            provider_event: format!("{name}.{}", status.chars().take(64).collect::<String>()),
            provider_status: Some(status.chars().take(64).collect()),
            meaning,
            event_key,
            reference: str_at(body, &format!("{root}/vendorData")),
            check_id: session,
            occurred_at: if is_decision { super::rfc3339(str_at(body, "/verification/decisionTime")) } else { None },
            labels: super::labels(reason_code.into_iter()),
        }
        .settle()
    }
}

/// `X-HMAC-SIGNATURE` for `body`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    super::sign_hex(Alg::Sha256, secret, &[body])
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{headers, lookup};
    use super::super::{IgnoreReason, Reference};
    use super::*;
    use serde_json::json;

    fn adapter() -> Veriff {
        Veriff { secrets: vec![Secret::raw("shared-secret", 1).unwrap()], api_key: "api-key-1".into() }
    }

    fn clock() -> Clock {
        Clock { now_unix: 0, max_skew_seconds: 300, replay_protection: true }
    }

    /// The decision webhook's documented shape, with planted PII.
    pub fn decision_body(status: &str, reason_code: Option<u32>, vendor_data: Option<&str>) -> Value {
        json!({"status": "success", "verification": {
            "id": "12df6045-3846-3e45-946a-14fa6136d78b", "attemptId": "00bca969-b53a-4fad-b065-874d41a7b2b8",
            "vendorData": vendor_data, "endUserId": null, "status": status, "code": 9001,
            "reason": null, "reasonCode": reason_code,
            "decisionTime": "2026-03-09T11:56:26.085Z", "acceptanceTime": "2026-03-09T11:50:12.000Z",
            "person": {"firstName": "JANE", "lastName": "DOE", "dateOfBirth": "1990-01-01", "idNumber": "38508260268"},
            "document": {"number": "MM1234567", "type": "PASSPORT", "country": "EE"}},
            "technicalData": {"ip": "203.0.113.7"}})
    }

    #[test]
    fn signature_either_header_and_the_api_key() {
        let a = adapter();
        let body = br#"{"status":"success"}"#;
        let sig = sign(&a.secrets[0], body);
        for name in ["X-HMAC-SIGNATURE", "x-hmac-signature", "vrf-hmac-signature", "VRF-HMAC-SIGNATURE"] {
            let h = headers(&[(name, sig.clone())]);
            assert_eq!(a.verify(&lookup(&h), body, &clock()), Ok(()), "{name}");
        }
        for client in ["X-AUTH-CLIENT", "vrf-auth-client"] {
            let h = headers(&[("X-HMAC-SIGNATURE", sig.clone()), (client, "api-key-1".into())]);
            assert_eq!(a.verify(&lookup(&h), body, &clock()), Ok(()));
            let h = headers(&[("X-HMAC-SIGNATURE", sig.clone()), (client, "someone-else".into())]);
            assert_eq!(a.verify(&lookup(&h), body, &clock()), Err(SignatureError::InvalidSignature));
        }
        let h = headers(&[("X-HMAC-SIGNATURE", sig.clone())]);
        assert_eq!(a.verify(&lookup(&h), b"{}", &clock()), Err(SignatureError::InvalidSignature));
        assert_eq!(a.verify(&|_: &str| None::<&str>, body, &clock()), Err(SignatureError::MissingSignature));
    }

    #[test]
    fn the_meaning_table() {
        let a = adapter();
        let rows: &[(&str, Result<Meaning, IgnoreReason>)] = &[
            ("approved", Ok(Meaning::Verified)),
            ("review", Ok(Meaning::NeedsReview)),
            ("declined", Ok(Meaning::Failed)),
            ("resubmission_requested", Ok(Meaning::Retake)),
            ("expired", Ok(Meaning::Expired)),
            ("abandoned", Ok(Meaning::Expired)),
            ("submitted", Err(IgnoreReason::NoMeaning)),
        ];
        for (status, want) in rows {
            match (a.map(&decision_body(status, Some(102), Some("cand_1:app_1"))), want) {
                (Mapping::Event(e), Ok(m)) => {
                    assert_eq!(e.meaning, *m);
                    assert_eq!(e.check_id.as_str(), "12df6045-3846-3e45-946a-14fa6136d78b");
                    assert_eq!(
                        e.event_key,
                        format!("12df6045-3846-3e45-946a-14fa6136d78b:00bca969-b53a-4fad-b065-874d41a7b2b8:{status}")
                    );
                    assert_eq!(e.labels, vec!["102"]);
                    assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2026-03-09T11:56:26.085+00:00");
                }
                (Mapping::Ignored(i), Err(r)) => assert_eq!(i.reason, *r, "{status}"),
                (other, _) => panic!("{status}: {other:?}"),
            }
        }
        let Mapping::Ignored(i) = a.map(&decision_body("approved", None, None)) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoReference);
    }

    #[test]
    fn the_event_webhook_started() {
        let a = adapter();
        let started = json!({"id": "f04bdb47-d3be-4b28-b028-a652feb060b5", "attemptId": "e30122d1-740b-4764-853f-470374a7abf4",
            "feature": "selfid", "code": 7001, "action": "started", "vendorData": "cand_1:app_1", "endUserId": null});
        let Mapping::Event(e) = a.map(&started) else { panic!() };
        assert_eq!(e.meaning, Meaning::Started);
        assert_eq!(e.reference, Reference::parse("cand_1:app_1").unwrap());
        assert_eq!(e.occurred_at, None);
        let mut submitted = started.clone();
        submitted["action"] = "submitted".into();
        let Mapping::Ignored(i) = a.map(&submitted) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoMeaning);
    }
}
