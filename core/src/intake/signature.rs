//! Webhook signature checks (docs/contract.md §2): the IL scheme (`X-IL-Signature`,
//! `X-IL-Timestamp`) and Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`). Several secrets may be live at once (rotation); any
//! one that verifies is enough. Comparisons are constant-time (`subtle`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const SW_ID: &str = "webhook-id";
pub const SW_TIMESTAMP: &str = "webhook-timestamp";
pub const SW_SIGNATURE: &str = "webhook-signature";

/// One signing secret. `whsec_<base64>` is a Standard Webhooks secret whose
/// key is the decoded bytes; anything else is used as its UTF-8 bytes.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret #{0} is empty")]
    Empty(usize),
    #[error("secret #{0} starts with whsec_ but is not valid base64")]
    BadBase64(usize),
}

impl Secret {
    pub fn parse(s: &str, index: usize) -> Result<Secret, SecretError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SecretError::Empty(index));
        }
        match s.strip_prefix("whsec_") {
            Some(b64) => B64.decode(b64).map(|key| Secret { key }).map_err(|_| SecretError::BadBase64(index)),
            None => Ok(Secret { key: s.as_bytes().to_vec() }),
        }
    }

    /// Parse a comma-separated list (`VBRIDGE_WEBHOOK_SECRETS`).
    pub fn parse_list(csv: &str) -> Result<Vec<Secret>, SecretError> {
        csv.split(',').filter(|s| !s.trim().is_empty()).enumerate().map(|(i, s)| Secret::parse(s, i + 1)).collect()
    }

    /// A provider's secret (Persona's `wbhsec_…`, Onfido's token, Veriff's
    /// and Sumsub's shared secrets): its UTF-8 bytes as written, never decoded.
    pub fn raw(s: &str, index: usize) -> Result<Secret, SecretError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SecretError::Empty(index));
        }
        Ok(Secret { key: s.as_bytes().to_vec() })
    }

    /// A comma-separated list of [`Secret::raw`] secrets.
    pub fn parse_raw_list(csv: &str) -> Result<Vec<Secret>, SecretError> {
        csv.split(',').filter(|s| !s.trim().is_empty()).enumerate().map(|(i, s)| Secret::raw(s, i + 1)).collect()
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size")
    }
}

/// Why a delivery failed authentication; each maps to a contract error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request carries no signature")]
    MissingSignature,
    #[error("no signature matches any configured secret")]
    InvalidSignature,
    #[error("the request carries no valid timestamp")]
    MissingTimestamp,
    #[error("the timestamp is outside the allowed skew")]
    TimestampOutOfTolerance,
    #[error("the signature header carries more than 8 entries")]
    TooManyEntries,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::MissingSignature => "missing_signature",
            SignatureError::InvalidSignature | SignatureError::TooManyEntries => "invalid_signature",
            SignatureError::MissingTimestamp => "missing_timestamp",
            SignatureError::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    IlHmac,
    StandardWebhooks,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::IlHmac => "il-hmac",
            Scheme::StandardWebhooks => "standard-webhooks",
        }
    }
}

/// At most this many signature entries are considered in one header; a header
/// with more is refused (`invalid_signature`) before any MAC is computed.
pub const MAX_SIGNATURE_ENTRIES: usize = 8;

/// What the checker needs from the request and the policy.
pub struct Check<'a> {
    pub signature_header: &'a str,
    pub timestamp_header: &'a str,
    pub max_skew_seconds: u64,
    /// `replayProtection.required`: when false the skew window is not checked
    /// (the timestamp is still part of what is signed).
    pub replay_protection: bool,
    pub now_unix: i64,
}

/// Verify a delivery. `header` looks a header up by (case-insensitive) name.
pub fn verify<'h>(
    check: &Check<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[Secret],
) -> Result<Scheme, SignatureError> {
    verify_counting(check, header, body, secrets, &mut 0)
}

