//! The real verification providers (docs/contract.md §7): one adapter per
//! provider behind [`Adapter`], each pure. An adapter checks the provider's
//! signature on the raw bytes (constant time, any of several secrets, its
//! header bounded before any MAC), then maps the provider's own body onto the
//! bridge's canonical event ([`Event`]) or says why it is not one
//! ([`Ignored`]). [`Event::to_body`] writes the canonical event in the shape
//! of the IL route's body, so that everything after it (duplicates,
//! redaction, parsing, the commit, Temporal, the ATS) is the one pipeline.
//!
//! Only the canonical event and a few named provider fields (its event name,
//! its status word, its reason labels) leave the adapter: names, birthdates,
//! addresses, document numbers and IP addresses in a provider's body are
//! never copied.

pub mod custom;
pub mod onfido;
pub mod persona;
pub mod sumsub;
pub mod veriff;

use super::signature::{MAX_SIGNATURE_ENTRIES, Secret, SignatureError};
use crate::domain::{ApplicationId, CandidateId, EventType, VerificationCheckId, VerificationState};
use chrono::{DateTime, FixedOffset};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// The providers the bridge speaks natively, and `Custom`: any provider
/// declared in configuration ([`custom`]), whose event keys carry its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderKind {
    Persona,
    Onfido,
    Veriff,
    Sumsub,
    Custom,
}

impl ProviderKind {
    /// The native providers (each its own route, secrets and reason table).
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::Persona, ProviderKind::Onfido, ProviderKind::Veriff, ProviderKind::Sumsub];

    /// The name in routes, metrics, event keys and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Persona => "persona",
            ProviderKind::Onfido => "onfido",
            ProviderKind::Veriff => "veriff",
            ProviderKind::Sumsub => "sumsub",
            ProviderKind::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the adapter needs of the clock and the policy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now_unix: i64,
    /// The policy's `maxSkewSeconds`.
    pub max_skew_seconds: u64,
    /// The policy's `replayProtection.required`: the signed time is checked
    /// against the skew only when set (Persona is the one scheme with a time).
    pub replay_protection: bool,
}

/// One provider: its signature and its body.
pub trait Adapter: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// The provider's name in metrics and logs: the native provider's, or
    /// a declared provider's own (bounded: at most 16 are declared).
    fn name(&self) -> &str {
        self.kind().as_str()
    }
    /// Check the signature on the raw bytes; `header` looks a request
    /// header up by name, case-insensitively.
    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        clock: &Clock,
    ) -> Result<(), SignatureError>;
    /// Map a verified body (a JSON value) onto the canonical event.
    fn map(&self, body: &Value) -> Mapping;
}

/// What a provider's event means here (docs/contract.md §7, "Meanings").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Started,
    Verified,
    NeedsReview,
    Failed,
    /// A notice, never a move: a retake keeps the check's state.
    Retake,
    /// A notice, never a move: an expiry or abandonment keeps the state.
    Expired,
}

impl Meaning {
    /// The canonical event (and decision) this meaning maps onto: the seed's
    /// two, or one of the providers' notices ([`EventType::is_notice`]).
    fn canonical(self) -> (EventType, Option<VerificationState>) {
        match self {
            Meaning::Started => (EventType::Started, None),
            Meaning::Verified => (EventType::Decision, Some(VerificationState::Verified)),
            Meaning::NeedsReview => (EventType::Decision, Some(VerificationState::NeedsReview)),
            Meaning::Failed => (EventType::Decision, Some(VerificationState::Failed)),
            Meaning::Retake => (EventType::RetakeRequested, None),
            Meaning::Expired => (EventType::Expired, None),
        }
    }
}

/// Why a verified delivery is recorded and answered `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// No reference string, or not `"{candidate_id}:{application_id}"`.
    NoReference,
    /// An event type (or status) with no meaning here.
    NoMeaning,
    /// No usable event key (the provider's id for the event).
    NoEventKey,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::NoReference => "no_reference",
            IgnoreReason::NoMeaning => "event_type_not_mapped",
            IgnoreReason::NoEventKey => "no_event_key",
        }
    }
}

