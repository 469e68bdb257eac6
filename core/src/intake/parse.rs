//! Parsing a webhook body (docs/contract.md §2) into typed fields: serde reads it
//! into a wire struct whose fields are the domain newtypes, and
//! `serde_path_to_error` names the field that failed. Pure; no I/O.

use crate::domain::{
    ApplicationId, CandidateId, EventId, EventType, IdempotencyKey, TraceId, VerificationCheckId, VerificationState,
};
use crate::policy::Policy;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use vbridge_proto::EventSignal;

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

/// An RFC 3339 time.
struct Rfc3339(DateTime<FixedOffset>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(Rfc3339).map_err(|_| serde::de::Error::custom("must be an RFC 3339 time"))
    }
}

/// An https URL with a host.
struct HttpsUrl(String);

impl<'de> Deserialize<'de> for HttpsUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let u = String::deserialize(d)?;
        let ok = u.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            && !u.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(HttpsUrl(u)) } else { Err(serde::de::Error::custom("must be an https URL")) }
    }
}

/// An event type as sent: any short printable name (unknown ones are recorded
/// and answered `ignored`).
struct EventTypeName(String);

impl<'de> Deserialize<'de> for EventTypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        if s.chars().count() > 128 || s.chars().any(char::is_control) {
            return Err(serde::de::Error::custom("must be at most 128 printable characters"));
        }
        Ok(EventTypeName(s))
    }
}

fn object_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        Some(v) if !(v.is_object() || v.is_array()) => Err(serde::de::Error::custom("must be an object or a list")),
        other => Ok(other),
    }
}

/// The body's shape. Every field is optional here so that a missing one is
/// reported by name; unknown fields are allowed (providers add them).
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    event_id: Option<EventId>,
    #[serde(default)]
    event_type: Option<EventTypeName>,
    #[serde(default)]
    occurred_at: Option<Rfc3339>,
    #[serde(default)]
    candidate_id: Option<CandidateId>,
    #[serde(default)]
    application_id: Option<ApplicationId>,
    #[serde(default)]
    verification_check_id: Option<VerificationCheckId>,
    #[serde(default)]
    decision_state: Option<String>,
    #[serde(default)]
    reason_codes: Option<Vec<String>>,
    #[serde(default)]
    evidence_pack_url: Option<HttpsUrl>,
    #[serde(default)]
    #[allow(dead_code)]
    candidate_email: Option<String>,
    #[serde(default)]
    delivery_attempt: Option<u32>,
    #[serde(default, deserialize_with = "object_or_list")]
    #[allow(dead_code)]
    external_ats_ids: Option<Value>,
}

fn required<T>(field: &str, v: Option<T>) -> Result<T, PayloadError> {
    v.ok_or_else(|| err(field, "is required"))
}

/// The path of the first string (value or key) holding a NUL character, which
/// no store column may hold (Postgres TEXT refuses it).
pub fn first_nul(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(m) => m.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".to_owned() } else { path })
}

/// Parse a redacted body (already a JSON object) against the contract and the policy.
pub fn parse(body: &Value, policy: &Policy) -> Result<Intake, PayloadError> {
    let Value::Object(m) = body else {
        return Err(err("body", "must be a JSON object"));
    };
    if let Some(field) = first_nul(body) {
        return Err(err(&field, "contains a NUL character"));
    }
    let wire: Wire = serde_path_to_error::deserialize(body).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.inner().to_string();
        let msg = msg.strip_prefix(&format!("{field}: ")).map(str::to_owned).unwrap_or(msg);
        err(if field == "." { "body" } else { &field }, msg)
    })?;
    let event_id = required("event_id", wire.event_id)?;
    let EventTypeName(event_type_raw) = required("event_type", wire.event_type)?;
    let event_type = event_type_raw.parse::<EventType>().ok();
    let Rfc3339(occurred_at) = required("occurred_at", wire.occurred_at)?;
    let key_field = policy.key_field();
    let idempotency_key = match m.get(key_field) {
        None | Some(Value::Null) => return Err(err(key_field, "is required")),
        Some(Value::String(s)) => IdempotencyKey::parse(s).map_err(|e| err(key_field, e.problem))?,
        Some(_) => return Err(err(key_field, "must be a string")),
    };
    let candidate_id = required("candidate_id", wire.candidate_id)?;
    let application_id = required("application_id", wire.application_id)?;
    let verification_check_id = required("verification_check_id", wire.verification_check_id)?;

    let decision_state = match (event_type, wire.decision_state) {
        (Some(EventType::Decision), None) => {
            return Err(err("decision_state", "is required for verification.decision"));
        }
        (Some(EventType::Decision), Some(s)) => match s.parse::<VerificationState>() {
            Ok(st @ (VerificationState::Verified | VerificationState::NeedsReview | VerificationState::Failed)) => {
                Some(st)
            }
            _ => return Err(err("decision_state", format!("\"{s}\" is not verified, needs_review or failed"))),
        },
        (_, _) => None,
    };
    // A needs_review without the policy's reason codes is still accepted and
    // routed to review (docs/contract.md §2): refusing it would stall the candidate.
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
        reason_codes: wire.reason_codes.unwrap_or_default(),
        evidence_pack_url: wire.evidence_pack_url.map(|u| u.0),
        delivery_attempt: wire.delivery_attempt,
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
            region: String::new(),
            tier: String::new(),
            interview: None,
        }
    }
}

