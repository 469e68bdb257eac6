//! Console sessions: a signed cookie. After a login the cookie carries who
//! (subject, roles), until when, a session id, a CSRF token for the forms,
//! and the SHA-256 of the token it came from (none for an OIDC login); it is
//! signed with HMAC-SHA256 under the session key (`VBRIDGE_SESSION_KEY`, or
//! a random key per process: sessions then end with the process). A
//! configured token removed from the configuration ends its sessions at
//! once: every request looks the token's hash up again.
//!
//! A session ends at the soonest of [`LIFETIME_SECS`] after the login and
//! the `exp` of the OIDC token it was made from: it never outlives its
//! credential. Logging out revokes the session id in the store (kept until
//! the session's own end, so every replica refuses a replayed cookie); see
//! `store::sessions`.
//!
//! Cookie: `HttpOnly; SameSite=Strict; Path=/console`, and `Secure` unless
//! the configuration says plain http (`VBRIDGE_CONSOLE_INSECURE_COOKIES`, or
//! dev mode). Forms carry the CSRF token, compared in constant time.

use crate::http::auth::{Grants, Principal, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;

pub const COOKIE: &str = "vbridge_session";
/// How long a console session lasts.
pub const LIFETIME_SECS: i64 = 8 * 3600;

#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// From 64 hex characters, or a random key when none is configured.
    pub fn from_config(hex_key: Option<&str>) -> Result<SessionKey, String> {
        match hex_key {
            Some(h) => hex::decode(h.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(SessionKey)
                .ok_or_else(|| "VBRIDGE_SESSION_KEY must be 64 hex characters (32 bytes)".to_owned()),
            None => {
                let mut k = [0u8; 32];
                k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                Ok(SessionKey(k))
            }
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub sub: String,
    pub roles: Vec<String>,
    /// Unix seconds.
    pub exp: i64,
    pub csrf: String,
    /// SHA-256 (hex) of the configured token logged in with; empty for an
    /// OIDC token (its roles are those it carried at login).
    pub th: String,
    /// The session's id: what a logout revokes.
    pub sid: String,
}

/// A random 128-bit value, hex.
pub fn random_hex() -> String {
    hex::encode(uuid::Uuid::new_v4().as_bytes())
}

impl Session {
    /// A session from `now`, ending at the soonest of [`LIFETIME_SECS`] and
    /// `until` (the `exp` of the OIDC token it is made from).
    pub fn new(p: &Principal, token_hash: Option<String>, now: i64, until: Option<i64>) -> Session {
        let exp = until.map_or(now + LIFETIME_SECS, |u| u.min(now + LIFETIME_SECS));
        Session {
            sub: p.subject.clone(),
            roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            exp,
            csrf: random_hex(),
            th: token_hash.unwrap_or_default(),
            sid: random_hex(),
        }
    }

    pub fn encode(&self, key: &SessionKey) -> String {
        sign(self, key)
    }

    /// A cookie value this process signed, not expired; else `None`.
    pub fn decode(value: &str, key: &SessionKey, now: i64) -> Option<Session> {
        let s: Session = verify(value, key)?;
        (s.exp > now && !s.sid.is_empty()).then_some(s)
    }

    /// Who the session is now: a configured token's grant as it stands
    /// (gone: no session), or the roles an OIDC token carried.
    pub fn principal(&self, grants: &Grants) -> Option<Principal> {
        if self.th.is_empty() {
            let roles: BTreeSet<Role> = self.roles.iter().filter_map(|r| r.parse().ok()).collect();
            return Some(Principal { subject: self.sub.clone(), roles });
        }
        let hash: [u8; 32] = hex::decode(&self.th).ok()?.try_into().ok()?;
        grants.by_hash(&hash).filter(|p| p.subject == self.sub).cloned()
    }

    /// Whether a form's CSRF token is this session's (constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        same(&self.csrf, given)
    }
}

/// `value` as JSON, base64url, and its HMAC under `key`: `{payload}.{mac}`.
pub fn sign<T: serde::Serialize>(value: &T, key: &SessionKey) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("a cookie value serializes"));
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    format!("{payload}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// What [`sign`] made under `key`; else `None`.
pub fn verify<T: serde::de::DeserializeOwned>(value: &str, key: &SessionKey) -> Option<T> {
    let (payload, sig) = value.rsplit_once('.')?;
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    mac.verify_slice(&hex::decode(sig).ok()?).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A MAC of `text` under the key, hex (the login form's CSRF token).
pub fn mac_hex(key: &SessionKey, text: &str) -> String {
    let mut mac = key.mac();
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether two secrets are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The `Set-Cookie` value of a session that lasts `max_age` seconds more (or
/// of its removal, `None`).
pub fn set_cookie(value: Option<(&str, i64)>, secure: bool) -> String {
    match value {
        Some((v, max_age)) => cookie(COOKIE, v, "/console", "Strict", max_age, secure),
        None => cookie(COOKIE, "", "/console", "Strict", 0, secure),
    }
}

/// A `Set-Cookie` value: always `HttpOnly`.
pub fn cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={}{secure}", max_age.max(0))
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    named_cookie(headers, COOKIE)
}

/// A cookie's value among a request's `Cookie` headers.
pub fn named_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal { subject: "rita".into(), roles: [Role::Reviewer].into_iter().collect() }
    }

    #[test]
    fn a_session_round_trips_and_refuses_tampering_expiry_and_other_keys() {
        let key = SessionKey::from_config(None).unwrap();
        let s = Session::new(&principal(), None, 1_000, None);
        let v = s.encode(&key);
        assert_eq!(Session::decode(&v, &key, 1_001), Some(s.clone()));
        assert_eq!(Session::decode(&v, &key, 1_000 + LIFETIME_SECS), None, "expired");
        let other = SessionKey::from_config(None).unwrap();
        assert_eq!(Session::decode(&v, &other, 1_001), None, "another key");
        let (payload, sig) = v.rsplit_once('.').unwrap();
        let mut forged = s.clone();
        forged.roles = vec!["admin".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(Session::decode(&format!("{forged_payload}.{sig}"), &key, 1_001), None, "edited roles");
        assert!(Session::decode(payload, &key, 1_001).is_none());
        assert!(s.csrf_ok(&s.csrf.clone()) && !s.csrf_ok("x") && !s.csrf_ok(""));
        assert!(SessionKey::from_config(Some("abc")).is_err());
    }

    #[test]
    fn a_removed_token_ends_its_sessions() {
        let hash = hex::encode(<Sha256 as sha2::Digest>::digest(b"tok"));
        let grants = Grants::parse(&format!("reviewer:rita:{hash}")).unwrap();
        let s = Session::new(&principal(), Some(hash), 0, None);
        assert_eq!(s.principal(&grants).unwrap().subject, "rita");
        assert!(s.principal(&Grants::default()).is_none());
    }

    #[test]
    fn a_session_never_outlives_its_token() {
        let key = SessionKey::from_config(None).unwrap();
        let s = Session::new(&principal(), None, 1_000, Some(1_600));
        assert_eq!(s.exp, 1_600, "the token's exp, sooner than 8 hours");
        let v = s.encode(&key);
        assert!(Session::decode(&v, &key, 1_599).is_some());
        assert_eq!(Session::decode(&v, &key, 1_600), None, "ended with the token");
        let late = Session::new(&principal(), None, 1_000, Some(1_000 + 3 * LIFETIME_SECS));
        assert_eq!(late.exp, 1_000 + LIFETIME_SECS, "8 hours at most");
        assert_ne!(s.sid, late.sid, "each session has its own id");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_unless_told_otherwise() {
        let c = set_cookie(Some(("v", 60)), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("; Secure"));
        assert!(c.contains("Max-Age=60"));
        assert!(!set_cookie(Some(("v", 60)), false).contains("Secure"));
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::COOKIE, "a=b; vbridge_session=xyz.1".parse().unwrap());
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz.1"));
    }
}