/// The bridge's own ids, echoed by the provider: `"{candidate_id}:{application_id}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub candidate_id: CandidateId,
    pub application_id: ApplicationId,
}

impl Reference {
    /// Exactly one `:`; each side a valid id (neither contains `:`).
    pub fn parse(s: &str) -> Option<Reference> {
        let (c, a) = s.split_once(':')?;
        Some(Reference { candidate_id: CandidateId::parse(c).ok()?, application_id: ApplicationId::parse(a).ok()? })
    }

    /// The string to give the provider when creating the verification.
    pub fn format(candidate_id: &str, application_id: &str) -> String {
        format!("{candidate_id}:{application_id}")
    }
}

/// A provider's event, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub provider: ProviderKind,
    /// The provider's event key (dedup), without the provider's prefix.
    pub event_key: String,
    /// The provider's own name for the event (`inquiry.approved`, …).
    pub provider_event: String,
    /// The provider's status word, when the meaning is read from it.
    pub provider_status: Option<String>,
    pub meaning: Meaning,
    pub reference: Reference,
    pub check_id: VerificationCheckId,
    /// `None`: the body carries no time; the receipt time stands in.
    pub occurred_at: Option<DateTime<FixedOffset>>,
    /// The provider's own reason labels, as given.
    pub labels: Vec<String>,
}

/// A verified delivery that is not an event the bridge applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Ignored {
    pub reason: IgnoreReason,
    pub provider_event: String,
    /// Without the provider's prefix; `None` when the body has none.
    pub event_key: Option<String>,
    pub reference: Option<Reference>,
    pub occurred_at: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    Event(Event),
    /// The provider redacted the candidate's data (Persona's
    /// `inquiry.redacted`): the bridge erases the candidate too
    /// (docs/privacy.md).
    Redacted(Redacted),
    Ignored(Ignored),
}

/// A provider's redaction of a candidate's verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub provider: ProviderKind,
    /// The provider's event key (dedup), without the provider's prefix.
    pub event_key: String,
    pub provider_event: String,
    pub reference: Reference,
}

impl Read<'_> {
    /// A redaction: the key, then the reference (Persona keeps an inquiry's
    /// `reference-id` unless its account was redacted too: then the bridge
    /// cannot tell whose it was, and says so).
    pub(crate) fn settle_redacted(mut self) -> Mapping {
        self.event_key = self.event_key.map(|k| fit_key(self.provider, k));
        let reference = self.reference.and_then(Reference::parse);
        match (self.event_key.clone(), reference.clone()) {
            (Some(event_key), Some(reference)) => Mapping::Redacted(Redacted {
                provider: self.provider,
                event_key,
                provider_event: self.provider_event,
                reference,
            }),
            (key, _) => Mapping::Ignored(Ignored {
                reason: if key.is_none() { IgnoreReason::NoEventKey } else { IgnoreReason::NoReference },
                provider_event: self.provider_event,
                event_key: key,
                reference,
                occurred_at: self.occurred_at,
            }),
        }
    }
}

/// Provider reason labels → the policy's reason codes (configuration:
/// `VBRIDGE_PROVIDER_REASON_MAP`). A label not in the table maps to nothing;
/// the item is then flagged `unlisted_reason_code`, as for the IL route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReasonMap(pub BTreeMap<(ProviderKind, String), String>);

impl ReasonMap {
    pub fn code(&self, provider: ProviderKind, label: &str) -> Option<&str> {
        self.0.get(&(provider, label.to_owned())).map(String::as_str)
    }
}

/// At most this many labels are kept from one body, each at most
/// [`MAX_LABEL_CHARS`] characters.
pub const MAX_LABELS: usize = 16;
pub const MAX_LABEL_CHARS: usize = 128;
/// A signature header longer than this is refused before any MAC.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 2048;

