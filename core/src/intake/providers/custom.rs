//! Any other provider that signs the raw body with an HMAC (Checkr, an
//! in-house service), declared rather than coded (docs/providers.md, "Other
//! providers"): the signature header and its encoding, JSON pointers to the
//! reference, check id, event key, time and status, and a status table.
//!
//! A declaration arrives as a [`RawSpec`] (the worker reads it from a TOML
//! file) and is parsed once, at start-up, into a [`Spec`] of newtypes, every
//! bound checked and every problem naming its key; after that nothing about
//! it can be wrong at request time. The mapping itself is the shared
//! [`Read::settle`]: the same order of checks, the same ignored reasons, as
//! the four native adapters.
//!
//! What it cannot do, on purpose: a signature over anything but the raw body
//! (a timestamp, a URL), or an asymmetric signature; those need code.

use super::{Adapter, Alg, Clock, Mapping, Meaning, ProviderKind, Read, any_matches, str_at};
use crate::intake::signature::{Secret, SignatureError};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this many entries in a status table.
pub const MAX_STATUSES: usize = 64;
/// A JSON pointer: at most this many bytes and segments.
pub const MAX_POINTER_BYTES: usize = 256;
pub const MAX_POINTER_SEGMENTS: usize = 16;
/// A signature prefix (`sha256=`): at most this many bytes.
pub const MAX_PREFIX_BYTES: usize = 16;

/// A declaration as written (one table of the TOML file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub signature_header: String,
    pub encoding: String,
    pub algorithm: String,
    #[serde(default)]
    pub prefix: Option<String>,
    pub reference: String,
    pub check_id: String,
    pub event_key: String,
    #[serde(default)]
    pub time: Option<String>,
    pub status: String,
    /// Optional: the provider's event name, recorded beside the status.
    #[serde(default)]
    pub event_name: Option<String>,
    pub statuses: BTreeMap<String, String>,
}

/// A problem with a declaration, naming the key (`checkr.statuses.clear`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SpecError {
    pub key: String,
    pub problem: String,
}

/// The provider's name: the route's last segment and the event key's prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProviderName(String);

impl ProviderName {
    /// 1 to 32 of `a-z`, `0-9`, `-`; never one of the native providers.
    pub fn parse(s: &str) -> Result<ProviderName, String> {
        let ok =
            (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err("a name is 1 to 32 of a-z, 0-9 and -".into());
        }
        if ProviderKind::parse(s).is_some() {
            return Err(format!("{s} is a native provider (its own route)"));
        }
        Ok(ProviderName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request header's name, as HTTP allows it, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName(String);

impl HeaderName {
    pub fn parse(s: &str) -> Result<HeaderName, String> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if s.is_empty() || s.len() > 64 || !s.bytes().all(token) {
            return Err("a header name is 1 to 64 token characters".into());
        }
        Ok(HeaderName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// An RFC 6901 JSON pointer, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    pub fn parse(s: &str) -> Result<Pointer, String> {
        if !s.starts_with('/') {
            return Err("a JSON pointer starts with / (RFC 6901)".into());
        }
        if s.len() > MAX_POINTER_BYTES || s.split('/').count() - 1 > MAX_POINTER_SEGMENTS {
            return Err(format!("at most {MAX_POINTER_BYTES} bytes and {MAX_POINTER_SEGMENTS} segments"));
        }
        // `~` only as the escapes `~0` and `~1`.
        let mut bytes = s.bytes().peekable();
        while let Some(b) = bytes.next() {
            if b == b'~' && !matches!(bytes.next(), Some(b'0' | b'1')) {
                return Err("~ is written ~0, / is written ~1 inside a segment".into());
            }
        }
        Ok(Pointer(s.to_owned()))
    }

    fn get<'v>(&self, body: &'v Value) -> Option<&'v str> {
        str_at(body, &self.0)
    }
}

/// The meanings a status may have: the four moves, and the two notices
/// (`retake`, `expired`), recorded and shown in the ATS, never a move.
fn meaning(s: &str) -> Result<Meaning, String> {
    Ok(match s {
        "started" => Meaning::Started,
        "verified" => Meaning::Verified,
        "needs_review" => Meaning::NeedsReview,
        "failed" => Meaning::Failed,
        "retake" => Meaning::Retake,
        "expired" => Meaning::Expired,
        _ => return Err(format!("\"{s}\" is not one of started, verified, needs_review, failed, retake, expired")),
    })
}

/// A declaration, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: ProviderName,
    pub header: HeaderName,
    pub encoding: Encoding,
    pub alg: Alg,
    pub prefix: String,
    pub reference: Pointer,
    pub check_id: Pointer,
    pub event_key: Pointer,
    pub time: Option<Pointer>,
    pub status: Pointer,
    pub event_name: Option<Pointer>,
    pub statuses: BTreeMap<String, Meaning>,
}

