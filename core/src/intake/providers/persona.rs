//! Persona (docs/contract.md §7).
//!
//! Signature: `Persona-Signature: t=<unix>,v1=<hex>`, the hex HMAC-SHA256 of
//! `"{t}.{body}"` keyed with the webhook's `wbhsec_…` secret as bytes; during
//! a secret rotation the header carries several space-separated `t=…,v1=…`
//! pairs, and any one that verifies is enough.
//! <https://docs.withpersona.com/webhooks-best-practices> ("Checking signatures").
//! Persona signs each attempt afresh, so `t` is the attempt's time and is held
//! to the policy's `maxSkewSeconds`.
//!
//! Body: a JSON:API event, `data.type = "event"`, `data.id = "evt_…"`,
//! `data.attributes.name` (`inquiry.approved`, …), `data.attributes.created-at`,
//! and the inquiry in `data.attributes.payload.data` (`id = "inq_…"`,
//! `attributes.status`, `attributes.reference-id`), its verifications in
//! `data.attributes.payload.included`.
//! <https://docs.withpersona.com/webhooks> (example event),
//! <https://docs.withpersona.com/api-reference/webhooks/inquiry-events/webhook-inquiry-approved>.

use super::{Adapter, Alg, Clock, Mapping, Meaning, ProviderKind, Read, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{MAX_SIGNATURE_ENTRIES, Secret, SignatureError};
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "Persona-Signature";
/// Persona redacted an inquiry (its `redacted-at` set; its status kept):
/// the bridge erases the candidate (docs/privacy.md).
pub const REDACTED: &str = "inquiry.redacted";

pub struct Persona {
    pub secrets: Vec<Secret>,
}

/// Persona's event names → meanings.
fn meaning(name: &str) -> Option<Meaning> {
    Some(match name {
        "inquiry.started" => Meaning::Started,
        "inquiry.approved" => Meaning::Verified,
        "inquiry.marked-for-review" => Meaning::NeedsReview,
        "inquiry.declined" | "inquiry.failed" => Meaning::Failed,
        "verification.requires-retry" => Meaning::Retake,
        "inquiry.expired" => Meaning::Expired,
        _ => return None,
    })
}

/// The failed verifications' failed checks, by name (a failed verification
/// without checks listed counts by its type, `verification/selfie`, …).
fn failed_verification_names(body: &Value) -> Vec<String> {
    let included = body.pointer("/data/attributes/payload/included").and_then(Value::as_array);
    let mut names: Vec<Value> = vec![];
    for v in included.into_iter().flatten() {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        if !kind.starts_with("verification/") || str_at(v, "/attributes/status") != Some("failed") {
            continue;
        }
        let checks = v.pointer("/attributes/checks").and_then(Value::as_array);
        let failed: Vec<Value> = checks
            .into_iter()
            .flatten()
            .filter(|c| c.get("status").and_then(Value::as_str) == Some("failed"))
            .filter_map(|c| c.get("name").cloned())
            .collect();
        if failed.is_empty() {
            names.push(Value::String(kind.to_owned()));
        } else {
            names.extend(failed);
        }
    }
    super::labels(names.iter())
}

impl Adapter for Persona {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Persona
    }

    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        clock: &Clock,
    ) -> Result<(), SignatureError> {
        let value = bounded(header, &[SIGNATURE_HEADER])?;
        // (t, its v1 candidates) per space-separated group.
        let mut groups: Vec<(Option<&str>, Vec<Vec<u8>>)> = vec![];
        let mut entries = 0;
        for group in value.split_whitespace() {
            let mut t = None;
            let mut v1 = vec![];
            for kv in group.split(',').filter(|s| !s.is_empty()) {
                entries += 1;
                if entries > 2 * MAX_SIGNATURE_ENTRIES {
                    return Err(SignatureError::TooManyEntries);
                }
                match kv.split_once('=') {
                    Some(("t", ts)) => t = Some(ts),
                    Some(("v1", h)) => v1.extend(hex_digest(h, Alg::Sha256)),
                    _ => {}
                }
            }
            // A group without its own time takes the previous one's.
            let t = t.or_else(|| groups.last().and_then(|g| g.0));
            groups.push((t, v1));
        }
        if groups.iter().all(|g| g.0.is_none()) {
            return Err(SignatureError::MissingTimestamp);
        }
        for (t, candidates) in groups {
            let Some(t) = t else { continue };
            let Ok(ts) = t.parse::<i64>() else { return Err(SignatureError::MissingTimestamp) };
            if any_matches(Alg::Sha256, &self.secrets, &[t.as_bytes(), b".", body], &candidates) {
                if clock.replay_protection && clock.now_unix.abs_diff(ts) > clock.max_skew_seconds {
                    return Err(SignatureError::TimestampOutOfTolerance);
                }
                return Ok(());
            }
        }
        Err(SignatureError::InvalidSignature)
    }

    fn map(&self, body: &Value) -> Mapping {
        let name = str_at(body, "/data/attributes/name").unwrap_or("");
        let meaning = meaning(name);
        let inquiry = "/data/attributes/payload/data";
        let read = Read {
            provider: ProviderKind::Persona,
            provider_event: name.chars().take(128).collect(),
            provider_status: str_at(body, &format!("{inquiry}/attributes/status"))
                .map(|s| s.chars().take(64).collect()),
            meaning,
            event_key: str_at(body, "/data/id").and_then(super::key_part).map(str::to_owned),
            reference: str_at(body, &format!("{inquiry}/attributes/reference-id")),
            check_id: str_at(body, &format!("{inquiry}/id")),
            occurred_at: super::rfc3339(str_at(body, "/data/attributes/created-at")),
            labels: if meaning == Some(Meaning::Started) { vec![] } else { failed_verification_names(body) },
        };
        if name == REDACTED { read.settle_redacted() } else { read.settle() }
    }
}

