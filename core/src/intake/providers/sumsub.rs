//! Sumsub (docs/contract.md §7).
//!
//! Signature: `X-Payload-Digest: <hex>`, the HMAC of the raw body keyed with
//! the webhook's secret key, under the algorithm `X-Payload-Digest-Alg`
//! names (`HMAC_SHA1_HEX`, `HMAC_SHA256_HEX`, `HMAC_SHA512_HEX`); no timestamp.
//! <https://docs.sumsub.com/docs/webhook-manager#verify-webhook-sender>.
//!
//! Body: `{"applicantId", "inspectionId", "correlationId", "externalUserId",
//! "levelName", "type", "reviewStatus", "createdAtMs", "reviewResult":
//! {"reviewAnswer", "rejectLabels", "reviewRejectType", …}, …}`; the time is
//! `yyyy-MM-dd HH:mm:ss.fff`, UTC. Sumsub sends no personal data in webhooks.
//! <https://docs.sumsub.com/docs/user-verification-webhooks>,
//! <https://docs.sumsub.com/docs/receive-and-interpret-results-via-api>.

use super::{Adapter, Alg, Clock, Mapping, Meaning, ProviderKind, Read, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{Secret, SignatureError};
use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::Value;

pub const DIGEST_HEADER: &str = "X-Payload-Digest";
pub const ALG_HEADER: &str = "X-Payload-Digest-Alg";

pub struct Sumsub {
    pub secrets: Vec<Secret>,
}

pub fn alg(name: &str) -> Option<Alg> {
    Some(match name.trim() {
        "HMAC_SHA1_HEX" => Alg::Sha1,
        "HMAC_SHA256_HEX" => Alg::Sha256,
        "HMAC_SHA512_HEX" => Alg::Sha512,
        _ => return None,
    })
}

/// (type, review answer, reject type) → meaning.
fn meaning(kind: &str, answer: Option<&str>, reject: Option<&str>) -> Option<Meaning> {
    Some(match (kind, answer, reject) {
        ("applicantCreated" | "applicantPending", _, _) => Meaning::Started,
        ("applicantReviewed", Some("GREEN"), _) => Meaning::Verified,
        ("applicantReviewed", Some("RED"), Some("FINAL")) => Meaning::Failed,
        ("applicantReviewed", Some("RED"), Some("RETRY")) => Meaning::Retake,
        ("applicantOnHold", _, _) => Meaning::NeedsReview,
        _ => return None,
    })
}

/// `createdAtMs`: `2021-05-14 16:00:25.032`, UTC.
fn created_at(s: Option<&str>) -> Option<DateTime<FixedOffset>> {
    let t = NaiveDateTime::parse_from_str(s?, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(t.and_utc().fixed_offset())
}

impl Adapter for Sumsub {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sumsub
    }

    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        _clock: &Clock,
    ) -> Result<(), SignatureError> {
        let digest = bounded(header, &[DIGEST_HEADER])?;
        let alg = header(ALG_HEADER).and_then(alg).ok_or(SignatureError::InvalidSignature)?;
        let candidates: Vec<Vec<u8>> = hex_digest(digest, alg).into_iter().collect();
        if any_matches(alg, &self.secrets, &[body], &candidates) {
            Ok(())
        } else {
            Err(SignatureError::InvalidSignature)
        }
    }

    fn map(&self, body: &Value) -> Mapping {
        let kind = str_at(body, "/type").unwrap_or("");
        let answer = str_at(body, "/reviewResult/reviewAnswer");
        let reject = str_at(body, "/reviewResult/reviewRejectType");
        let labels = body.pointer("/reviewResult/rejectLabels").and_then(Value::as_array);
        Read {
            provider: ProviderKind::Sumsub,
            provider_event: kind.chars().take(128).collect(),
            provider_status: answer.map(|a| a.chars().take(64).collect()),
            meaning: meaning(kind, answer, reject),
            event_key: str_at(body, "/correlationId").and_then(super::key_part).map(str::to_owned),
            reference: str_at(body, "/externalUserId"),
            check_id: str_at(body, "/applicantId"),
            occurred_at: created_at(str_at(body, "/createdAtMs")),
            labels: super::labels(labels.into_iter().flatten()),
        }
        .settle()
    }
}

