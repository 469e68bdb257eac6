//! Webhook signature checks (CONTRACT §2): the IL scheme (`X-IL-Signature`,
//! `X-IL-Timestamp`) and Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`). Several secrets may be live at once (rotation); any
//! one that verifies is enough. Comparisons are constant-time (`verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::MissingSignature => "missing_signature",
            SignatureError::InvalidSignature => "invalid_signature",
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

/// What the checker needs from the request and the policy.
pub struct Check<'a> {
    pub signature_header: &'a str,
    pub timestamp_header: &'a str,
    pub max_skew_seconds: u64,
    pub now_unix: i64,
}

/// Verify a delivery. `header` looks a header up by (case-insensitive) name.
pub fn verify<'h>(
    check: &Check<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[Secret],
) -> Result<Scheme, SignatureError> {
    if let Some(sig) = header(SW_SIGNATURE) {
        let ts = header(SW_TIMESTAMP).ok_or(SignatureError::MissingTimestamp)?;
        let ts_num = parse_ts(ts)?;
        let id = header(SW_ID).ok_or(SignatureError::InvalidSignature)?;
        let candidates: Vec<Vec<u8>> = sig
            .split_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| B64.decode(b64).ok())
            .collect();
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
        return settle(check, secrets, &candidates, &parts, ts_num, Scheme::StandardWebhooks);
    }
    let sig = header(check.signature_header).ok_or(SignatureError::MissingSignature)?;
    let ts = header(check.timestamp_header).ok_or(SignatureError::MissingTimestamp)?;
    let ts_num = parse_ts(ts)?;
    let candidates: Vec<Vec<u8>> = sig
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|entry| entry.strip_prefix("v1="))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .filter_map(|h| hex::decode(h).ok())
        .collect();
    let parts: [&[u8]; 3] = [ts.as_bytes(), b".", body];
    settle(check, secrets, &candidates, &parts, ts_num, Scheme::IlHmac)
}

fn mac_over(secret: &Secret, parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = secret.mac();
    for p in parts {
        mac.update(p);
    }
    mac
}

/// Any candidate signature made by any secret over `parts`, then the skew check.
fn settle(
    check: &Check<'_>,
    secrets: &[Secret],
    candidates: &[Vec<u8>],
    parts: &[&[u8]],
    ts: i64,
    scheme: Scheme,
) -> Result<Scheme, SignatureError> {
    let matched = secrets.iter().any(|s| candidates.iter().any(|c| mac_over(s, parts).verify_slice(c).is_ok()));
    if !matched {
        return Err(SignatureError::InvalidSignature);
    }
    skew(check, ts)?;
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
    fn secrets_parse() {
        assert_eq!(Secret::parse_list("a, b ,whsec_Zm9v").unwrap().len(), 3);
        assert_eq!(Secret::parse_list("whsec_!!").unwrap_err(), SecretError::BadBase64(1));
    }
}