impl Spec {
    /// Parse the table named `name`; every error names its key.
    pub fn parse(name: &str, raw: &RawSpec) -> Result<Spec, SpecError> {
        let err = |key: &str, problem: String| SpecError { key: format!("{name}.{key}"), problem };
        let name_parsed = ProviderName::parse(name).map_err(|p| SpecError { key: name.to_owned(), problem: p })?;
        let pointer = |key: &str, s: &str| Pointer::parse(s).map_err(|p| err(key, p));
        let encoding = match raw.encoding.as_str() {
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            other => return Err(err("encoding", format!("\"{other}\" is not hex or base64"))),
        };
        let alg = match raw.algorithm.as_str() {
            "sha1" => Alg::Sha1,
            "sha256" => Alg::Sha256,
            "sha512" => Alg::Sha512,
            other => return Err(err("algorithm", format!("\"{other}\" is not sha1, sha256 or sha512"))),
        };
        let prefix = raw.prefix.clone().unwrap_or_default();
        if prefix.len() > MAX_PREFIX_BYTES || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err("prefix", format!("at most {MAX_PREFIX_BYTES} printable ASCII characters")));
        }
        if raw.statuses.is_empty() || raw.statuses.len() > MAX_STATUSES {
            return Err(err("statuses", format!("1 to {MAX_STATUSES} entries")));
        }
        let mut statuses = BTreeMap::new();
        for (status, m) in &raw.statuses {
            let m = meaning(m).map_err(|p| err(&format!("statuses.{status}"), p))?;
            statuses.insert(status.clone(), m);
        }
        Ok(Spec {
            name: name_parsed,
            header: HeaderName::parse(&raw.signature_header).map_err(|p| err("signature_header", p))?,
            encoding,
            alg,
            prefix,
            reference: pointer("reference", &raw.reference)?,
            check_id: pointer("check_id", &raw.check_id)?,
            event_key: pointer("event_key", &raw.event_key)?,
            time: raw.time.as_deref().map(|t| pointer("time", t)).transpose()?,
            status: pointer("status", &raw.status)?,
            event_name: raw.event_name.as_deref().map(|t| pointer("event_name", t)).transpose()?,
            statuses,
        })
    }
}

/// A declared provider with its secrets (several during a rotation).
pub struct Custom {
    pub spec: Spec,
    pub secrets: Vec<Secret>,
}

impl Custom {
    /// The MAC the header carries, decoded; `None` when it is not one.
    fn candidate(&self, value: &str) -> Option<Vec<u8>> {
        let value = value.trim().strip_prefix(self.spec.prefix.as_str())?;
        let bytes = match self.spec.encoding {
            Encoding::Hex => hex::decode(value).ok()?,
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(value).ok()?,
        };
        (bytes.len() == self.spec.alg.digest_len()).then_some(bytes)
    }

    /// Check the signature on the raw bytes (no time: replays are stopped by
    /// the event-key dedup and the stale-event rule, docs/providers.md).
    pub fn verify<'h>(&self, header: &dyn Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<(), SignatureError> {
        let value = super::bounded(header, &[self.spec.header.as_str()])?;
        let candidates: Vec<Vec<u8>> = self.candidate(value).into_iter().collect();
        if any_matches(self.spec.alg, &self.secrets, &[body], &candidates) {
            Ok(())
        } else {
            Err(SignatureError::InvalidSignature)
        }
    }

    /// Map a verified body. The event key is prefixed with the provider's
    /// name, so two declared providers never share a key.
    pub fn map(&self, body: &Value) -> Mapping {
        let s = &self.spec;
        let status = s.status.get(body);
        let name = s.event_name.as_ref().and_then(|p| p.get(body)).or(status).unwrap_or("");
        Read {
            provider: ProviderKind::Custom,
            provider_event: name.chars().take(128).collect(),
            provider_status: status.map(|st| st.chars().take(64).collect()),
            meaning: status.and_then(|st| s.statuses.get(st).copied()),
            event_key: s.event_key.get(body).and_then(super::key_part).map(|k| format!("{}:{k}", s.name.as_str())),
            reference: s.reference.get(body),
            check_id: s.check_id.get(body),
            occurred_at: super::rfc3339(s.time.as_ref().and_then(|p| p.get(body))),
            labels: vec![],
        }
        .settle()
    }
}