/// The key as stored (`"{provider}:{event key}"`): the idempotency key and the event id.
pub fn stored_key(provider: ProviderKind, event_key: &str) -> String {
    format!("{}:{event_key}", provider.as_str())
}

impl Event {
    /// The canonical event in the IL route's body shape (docs/contract.md
    /// §2), with `key_field` the policy's idempotency field. Reason codes
    /// come from the labels through `reasons`; the labels themselves are
    /// kept as given beside them, under `signals`.
    pub fn to_body(&self, key_field: &str, received_at: &str, reasons: &ReasonMap) -> Value {
        let key = stored_key(self.provider, &self.event_key);
        let (event_type, decision) = self.meaning.canonical();
        let occurred_at = self.occurred_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| received_at.to_owned());
        let mut codes: Vec<String> =
            self.labels.iter().filter_map(|l| reasons.code(self.provider, l)).map(str::to_owned).collect();
        codes.dedup();
        let mut body = json!({
            "event_id": key,
            "event_type": event_type.as_str(),
            "occurred_at": occurred_at,
            "candidate_id": self.reference.candidate_id.as_str(),
            "application_id": self.reference.application_id.as_str(),
            "verification_check_id": self.check_id.as_str(),
            "signals": {
                "provider": self.provider.as_str(),
                "provider_event": self.provider_event,
                "provider_status": self.provider_status,
                "provider_labels": self.labels,
            },
        });
        body[key_field] = Value::String(key);
        if let Some(d) = decision {
            body["decision_state"] = d.as_str().into();
            body["reason_codes"] = codes.into();
        }
        body
    }
}

impl Ignored {
    /// What the store keeps of an ignored delivery: the provider's event
    /// name, the reason, the ids; nothing else of the body.
    pub fn to_record(&self, provider: ProviderKind) -> Value {
        json!({
            "provider": provider.as_str(),
            "provider_event": self.provider_event,
            "ignored": self.reason.as_str(),
            "event_key": self.event_key.as_deref().map(|k| stored_key(provider, k)),
            "candidate_id": self.reference.as_ref().map(|r| r.candidate_id.as_str()),
            "application_id": self.reference.as_ref().map(|r| r.application_id.as_str()),
        })
    }
}

// ---- Shared pieces of the adapters -------------------------------------

/// The string at a JSON pointer, when it is one.
pub(crate) fn str_at<'v>(body: &'v Value, pointer: &str) -> Option<&'v str> {
    body.pointer(pointer).and_then(Value::as_str)
}

/// A provider id that may become part of a key: non-empty printable ASCII, bounded.
pub(crate) fn key_part(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())).then_some(s)
}

/// An RFC 3339 time, or nothing.
pub(crate) fn rfc3339(s: Option<&str>) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s?).ok()
}

/// Labels as given, bounded: strings only, control characters dropped.
pub(crate) fn labels<'a>(items: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut out: Vec<String> = items
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .map(|s| s.chars().filter(|c| !c.is_control()).take(MAX_LABEL_CHARS).collect::<String>())
        .filter(|s| !s.is_empty())
        .take(MAX_LABELS)
        .collect();
    out.dedup();
    out
}

/// The bound of a stored key (the idempotency key and the event id).
pub const MAX_STORED_KEY_BYTES: usize = 256;

/// An event key whose stored form (`"{provider}:{key}"`) would pass
/// [`MAX_STORED_KEY_BYTES`] keeps its head and ends with `~` and the SHA-256
/// of the whole key: still one key per event (a retry maps to the same one,
/// two events that differ anywhere map to two), where cutting it would merge
/// two events and refusing it would have the provider retry a verified
/// delivery for days. Onfido's composed keys are the ones that can grow past
/// it (four parts of up to 200 bytes each).
pub(crate) fn fit_key(provider: ProviderKind, key: String) -> String {
    use sha2::{Digest, Sha256};
    let room = MAX_STORED_KEY_BYTES - provider.as_str().len() - 1;
    if key.len() <= room {
        return key;
    }
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let mut head_len = room - 1 - digest.len();
    while !key.is_char_boundary(head_len) {
        head_len -= 1;
    }
    format!("{}~{digest}", &key[..head_len])
}