/// `X-Payload-Digest` for `body` under `alg`.
pub fn sign(alg: Alg, secret: &Secret, body: &[u8]) -> String {
    super::sign_hex(alg, secret, &[body])
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{headers, lookup};
    use super::super::{IgnoreReason, Reference};
    use super::*;
    use serde_json::json;

    fn clock() -> Clock {
        Clock { now_unix: 0, max_skew_seconds: 300, replay_protection: true }
    }

    /// `applicantReviewed` as Sumsub documents it.
    pub fn reviewed(answer: &str, reject: Option<&str>, external: Option<&str>) -> Value {
        json!({"applicantId": "5cb56e8e0a975a35f333cb83", "inspectionId": "5cb56e8e0a975a35f333cb84",
            "correlationId": "req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4", "externalUserId": external,
            "levelName": "basic-kyc-level", "type": "applicantReviewed", "sandboxMode": false,
            "reviewStatus": "completed", "createdAtMs": "2026-03-09 13:23:19.321", "applicantType": "individual",
            "reviewResult": {"moderationComment": "", "clientComment": "", "reviewAnswer": answer,
                "rejectLabels": ["FORGERY", "SELFIE_MISMATCH"], "reviewRejectType": reject}})
    }

    #[test]
    fn each_algorithm_and_rotation() {
        let a = Sumsub { secrets: vec![Secret::raw("new", 1).unwrap(), Secret::raw("old", 2).unwrap()] };
        let body = br#"{"type":"applicantReviewed"}"#;
        for (name, alg) in
            [("HMAC_SHA1_HEX", Alg::Sha1), ("HMAC_SHA256_HEX", Alg::Sha256), ("HMAC_SHA512_HEX", Alg::Sha512)]
        {
            let sig = sign(alg, &a.secrets[1], body);
            let h = headers(&[(DIGEST_HEADER, sig.clone()), (ALG_HEADER, name.into())]);
            assert_eq!(a.verify(&lookup(&h), body, &clock()), Ok(()), "{name}");
            assert_eq!(a.verify(&lookup(&h), b"{}", &clock()), Err(SignatureError::InvalidSignature), "{name}");
            // The digest under another algorithm than the one named is refused.
            let h = headers(&[(DIGEST_HEADER, sig), (ALG_HEADER, "HMAC_MD5_HEX".into())]);
            assert_eq!(a.verify(&lookup(&h), body, &clock()), Err(SignatureError::InvalidSignature));
        }
        // SHA-1 known answer (RFC 2202 test case 2).
        assert_eq!(
            sign(Alg::Sha1, &Secret::raw("Jefe", 1).unwrap(), b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn the_meaning_table() {
        let a = Sumsub { secrets: vec![] };
        let rows: &[(Value, Result<Meaning, IgnoreReason>)] = &[
            (reviewed("GREEN", None, Some("c:a")), Ok(Meaning::Verified)),
            (reviewed("RED", Some("FINAL"), Some("c:a")), Ok(Meaning::Failed)),
            (reviewed("RED", Some("RETRY"), Some("c:a")), Ok(Meaning::Retake)),
            (reviewed("RED", None, Some("c:a")), Err(IgnoreReason::NoMeaning)),
            (reviewed("GREEN", None, None), Err(IgnoreReason::NoReference)),
        ];
        for (body, want) in rows {
            match (a.map(body), want) {
                (Mapping::Event(e), Ok(m)) => {
                    assert_eq!(e.meaning, *m);
                    assert_eq!(e.event_key, "req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4");
                    assert_eq!(e.check_id.as_str(), "5cb56e8e0a975a35f333cb83");
                    assert_eq!(e.reference, Reference::parse("c:a").unwrap());
                    assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2026-03-09T13:23:19.321+00:00");
                    assert_eq!(e.labels, vec!["FORGERY", "SELFIE_MISMATCH"]);
                }
                (Mapping::Ignored(i), Err(r)) => assert_eq!(i.reason, *r),
                (other, _) => panic!("{body}: {other:?}"),
            }
        }
        for (kind, m) in [
            ("applicantCreated", Meaning::Started),
            ("applicantPending", Meaning::Started),
            ("applicantOnHold", Meaning::NeedsReview),
        ] {
            let mut b = reviewed("GREEN", None, Some("c:a"));
            b["type"] = kind.into();
            b.as_object_mut().unwrap().remove("reviewResult");
            let Mapping::Event(e) = a.map(&b) else { panic!("{kind}") };
            assert_eq!(e.meaning, m, "{kind}");
        }
    }
}