impl Adapter for Custom {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn name(&self) -> &str {
        self.spec.name.as_str()
    }

    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        _clock: &Clock,
    ) -> Result<(), SignatureError> {
        Custom::verify(self, header, body)
    }

    fn map(&self, body: &Value) -> Mapping {
        Custom::map(self, body)
    }
}

/// The header value for `body`, as the declared provider writes it.
pub fn sign(spec: &Spec, secret: &Secret, body: &[u8]) -> String {
    let mac = super::mac(spec.alg, secret, &[body]);
    let encoded = match spec.encoding {
        Encoding::Hex => hex::encode(mac),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
    };
    format!("{}{encoded}", spec.prefix)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{headers, lookup};
    use super::super::{IgnoreReason, Reference};
    use super::*;
    use serde_json::json;

    /// Checkr, declared: `X-Checkr-Signature`, the hex HMAC-SHA256 of the raw
    /// body keyed with the account's API key
    /// (<https://docs.checkr.com/apis/webhooks>; Checkr's own examples,
    /// <https://github.com/checkr/webhook-verification-examples>). Its event
    /// envelope is `{id, object: "event", type, created_at, data: {object}}`
    /// and a report's `status` is `pending|suspended|paused|complete|
    /// canceled|dispute`, its `result` `clear|consider` once complete
    /// (<https://docs.checkr.com/use-cases/check-status>).
    pub fn checkr() -> RawSpec {
        serde_json::from_value(json!({
            "signature_header": "X-Checkr-Signature", "encoding": "hex", "algorithm": "sha256",
            "reference": "/data/object/tags/0", "check_id": "/data/object/id", "event_key": "/id",
            "time": "/created_at", "status": "/data/object/result", "event_name": "/type",
            "statuses": {"clear": "verified", "consider": "needs_review"}
        }))
        .unwrap()
    }

    fn adapter(secret: &str) -> Custom {
        Custom { spec: Spec::parse("checkr", &checkr()).unwrap(), secrets: vec![Secret::raw(secret, 1).unwrap()] }
    }

    fn verify(a: &Custom, sig: &str, body: &[u8]) -> Result<(), SignatureError> {
        let h = headers(&[("X-Checkr-Signature", sig.to_owned())]);
        a.verify(&lookup(&h), body)
    }

    /// Checkr's published example: secret `test-secret`, its body, its signature.
    #[test]
    fn checkrs_own_example_verifies() {
        let a = adapter("test-secret");
        let body = br#"{"monday":"75F","tuesday":"80F"}"#;
        let sig = "b7412f05e981a473b5ecbdb5393afaea02a679db6d7c8e56803512ec4ba98151";
        assert_eq!(sign(&a.spec, &a.secrets[0], body), sig);
        assert_eq!(verify(&a, sig, body), Ok(()));
        assert_eq!(verify(&a, &sig.replacen('b', "c", 1), body), Err(SignatureError::InvalidSignature));
        assert_eq!(verify(&a, &sig[..62], body), Err(SignatureError::InvalidSignature));
        assert_eq!(a.verify(&|_: &str| None::<&str>, body), Err(SignatureError::MissingSignature));
        assert_eq!(verify(&a, &"a".repeat(5000), body), Err(SignatureError::TooManyEntries));
    }

    #[test]
    fn prefix_base64_and_algorithms() {
        let mut raw = checkr();
        raw.prefix = Some("sha512=".into());
        raw.encoding = "base64".into();
        raw.algorithm = "sha512".into();
        let a = Custom { spec: Spec::parse("inhouse", &raw).unwrap(), secrets: vec![Secret::raw("k", 1).unwrap()] };
        let sig = sign(&a.spec, &a.secrets[0], b"{}");
        assert!(sig.starts_with("sha512="));
        assert_eq!(verify(&a, &sig, b"{}"), Ok(()));
        assert_eq!(verify(&a, sig.trim_start_matches("sha512="), b"{}"), Err(SignatureError::InvalidSignature));
    }

    /// A `report.completed` in Checkr's envelope, the report included.
    fn report_completed(result: &str, reference: &str) -> Value {
        json!({"id": "1002d6bca6acdfcbb8442178", "object": "event", "type": "report.completed",
            "created_at": "2026-08-17T01:12:43Z", "webhook_url": "https://bridge.example/webhooks/custom/checkr",
            "data": {"object": {"id": "4722c07dd9a10c3985ae432a", "object": "report",
                "uri": "/v1/reports/4722c07dd9a10c3985ae432a", "status": "complete", "result": result,
                "package": "driver_pro", "candidate_id": "e44aa283528e6fde7d542194", "tags": [reference],
                "created_at": "2026-08-15T01:12:43Z", "completed_at": "2026-08-17T01:12:43Z"}}})
    }

    #[test]
    fn a_checkr_report_maps_by_the_table() {
        let a = adapter("k");
        let Mapping::Event(e) = a.map(&report_completed("clear", "cand_1:app_1")) else { panic!() };
        assert_eq!(e.meaning, Meaning::Verified);
        assert_eq!(e.event_key, "checkr:1002d6bca6acdfcbb8442178");
        assert_eq!(e.check_id.as_str(), "4722c07dd9a10c3985ae432a");
        assert_eq!(e.reference, Reference::parse("cand_1:app_1").unwrap());
        assert_eq!(e.provider_event, "report.completed");
        assert_eq!(e.provider_status.as_deref(), Some("clear"));
        assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2026-08-17T01:12:43+00:00");
        let Mapping::Event(e) = a.map(&report_completed("consider", "cand_1:app_1")) else { panic!() };
        assert_eq!(e.meaning, Meaning::NeedsReview);
        // A status the table does not name is recorded and ignored, with its reason.
        let Mapping::Ignored(i) = a.map(&report_completed("suspended", "cand_1:app_1")) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoMeaning);
        let Mapping::Ignored(i) = a.map(&report_completed("clear", "no-reference")) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoReference);
        // Notices are declarable too: a status mapped to `retake` or `expired`.
        let mut raw = checkr();
        raw.statuses.insert("suspended".into(), "retake".into());
        raw.statuses.insert("canceled".into(), "expired".into());
        let a = Custom { spec: Spec::parse("checkr", &raw).unwrap(), secrets: vec![] };
        let Mapping::Event(e) = a.map(&report_completed("suspended", "cand_1:app_1")) else { panic!() };
        assert_eq!(e.meaning, Meaning::Retake);
        let Mapping::Event(e) = a.map(&report_completed("canceled", "cand_1:app_1")) else { panic!() };
        assert_eq!(e.meaning, Meaning::Expired);
        raw.statuses.insert("dispute".into(), "reopened".into());
        assert!(Spec::parse("checkr", &raw).unwrap_err().to_string().contains("retake, expired"));
    }

    #[test]
    fn every_problem_names_its_key() {
        let cases: &[(&str, serde_json::Value, &str)] = &[
            ("checkr", json!({"encoding": "hex64"}), "checkr.encoding"),
            ("checkr", json!({"algorithm": "md5"}), "checkr.algorithm"),
            ("checkr", json!({"prefix": "a very long prefix indeed"}), "checkr.prefix"),
            ("checkr", json!({"reference": "data/object"}), "checkr.reference"),
            ("checkr", json!({"time": "/a~2b"}), "checkr.time"),
            ("checkr", json!({"check_id": "/a".repeat(17)}), "checkr.check_id"),
            ("checkr", json!({"signature_header": "X Checkr"}), "checkr.signature_header"),
            ("checkr", json!({"statuses": {"clear": "approved"}}), "checkr.statuses.clear"),
            ("checkr", json!({"statuses": {}}), "checkr.statuses"),
            ("Checkr", json!({}), "Checkr"),
            ("persona", json!({}), "persona"),
        ];
        for (name, patch, key) in cases {
            let mut raw = serde_json::to_value(checkr_value()).unwrap();
            for (k, v) in patch.as_object().unwrap() {
                raw[k] = v.clone();
            }
            let raw: RawSpec = serde_json::from_value(raw).unwrap();
            let e = Spec::parse(name, &raw).unwrap_err();
            assert_eq!(e.key, *key, "{patch}: {e}");
        }
        let many: BTreeMap<String, String> = (0..=MAX_STATUSES).map(|i| (format!("s{i}"), "verified".into())).collect();
        let mut raw = checkr();
        raw.statuses = many;
        assert_eq!(Spec::parse("checkr", &raw).unwrap_err().key, "checkr.statuses");
    }

    fn checkr_value() -> Value {
        json!({
            "signature_header": "X-Checkr-Signature", "encoding": "hex", "algorithm": "sha256",
            "reference": "/data/object/tags/0", "check_id": "/data/object/id", "event_key": "/id",
            "time": "/created_at", "status": "/data/object/result", "event_name": "/type",
            "statuses": {"clear": "verified", "consider": "needs_review"}
        })
    }
}