/// Identifying fields read leniently from any body (even an unauthenticated
/// one), for the record of a refused delivery. Values are not trusted: each
/// is cut to 256 characters and stripped of control characters, so that the
/// store can always hold it.
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
    let s = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(|v| v.chars().filter(|c| !c.is_control()).take(256).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    Claimed {
        event_id: s("event_id"),
        event_type: s("event_type"),
        occurred_at: s("occurred_at"),
        idempotency_key: s(key_field),
        candidate_id: s("candidate_id"),
        application_id: s("application_id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;
    use serde_json::json;

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
    fn parses_a_valid_decision() {
        let i = parse(&valid(), &policy()).unwrap();
        assert_eq!(i.decision_state, Some(VerificationState::NeedsReview));
        assert_eq!(i.event_type, Some(EventType::Decision));
        assert_eq!(i.reason_codes, vec!["liveness-low"]);
    }

    #[test]
    fn names_the_bad_field() {
        let p = policy();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("event_id", Value::Null, "event_id"),
            ("occurred_at", json!("yesterday"), "occurred_at"),
            ("candidate_id", json!(12), "candidate_id"),
            ("candidate_id", json!("a:b"), "candidate_id"),
            ("application_id", json!(".."), "application_id"),
            ("verification_check_id", json!("."), "verification_check_id"),
            ("decision_state", json!("approved"), "decision_state"),
            ("decision_state", Value::Null, "decision_state"),
            ("reason_codes", json!(["ok", 3]), "reason_codes[1]"),
            ("evidence_pack_url", json!("http://insecure"), "evidence_pack_url"),
            ("idempotency_key", Value::Null, "idempotency_key"),
            ("verification_check_id", Value::Null, "verification_check_id"),
            ("delivery_attempt", json!(-1), "delivery_attempt"),
            ("external_ats_ids", json!("x"), "external_ats_ids"),
            ("event_type", json!("verification.\u{0}decision"), "event_type"),
            ("signals", json!({"doc": [{"name": "a\u{0}b"}]}), "signals.doc[0].name"),
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
    fn needs_review_without_listed_codes_is_accepted_as_given() {
        let mut b = valid();
        b["reason_codes"] = json!(["made-up"]);
        assert_eq!(parse(&b, &policy()).unwrap().reason_codes, vec!["made-up"]);
        b.as_object_mut().unwrap().remove("reason_codes");
        assert!(parse(&b, &policy()).unwrap().reason_codes.is_empty());
    }

    #[test]
    fn unknown_type_is_not_an_error() {
        let mut b = valid();
        b["event_type"] = json!("verification.archived");
        let i = parse(&b, &policy()).unwrap();
        assert_eq!(i.event_type, None);
        // A provider's notice parses as one; the IL route then treats it as
        // unknown (worker's `Intake::take`, tested end to end).
        b["event_type"] = json!("verification.expired");
        assert_eq!(parse(&b, &policy()).unwrap().event_type, Some(EventType::Expired));
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

    #[test]
    fn claimed_ids_are_sanitized() {
        let c = claimed(&json!({"candidate_id": "a\u{0}b\nc", "event_id": "x".repeat(400)}), "idempotency_key");
        assert_eq!(c.candidate_id.as_deref(), Some("abc"));
        assert_eq!(c.event_id.map(|e| e.len()), Some(256));
    }
}