/// [`verify`], adding the number of MACs it computed to `macs`: one per
/// (secret, scheme) at most, however many entries the header carries.
pub fn verify_counting<'h>(
    check: &Check<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[Secret],
    macs: &mut usize,
) -> Result<Scheme, SignatureError> {
    if let Some(sig) = header(SW_SIGNATURE) {
        let ts = header(SW_TIMESTAMP).ok_or(SignatureError::MissingTimestamp)?;
        let ts_num = parse_ts(ts)?;
        let id = header(SW_ID).ok_or(SignatureError::InvalidSignature)?;
        let entries = bounded_entries(sig.split_whitespace())?;
        let candidates: Vec<Vec<u8>> =
            entries.iter().filter_map(|e| e.strip_prefix("v1,")).filter_map(|b64| B64.decode(b64).ok()).collect();
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
        return settle(check, secrets, &candidates, &parts, ts_num, Scheme::StandardWebhooks, macs);
    }
    let sig = header(check.signature_header).ok_or(SignatureError::MissingSignature)?;
    let ts = header(check.timestamp_header).ok_or(SignatureError::MissingTimestamp)?;
    let ts_num = parse_ts(ts)?;
    let entries = bounded_entries(sig.split(|c: char| c == ',' || c.is_whitespace()))?;
    let candidates: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|entry| entry.strip_prefix("v1="))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .filter_map(|h| hex::decode(h).ok())
        .collect();
    let parts: [&[u8]; 3] = [ts.as_bytes(), b".", body];
    settle(check, secrets, &candidates, &parts, ts_num, Scheme::IlHmac, macs)
}

/// The non-empty entries of a signature header, refused past the bound.
fn bounded_entries<'a>(split: impl Iterator<Item = &'a str>) -> Result<Vec<&'a str>, SignatureError> {
    let entries: Vec<&str> = split.filter(|e| !e.is_empty()).take(MAX_SIGNATURE_ENTRIES + 1).collect();
    if entries.len() > MAX_SIGNATURE_ENTRIES { Err(SignatureError::TooManyEntries) } else { Ok(entries) }
}

fn mac_over(secret: &Secret, parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = secret.mac();
    for p in parts {
        mac.update(p);
    }
    mac
}

/// One MAC per secret over `parts`, compared in constant time with every
/// candidate; then the skew check.
fn settle(
    check: &Check<'_>,
    secrets: &[Secret],
    candidates: &[Vec<u8>],
    parts: &[&[u8]],
    ts: i64,
    scheme: Scheme,
    macs: &mut usize,
) -> Result<Scheme, SignatureError> {
    let mut matched = false;
    if !candidates.is_empty() {
        for s in secrets {
            *macs += 1;
            let expected = mac_over(s, parts).finalize().into_bytes();
            for c in candidates {
                matched |= bool::from(expected.as_slice().ct_eq(c.as_slice()));
            }
        }
    }
    if !matched {
        return Err(SignatureError::InvalidSignature);
    }
    if check.replay_protection {
        skew(check, ts)?;
    }
    Ok(scheme)
}

fn parse_ts(ts: &str) -> Result<i64, SignatureError> {
    ts.trim().parse::<i64>().map_err(|_| SignatureError::MissingTimestamp)
}

fn skew(check: &Check<'_>, ts: i64) -> Result<(), SignatureError> {
    if check.now_unix.abs_diff(ts) > check.max_skew_seconds {
        Err(SignatureError::TimestampOutOfTolerance)
    } else {
        Ok(())
    }
}

