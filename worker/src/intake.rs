//! Pure intake of a webhook body: redaction of the policy's fields at any
//! depth, then parsing into typed fields. No I/O here.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vbridge_proto::EventSignal;
use vbridge_workflows::Policy;
use vbridge_workflows::domain::{
    ApplicationId, CandidateId, EventId, EventType, IdempotencyKey, TraceId, VerificationCheckId, VerificationState,
};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Replace every value whose key is in `fields`, at any depth (objects inside
/// arrays too), by `sha256:<hex>` of its JSON text. Returns how many were replaced.
pub fn redact(value: &mut Value, fields: &[String]) -> usize {
    match value {
        Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if fields.iter().any(|f| f == k) {
                    if !is_redacted(v) {
                        let text = match &*v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        *v = Value::String(format!("sha256:{}", sha256_hex(text.as_bytes())));
                    }
                    n += 1;
                } else {
                    n += redact(v, fields);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(|v| redact(v, fields)).sum(),
        _ => 0,
    }
}

fn is_redacted(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.len() == 71 && s.starts_with("sha256:"))
}

/// A field problem: the contract's `invalid_payload` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PayloadError {
    pub field: String,
    pub problem: String,
}

impl PayloadError {
    pub fn new(field: &str, problem: impl Into<String>) -> PayloadError {
        PayloadError { field: field.to_owned(), problem: problem.into() }
    }
}

fn err(field: &str, problem: impl Into<String>) -> PayloadError {
    PayloadError::new(field, problem)
}

/// What a valid delivery says, parsed.
#[derive(Debug, Clone)]
pub struct Intake {
    pub event_id: EventId,
    /// `None` for an event type the bridge does not act on (recorded, `ignored`).
    pub event_type: Option<EventType>,
    pub event_type_raw: String,
    pub occurred_at: DateTime<FixedOffset>,
    pub idempotency_key: IdempotencyKey,
    pub candidate_id: CandidateId,
    pub application_id: ApplicationId,
    pub verification_check_id: VerificationCheckId,
    pub decision_state: Option<VerificationState>,
    pub reason_codes: Vec<String>,
    pub evidence_pack_url: Option<String>,
    pub delivery_attempt: Option<u32>,
}

/// Identifying fields read leniently from any body (even an unauthenticated
/// one), for the record of a rejected delivery. Values are not trusted.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    pub idempotency_key: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
}

pub fn claimed(body: &Value, key_field: &str) -> Claimed {
    let Value::Object(m) = body else {
        return Claimed::default();
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(|v| v.chars().take(256).collect::<String>());
    Claimed {
        event_id: s("event_id"),
        event_type: s("event_type"),
        occurred_at: s("occurred_at"),
        idempotency_key: s(key_field),
        candidate_id: s("candidate_id"),
        application_id: s("application_id"),
    }
}

fn req_str<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a str, PayloadError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(err(field, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(err(field, "must be a string")),
    }
}

fn opt_str<'a>(m: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, PayloadError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(field, "must be a string")),
    }
}

fn typed<T, E: std::fmt::Display>(field: &str, r: Result<T, E>) -> Result<T, PayloadError> {
    r.map_err(|e| {
        let msg = e.to_string();
        let msg = msg.strip_prefix(&format!("{field}: ")).map(str::to_owned).unwrap_or(msg);
        err(field, msg)
    })
}