/// `Persona-Signature` for `body` at `t`, one `t=…,v1=…` pair per secret
/// (space-separated, as during a rotation).
pub fn sign(secrets: &[Secret], t: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| format!("t={t},v1={}", super::sign_hex(Alg::Sha256, s, &[t.to_string().as_bytes(), b".", body])))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{headers, lookup};
    use super::super::{IgnoreReason, Reference};
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn clock() -> Clock {
        Clock { now_unix: NOW, max_skew_seconds: 300, replay_protection: true }
    }

    fn adapter(secrets: &[&str]) -> Persona {
        Persona { secrets: secrets.iter().map(|s| Secret::raw(s, 1).unwrap()).collect() }
    }

    /// The documented event shape (docs.withpersona.com/webhooks), one
    /// failed government-id verification included, with planted PII.
    pub fn event(name: &str, reference: Option<&str>) -> Value {
        json!({"data": {"type": "event", "id": "evt_XGuYWp7WuDzNxie5z16s7sGJ", "attributes": {
        "name": name, "created-at": "2026-03-09T22:40:56.000Z",
        "payload": {
            "data": {"type": "inquiry", "id": "inq_2CVZ4HyVg7qaboXz2PUHknAn", "attributes": {
                "status": "declined", "reference-id": reference, "name-first": "Jane",
                "birthdate": "1990-01-01", "address-street-1": "1 Main St"}},
            "included": [{"type": "verification/government-id", "id": "ver_1", "attributes": {
                "status": "failed", "identification-number": "X1234567",
                "checks": [{"name": "id_expired", "status": "failed"}, {"name": "id_barcode_detection", "status": "passed"}]}}]
        }}}})
    }

    fn verify(a: &Persona, sig: String, body: &[u8]) -> Result<(), SignatureError> {
        let h = headers(&[(SIGNATURE_HEADER, sig)]);
        a.verify(&lookup(&h), body, &clock())
    }

    #[test]
    fn signature_rotation_skew_and_tampering() {
        let a = adapter(&["wbhsec_new", "wbhsec_old"]);
        let body = br#"{"data":{}}"#;
        let old = [Secret::raw("wbhsec_old", 1).unwrap()];
        assert_eq!(verify(&a, sign(&old, NOW, body), body), Ok(()));
        // Persona rotating: two pairs, the first signed with a secret we do not have.
        let both = [Secret::raw("wbhsec_unknown", 1).unwrap(), Secret::raw("wbhsec_new", 2).unwrap()];
        assert_eq!(verify(&a, sign(&both, NOW, body), body), Ok(()));
        assert_eq!(verify(&a, sign(&old, NOW, body), br#"{"data":{"x":1}}"#), Err(SignatureError::InvalidSignature));
        assert_eq!(verify(&a, sign(&old, NOW - 301, body), body), Err(SignatureError::TimestampOutOfTolerance));
        assert_eq!(verify(&a, sign(&old, NOW + 300, body), body), Ok(()));
        let v1 = sign(&old, NOW, body).split_once(',').unwrap().1.to_owned();
        assert_eq!(verify(&a, v1, body), Err(SignatureError::MissingTimestamp));
        assert_eq!(a.verify(&|_: &str| None::<&str>, body, &clock()), Err(SignatureError::MissingSignature));
        // A secret written whsec_… is still Persona's bytes, never base64-decoded.
        let odd = adapter(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert_eq!(verify(&odd, sign(&odd.secrets, NOW, body), body), Ok(()));
    }

    #[test]
    fn a_flood_of_pairs_is_refused_before_any_mac() {
        let a = adapter(&["k"]);
        let flood = vec![format!("t={NOW},v1={}", "0".repeat(64)); 40].join(" ");
        assert_eq!(verify(&a, flood, b"{}"), Err(SignatureError::TooManyEntries));
    }

    #[test]
    fn the_meaning_table() {
        let a = adapter(&["k"]);
        let rows: &[(&str, Option<Meaning>, Option<IgnoreReason>)] = &[
            ("inquiry.started", Some(Meaning::Started), None),
            ("inquiry.approved", Some(Meaning::Verified), None),
            ("inquiry.marked-for-review", Some(Meaning::NeedsReview), None),
            ("inquiry.declined", Some(Meaning::Failed), None),
            ("inquiry.failed", Some(Meaning::Failed), None),
            ("verification.requires-retry", Some(Meaning::Retake), None),
            ("inquiry.expired", Some(Meaning::Expired), None),
            ("inquiry.created", None, Some(IgnoreReason::NoMeaning)),
            ("inquiry.completed", None, Some(IgnoreReason::NoMeaning)),
        ];
        for (name, want, ignored) in rows {
            match (a.map(&event(name, Some("cand_1:app_1"))), want, ignored) {
                (Mapping::Event(e), Some(m), None) => {
                    assert_eq!(e.meaning, *m, "{name}");
                    assert_eq!(e.event_key, "evt_XGuYWp7WuDzNxie5z16s7sGJ");
                    assert_eq!(e.check_id.as_str(), "inq_2CVZ4HyVg7qaboXz2PUHknAn");
                    assert_eq!(e.reference, Reference::parse("cand_1:app_1").unwrap());
                    assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2026-03-09T22:40:56+00:00");
                }
                (Mapping::Ignored(i), None, Some(r)) => assert_eq!(i.reason, *r, "{name}"),
                (other, _, _) => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn labels_are_the_failed_checks_and_no_reference_is_ignored() {
        let a = adapter(&["k"]);
        let Mapping::Event(e) = a.map(&event("inquiry.declined", Some("c:a"))) else { panic!() };
        assert_eq!(e.labels, vec!["id_expired"]);
        for reference in [None, Some("no-colon"), Some("a:b:c")] {
            let Mapping::Ignored(i) = a.map(&event("inquiry.approved", reference)) else { panic!() };
            assert_eq!(i.reason, IgnoreReason::NoReference, "{reference:?}");
        }
    }

    #[test]
    fn a_redacted_inquiry_asks_to_erase_its_candidate_when_it_still_names_one() {
        let a = adapter(&["k"]);
        let Mapping::Redacted(r) = a.map(&event(REDACTED, Some("cand_1:app_1"))) else { panic!() };
        assert_eq!(
            (r.reference.candidate_id.as_str(), r.event_key.as_str()),
            ("cand_1", "evt_XGuYWp7WuDzNxie5z16s7sGJ")
        );
        assert_eq!(r.provider_event, REDACTED);
        // Its account redacted too: `reference-id` is null, nobody to name.
        let Mapping::Ignored(i) = a.map(&event(REDACTED, None)) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoReference);
        let mut no_key = event(REDACTED, Some("c:a"));
        no_key["data"]["id"] = Value::Null;
        let Mapping::Ignored(i) = a.map(&no_key) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoEventKey);
    }
}