/// The check id, or the reason the event cannot be used.
pub(crate) fn check_id(s: Option<&str>) -> Option<VerificationCheckId> {
    VerificationCheckId::parse(s?).ok()
}

/// Decide between an event and an ignored delivery once the provider's
/// fields are read: the order of the checks is the same for every provider.
pub(crate) struct Read<'a> {
    pub provider: ProviderKind,
    pub provider_event: String,
    pub provider_status: Option<String>,
    pub meaning: Option<Meaning>,
    pub event_key: Option<String>,
    pub reference: Option<&'a str>,
    pub check_id: Option<&'a str>,
    pub occurred_at: Option<DateTime<FixedOffset>>,
    pub labels: Vec<String>,
}

impl Read<'_> {
    pub(crate) fn settle(mut self) -> Mapping {
        self.event_key = self.event_key.map(|k| fit_key(self.provider, k));
        let reference = self.reference.and_then(Reference::parse);
        let ignored = |reason| {
            Mapping::Ignored(Ignored {
                reason,
                provider_event: self.provider_event.clone(),
                event_key: self.event_key.clone(),
                reference: reference.clone(),
                occurred_at: self.occurred_at,
            })
        };
        let Some(meaning) = self.meaning else { return ignored(IgnoreReason::NoMeaning) };
        let Some(event_key) = self.event_key.clone() else { return ignored(IgnoreReason::NoEventKey) };
        let (Some(r), Some(check)) = (reference.clone(), check_id(self.check_id)) else {
            return ignored(IgnoreReason::NoReference);
        };
        Mapping::Event(Event {
            provider: self.provider,
            event_key,
            provider_event: self.provider_event,
            provider_status: self.provider_status,
            meaning,
            reference: r,
            check_id: check,
            occurred_at: self.occurred_at,
            labels: self.labels,
        })
    }
}

/// The HMACs a provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Sha1,
    Sha256,
    Sha512,
}

impl Alg {
    pub(crate) fn digest_len(self) -> usize {
        match self {
            Alg::Sha1 => 20,
            Alg::Sha256 => 32,
            Alg::Sha512 => 64,
        }
    }
}

/// The MAC of `parts` under `secret`.
pub(crate) fn mac(alg: Alg, secret: &Secret, parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any size");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        Alg::Sha1 => run::<Hmac<sha1::Sha1>>(secret.key(), parts),
        Alg::Sha256 => run::<Hmac<sha2::Sha256>>(secret.key(), parts),
        Alg::Sha512 => run::<Hmac<sha2::Sha512>>(secret.key(), parts),
    }
}

/// A signature header, refused (`invalid_signature`) past the length bound
/// before anything is computed.
pub(crate) fn bounded<'h>(header: &dyn Fn(&str) -> Option<&'h str>, names: &[&str]) -> Result<&'h str, SignatureError> {
    let value = names.iter().find_map(|n| header(n)).ok_or(SignatureError::MissingSignature)?;
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(SignatureError::TooManyEntries);
    }
    Ok(value)
}

/// Hex of exactly the digest's length (either case), or nothing.
pub(crate) fn hex_digest(s: &str, alg: Alg) -> Option<Vec<u8>> {
    let s = s.trim();
    (s.len() == alg.digest_len() * 2).then(|| hex::decode(s).ok()).flatten()
}