/// Parse a redacted body (already a JSON object) against the contract and the policy.
pub fn parse(body: &Value, policy: &Policy) -> Result<Intake, PayloadError> {
    let Value::Object(m) = body else {
        return Err(err("body", "must be a JSON object"));
    };
    let event_id = typed("event_id", EventId::parse(req_str(m, "event_id")?))?;
    let event_type_raw = req_str(m, "event_type")?.to_owned();
    if event_type_raw.is_empty() {
        return Err(err("event_type", "must not be empty"));
    }
    let event_type = event_type_raw.parse::<EventType>().ok();
    let occurred_at = typed("occurred_at", DateTime::parse_from_rfc3339(req_str(m, "occurred_at")?))
        .map_err(|_| err("occurred_at", "must be an RFC 3339 time"))?;
    let key_field = policy.key_field();
    let idempotency_key = typed(key_field, IdempotencyKey::parse(req_str(m, key_field)?))?;
    let candidate_id = typed("candidate_id", CandidateId::parse(req_str(m, "candidate_id")?))?;
    let application_id = typed("application_id", ApplicationId::parse(req_str(m, "application_id")?))?;
    let verification_check_id =
        typed("verification_check_id", VerificationCheckId::parse(req_str(m, "verification_check_id")?))?;

    let decision_state = match (event_type, opt_str(m, "decision_state")?) {
        (Some(EventType::Decision), None) => {
            return Err(err("decision_state", "is required for verification.decision"));
        }
        (Some(EventType::Decision), Some(s)) => {
            let st: VerificationState = s
                .parse()
                .map_err(|_| err("decision_state", format!("\"{s}\" is not verified, needs_review or failed")))?;
            if !matches!(st, VerificationState::Verified | VerificationState::NeedsReview | VerificationState::Failed) {
                return Err(err("decision_state", format!("\"{s}\" is not verified, needs_review or failed")));
            }
            Some(st)
        }
        (_, _) => None,
    };

    let reason_codes = match m.get("reason_codes") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| err(&format!("reason_codes[{i}]"), "must be a string"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err("reason_codes", "must be a list of strings")),
    };
    if let Some(st) = decision_state
        && let Some(route) = policy.review_route(st)
    {
        if reason_codes.is_empty() {
            return Err(err(
                "reason_codes",
                format!("{} needs at least one of {}", st, route.required_reason_codes.join(", ")),
            ));
        }
        for (i, c) in reason_codes.iter().enumerate() {
            if !route.required_reason_codes.contains(c) {
                return Err(err(
                    &format!("reason_codes[{i}]"),
                    format!("\"{c}\" is not one of {}", route.required_reason_codes.join(", ")),
                ));
            }
        }
    }

    let evidence_pack_url = opt_str(m, "evidence_pack_url")?.map(str::to_owned);
    if let Some(u) = &evidence_pack_url {
        let ok = u.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            && !u.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(err("evidence_pack_url", "must be an https URL"));
        }
    }
    opt_str(m, "candidate_email")?;
    let delivery_attempt = match m.get("delivery_attempt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n <= u32::MAX as u64)
                .ok_or_else(|| err("delivery_attempt", "must be a non-negative integer"))? as u32,
        ),
    };
    if let Some(v) = m.get("external_ats_ids")
        && !(v.is_object() || v.is_array() || v.is_null())
    {
        return Err(err("external_ats_ids", "must be an object or a list"));
    }
    Ok(Intake {
        event_id,
        event_type,
        event_type_raw,
        occurred_at,
        idempotency_key,
        candidate_id,
        application_id,
        verification_check_id,
        decision_state,
        reason_codes,
        evidence_pack_url,
        delivery_attempt,
    })
}