/// `v1=<hex>` for the IL scheme (what a provider, `simulate` and tests send).
pub fn sign_il(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mac = mac_over(secret, &[format!("{timestamp}.").as_bytes(), body]);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `v1,<base64>` for Standard Webhooks.
pub fn sign_standard(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = mac_over(secret, &[format!("{id}.{timestamp}.").as_bytes(), body]);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: i64 = 1_800_000_000;

    fn check() -> Check<'static> {
        Check {
            signature_header: "X-IL-Signature",
            timestamp_header: "X-IL-Timestamp",
            max_skew_seconds: 300,
            replay_protection: true,
            now_unix: NOW,
        }
    }

    fn run(headers: &[(&str, String)], body: &[u8], secrets: &[Secret]) -> Result<Scheme, SignatureError> {
        let map: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
        verify(&check(), |name| map.get(&name.to_ascii_lowercase()).map(String::as_str), body, secrets)
    }

    fn il(secret: &Secret, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![("X-IL-Signature", sign_il(secret, ts, body)), ("X-IL-Timestamp", ts.to_string())]
    }

    #[test]
    fn il_scheme_accepts_valid_and_rejects_tampering() {
        let s = Secret::parse("topsecret", 1).unwrap();
        let body = br#"{"a":1}"#;
        assert_eq!(run(&il(&s, NOW, body), body, std::slice::from_ref(&s)), Ok(Scheme::IlHmac));
        assert_eq!(
            run(&il(&s, NOW, body), br#"{"a":2}"#, std::slice::from_ref(&s)),
            Err(SignatureError::InvalidSignature)
        );
        let other = Secret::parse("wrong", 1).unwrap();
        assert_eq!(run(&il(&other, NOW, body), body, std::slice::from_ref(&s)), Err(SignatureError::InvalidSignature));
        // Uppercase hex is not the contract's form.
        let mut h = il(&s, NOW, body);
        h[0].1 = h[0].1.to_uppercase().replace("V1=", "v1=");
        assert_eq!(run(&h, body, &[s]), Err(SignatureError::InvalidSignature));
    }

    #[test]
    fn rotation_any_secret_and_any_entry() {
        let old = Secret::parse("old-secret", 1).unwrap();
        let new = Secret::parse("new-secret", 2).unwrap();
        let body = b"{}";
        // Signed with the old secret; both are live.
        assert!(run(&il(&old, NOW, body), body, &[new.clone(), old.clone()]).is_ok());
        // Provider sends two entries (it is rotating too), comma or space separated.
        for sep in [",", " ", ", "] {
            let sig =
                format!("{}{sep}{}", sign_il(&Secret::parse("nope", 1).unwrap(), NOW, body), sign_il(&new, NOW, body));
            let h = vec![("X-IL-Signature", sig), ("X-IL-Timestamp", NOW.to_string())];
            assert!(run(&h, body, &[old.clone(), new.clone()]).is_ok(), "separator {sep:?}");
        }
        // After the old secret is retired.
        assert_eq!(run(&il(&old, NOW, body), body, &[new]), Err(SignatureError::InvalidSignature));
    }

    #[test]
    fn skew_in_both_directions() {
        let s = Secret::parse("k", 1).unwrap();
        let body = b"{}";
        assert!(run(&il(&s, NOW - 300, body), body, std::slice::from_ref(&s)).is_ok());
        assert!(run(&il(&s, NOW + 300, body), body, std::slice::from_ref(&s)).is_ok());
        assert_eq!(
            run(&il(&s, NOW - 301, body), body, std::slice::from_ref(&s)),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            run(&il(&s, NOW + 301, body), body, std::slice::from_ref(&s)),
            Err(SignatureError::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn missing_parts() {
        let s = Secret::parse("k", 1).unwrap();
        assert_eq!(run(&[], b"{}", std::slice::from_ref(&s)), Err(SignatureError::MissingSignature));
        let h = vec![("X-IL-Signature", sign_il(&s, NOW, b"{}"))];
        assert_eq!(run(&h, b"{}", std::slice::from_ref(&s)), Err(SignatureError::MissingTimestamp));
        let h = vec![("X-IL-Signature", sign_il(&s, NOW, b"{}")), ("X-IL-Timestamp", "soon".into())];
        assert_eq!(run(&h, b"{}", &[s]), Err(SignatureError::MissingTimestamp));
    }

    #[test]
    fn standard_webhooks_scheme() {
        // Test vector shape from the Standard Webhooks spec: whsec_ + base64 key.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let sig = sign_standard(&s, id, NOW, body);
        let h = vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", NOW.to_string()),
            ("webhook-signature", format!("v1,Zm9v {sig}")),
        ];
        assert_eq!(run(&h, body, &[Secret::parse("plain", 1).unwrap(), s.clone()]), Ok(Scheme::StandardWebhooks));
        let h = vec![
            ("webhook-id", "msg_other".to_owned()),
            ("webhook-timestamp", NOW.to_string()),
            ("webhook-signature", sig.clone()),
        ];
        assert_eq!(run(&h, body, std::slice::from_ref(&s)), Err(SignatureError::InvalidSignature));
        let h = vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", (NOW - 400).to_string()),
            ("webhook-signature", sign_standard(&s, id, NOW - 400, body)),
        ];
        assert_eq!(run(&h, body, &[s]), Err(SignatureError::TimestampOutOfTolerance));
    }

    #[test]
    fn standard_webhooks_known_vector() {
        // From the Standard Webhooks reference implementation's test suite.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1).unwrap();
        let sig = sign_standard(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn one_mac_per_secret_however_many_entries() {
        let secrets = [Secret::parse("a", 1).unwrap(), Secret::parse("b", 2).unwrap(), Secret::parse("c", 3).unwrap()];
        let body = b"{}";
        let map = |sig: String| -> HashMap<String, String> {
            [("x-il-signature".to_owned(), sig), ("x-il-timestamp".to_owned(), NOW.to_string())].into()
        };
        let count = |h: &HashMap<String, String>| {
            let mut macs = 0;
            let r = verify_counting(
                &check(),
                |n| h.get(&n.to_ascii_lowercase()).map(String::as_str),
                body,
                &secrets,
                &mut macs,
            );
            (r, macs)
        };
        // 10,000 entries: refused before a single MAC is computed.
        let flood = vec![format!("v1={}", "0".repeat(64)); 10_000].join(",");
        assert_eq!(count(&map(flood)), (Err(SignatureError::TooManyEntries), 0));
        // 8 entries, the last one right: one MAC per secret, not per entry.
        let mut eight = vec![format!("v1={}", "0".repeat(64)); 7];
        eight.push(sign_il(&secrets[2], NOW, body));
        assert_eq!(count(&map(eight.join(" "))), (Ok(Scheme::IlHmac), 3));
        // 9 entries are one too many, even with a right one among them.
        let mut nine = eight.clone();
        nine.insert(0, "v1=00".into());
        assert_eq!(count(&map(nine.join(","))).0, Err(SignatureError::TooManyEntries));
        // No well-formed entry: no MAC at all.
        assert_eq!(count(&map("v0=zz".into())), (Err(SignatureError::InvalidSignature), 0));
    }

    #[test]
    fn replay_protection_off_skips_the_window_only() {
        let s = Secret::parse("k", 1).unwrap();
        let body = b"{}";
        let old = NOW - 86_400;
        let h: HashMap<String, String> =
            [("x-il-signature".into(), sign_il(&s, old, body)), ("x-il-timestamp".into(), old.to_string())].into();
        let look = |n: &str| h.get(&n.to_ascii_lowercase()).map(String::as_str);
        let mut c = check();
        assert_eq!(verify(&c, look, body, std::slice::from_ref(&s)), Err(SignatureError::TimestampOutOfTolerance));
        c.replay_protection = false;
        assert_eq!(verify(&c, look, body, std::slice::from_ref(&s)), Ok(Scheme::IlHmac));
        assert_eq!(verify(&c, look, b"{\"x\":1}", &[s]), Err(SignatureError::InvalidSignature));
    }

    #[test]
    fn secrets_parse() {
        assert_eq!(Secret::parse_list("a, b ,whsec_Zm9v").unwrap().len(), 3);
        assert_eq!(Secret::parse_list("whsec_!!").unwrap_err(), SecretError::BadBase64(1));
    }
}