/// One MAC per secret over `parts`, compared in constant time with every
/// candidate (at most [`MAX_SIGNATURE_ENTRIES`]).
pub(crate) fn any_matches(alg: Alg, secrets: &[Secret], parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
    let mut matched = false;
    if candidates.is_empty() || candidates.len() > MAX_SIGNATURE_ENTRIES {
        return false;
    }
    for s in secrets {
        let expected = mac(alg, s, parts);
        for c in candidates {
            matched |= bool::from(expected.as_slice().ct_eq(c.as_slice()));
        }
    }
    matched
}

/// `hex(HMAC(secret, parts))`: what the providers send, and what tests and
/// `devtools` sign with.
pub fn sign_hex(alg: Alg, secret: &Secret, parts: &[&[u8]]) -> String {
    hex::encode(mac(alg, secret, parts))
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    /// A case-insensitive header look-up over pairs.
    pub fn headers(pairs: &[(&str, String)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect()
    }

    pub fn lookup<'m>(map: &'m HashMap<String, String>) -> impl Fn(&str) -> Option<&'m str> + 'm {
        move |name| map.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_two_ids_and_one_colon() {
        let r = Reference::parse("cand_1:app_1").unwrap();
        assert_eq!((r.candidate_id.as_str(), r.application_id.as_str()), ("cand_1", "app_1"));
        for bad in ["", "cand_1", "cand_1:", ":app_1", "a:b:c", "a b:c", "cand_1:app 1"] {
            assert!(Reference::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Reference::format("c", "a"), "c:a");
    }

    #[test]
    fn labels_are_bounded_and_plain() {
        let v: Vec<Value> = (0..40).map(|i| Value::String(format!("L{i}"))).collect();
        assert_eq!(labels(v.iter()).len(), MAX_LABELS);
        let v = [json!("a\u{0}b"), json!(105), json!({"x": 1}), json!("z".repeat(500))];
        let l = labels(v.iter());
        assert_eq!(l[0], "ab");
        assert_eq!(l[1], "105");
        assert_eq!(l[2].len(), MAX_LABEL_CHARS);
    }

    #[test]
    fn the_canonical_body_parses_as_the_il_body() {
        let policy = crate::Policy::parse(crate::policy::DEFAULT_POLICY_YAML).unwrap();
        let mut reasons = ReasonMap::default();
        reasons.0.insert((ProviderKind::Sumsub, "FORGERY".into()), "document-fraud".into());
        let e = Event {
            provider: ProviderKind::Sumsub,
            event_key: "corr-1".into(),
            provider_event: "applicantReviewed".into(),
            provider_status: Some("RED".into()),
            meaning: Meaning::Failed,
            reference: Reference::parse("cand_1:app_1").unwrap(),
            check_id: VerificationCheckId::parse("5cb56e8e0a975a35f333cb83").unwrap(),
            occurred_at: None,
            labels: vec!["FORGERY".into(), "SELFIE_MISMATCH".into()],
        };
        let body = e.to_body(policy.key_field(), "2026-01-01T00:00:00+00:00", &reasons);
        let parsed = crate::intake::parse::parse(&body, &policy).unwrap();
        assert_eq!(parsed.idempotency_key.as_str(), "sumsub:corr-1");
        assert_eq!(parsed.event_id.as_str(), "sumsub:corr-1");
        assert_eq!(parsed.decision_state, Some(VerificationState::Failed));
        assert_eq!(parsed.reason_codes, vec!["document-fraud"]);
        assert_eq!(body["signals"]["provider_labels"], json!(["FORGERY", "SELFIE_MISMATCH"]));
        assert_eq!(parsed.occurred_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn an_oversized_signature_header_is_refused_before_any_mac() {
        let long = "a".repeat(MAX_SIGNATURE_HEADER_BYTES + 1);
        let h = |_: &str| Some(long.as_str());
        assert_eq!(bounded(&h, &["x"]), Err(SignatureError::TooManyEntries));
        let none = |_: &str| None::<&str>;
        assert_eq!(bounded(&none, &["x"]), Err(SignatureError::MissingSignature));
    }
}