impl Intake {
    /// The signal the relay will forward for this event.
    pub fn to_signal(&self, received_at: &str, trace_id: &TraceId) -> EventSignal {
        EventSignal {
            event_id: self.event_id.to_string(),
            event_type: self.event_type_raw.clone(),
            occurred_at: self.occurred_at.to_rfc3339(),
            received_at: received_at.to_owned(),
            idempotency_key: self.idempotency_key.to_string(),
            candidate_id: self.candidate_id.to_string(),
            application_id: self.application_id.to_string(),
            verification_check_id: self.verification_check_id.to_string(),
            decision_state: self.decision_state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            reason_codes: self.reason_codes.clone(),
            evidence_pack_url: self.evidence_pack_url.clone().unwrap_or_default(),
            trace_id: trace_id.to_string(),
            delivery_attempt: self.delivery_attempt.unwrap_or(0),
            store_seq: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vbridge_workflows::DEFAULT_POLICY_YAML;

    fn policy() -> Policy {
        Policy::parse(DEFAULT_POLICY_YAML).unwrap()
    }

    fn valid() -> Value {
        json!({
            "event_id": "evt_1", "event_type": "verification.decision", "occurred_at": "2026-11-23T10:00:00Z",
            "idempotency_key": "idem_1", "candidate_id": "cand_1", "application_id": "app_1",
            "verification_check_id": "chk_1", "decision_state": "needs_review", "reason_codes": ["liveness-low"],
            "evidence_pack_url": "https://evidence.example/p/1"
        })
    }

    #[test]
    fn redacts_at_any_depth() {
        let fields: Vec<String> = policy().redact_fields().to_vec();
        let mut v = json!({
            "raw_face_image": "FACE-BYTES",
            "signals": {"doc": {"raw_document_image": "DOC"}, "list": [{"biometric_templates": [1, 2, 3]}]},
            "keep": "me"
        });
        assert_eq!(redact(&mut v, &fields), 3);
        let text = v.to_string();
        for secret in ["FACE-BYTES", "DOC", "[1,2,3]"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["raw_face_image"], format!("sha256:{}", sha256_hex(b"FACE-BYTES")));
        assert_eq!(v["signals"]["list"][0]["biometric_templates"], format!("sha256:{}", sha256_hex(b"[1,2,3]")));
        assert_eq!(v["keep"], "me");
        // Idempotent: redacting again changes nothing.
        let before = v.clone();
        redact(&mut v, &fields);
        assert_eq!(v, before);
    }

    #[test]
    fn parses_a_valid_decision() {
        let i = parse(&valid(), &policy()).unwrap();
        assert_eq!(i.decision_state, Some(VerificationState::NeedsReview));
        assert_eq!(i.event_type, Some(EventType::Decision));
    }

    #[test]
    fn names_the_bad_field() {
        let p = policy();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("event_id", Value::Null, "event_id"),
            ("occurred_at", json!("yesterday"), "occurred_at"),
            ("candidate_id", json!(12), "candidate_id"),
            ("candidate_id", json!("a:b"), "candidate_id"),
            ("decision_state", json!("approved"), "decision_state"),
            ("decision_state", Value::Null, "decision_state"),
            ("reason_codes", json!(["made-up"]), "reason_codes[0]"),
            ("reason_codes", json!([]), "reason_codes"),
            ("evidence_pack_url", json!("http://insecure"), "evidence_pack_url"),
            ("idempotency_key", Value::Null, "idempotency_key"),
            ("verification_check_id", Value::Null, "verification_check_id"),
        ];
        for (field, value, expect) in cases {
            let mut b = valid();
            if value.is_null() {
                b.as_object_mut().unwrap().remove(field);
            } else {
                b[field] = value.clone();
            }
            let e = parse(&b, &p).unwrap_err();
            assert_eq!(e.field, expect, "{field}={value}: {e}");
        }
    }

    #[test]
    fn unknown_type_is_not_an_error() {
        let mut b = valid();
        b["event_type"] = json!("verification.expired");
        let i = parse(&b, &policy()).unwrap();
        assert_eq!(i.event_type, None);
    }

    #[test]
    fn key_field_comes_from_the_policy() {
        let text = DEFAULT_POLICY_YAML.replacen("keyField: \"idempotency_key\"", "keyField: \"dedupe_key\"", 1);
        let p = Policy::parse(&text).unwrap();
        let mut b = valid();
        assert_eq!(parse(&b, &p).unwrap_err().field, "dedupe_key");
        b["dedupe_key"] = json!("k");
        assert_eq!(parse(&b, &p).unwrap().idempotency_key.as_str(), "k");
    }
}
