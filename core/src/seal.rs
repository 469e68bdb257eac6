//! Crypto-shredding (docs/privacy.md, contract §9): every field that can hold
//! a candidate's personal data is stored sealed under a key of the
//! candidate's own, and erasing the candidate destroys the key.
//!
//! A sealed field is text: `vbx1:` and the base64url (no padding) of a
//! 96-bit nonce followed by the ChaCha20-Poly1305 ciphertext and its tag.
//! The associated data is the candidate's id, so a field moved to another
//! candidate does not open. The audit chains link the sealed text, so they
//! verify with or without the key.
//!
//! Why ChaCha20-Poly1305 from `ring`: an AEAD (a changed byte fails to open,
//! it never decrypts to something else), constant-time without AES hardware,
//! and `ring` is audited and already in the tree through rustls.
//!
//! Pure: the caller gives the nonce (the worker draws it from the OS).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde_json::Value;

/// What a sealed field starts with.
pub const PREFIX: &str = "vbx1:";
/// What a reader shows in place of a field whose key was destroyed.
pub const ERASED: &str = "erased";
/// A key's length in bytes.
pub const KEY_LEN: usize = 32;

/// A candidate's field key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldKey([u8; KEY_LEN]);

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a field key is {KEY_LEN} bytes")]
    KeyLength,
    #[error("not a sealed field")]
    NotSealed,
    #[error("the sealed field does not open under this key")]
    DoesNotOpen,
}

impl FieldKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<FieldKey, SealError> {
        bytes.try_into().map(FieldKey).map_err(|_| SealError::KeyLength)
    }

    /// From 64 hex digits (how an evidence pack carries it).
    pub fn from_hex(text: &str) -> Result<FieldKey, SealError> {
        FieldKey::from_bytes(&hex::decode(text.trim()).map_err(|_| SealError::KeyLength)?)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.0).expect("32 bytes is ChaCha20's key"))
    }
}

/// Whether `text` is a sealed field.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Seal `plaintext` of `candidate_id` under `key`, with a nonce never used
/// before under this key (the worker draws 96 random bits).
pub fn seal(key: &FieldKey, candidate_id: &str, nonce: [u8; NONCE_LEN], plaintext: &str) -> String {
    let mut buf = plaintext.as_bytes().to_vec();
    key.aead()
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(candidate_id.as_bytes()), &mut buf)
        .expect("a field is far below ChaCha20's limit");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
}

/// Open a sealed field of `candidate_id`.
pub fn open(key: &FieldKey, candidate_id: &str, sealed: &str) -> Result<String, SealError> {
    let body = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
    let mut bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::DoesNotOpen)?;
    if bytes.len() < NONCE_LEN {
        return Err(SealError::DoesNotOpen);
    }
    let mut ct = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SealError::DoesNotOpen)?;
    let plain = key
        .aead()
        .open_in_place(nonce, Aad::from(candidate_id.as_bytes()), &mut ct)
        .map_err(|_| SealError::DoesNotOpen)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SealError::DoesNotOpen)
}

/// What a reader shows of a stored field: the text itself when it is not
/// sealed; its plaintext when `key` opens it; [`ERASED`] when the key is
/// gone (or is not the one that sealed it). A JSON object or array whose
/// string values are sealed (a human move's `{"note": …}`) shows each one
/// so; text with nothing sealed in it is returned as it is.
pub fn reveal(key: Option<&FieldKey>, candidate_id: &str, text: &str) -> String {
    if is_sealed(text) {
        return open_or_erased(key, candidate_id, text);
    }
    if !text.contains(PREFIX) || !(text.starts_with('{') || text.starts_with('[')) {
        return text.to_owned();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            reveal_value(key, candidate_id, &mut v);
            v.to_string()
        }
        Err(_) => text.to_owned(),
    }
}

fn open_or_erased(key: Option<&FieldKey>, candidate_id: &str, text: &str) -> String {
    key.and_then(|k| open(k, candidate_id, text).ok()).unwrap_or_else(|| ERASED.to_owned())
}

fn reveal_value(key: Option<&FieldKey>, candidate_id: &str, v: &mut Value) {
    match v {
        Value::String(s) if is_sealed(s) => *s = open_or_erased(key, candidate_id, s),
        Value::Array(items) => items.iter_mut().for_each(|i| reveal_value(key, candidate_id, i)),
        Value::Object(map) => map.values_mut().for_each(|i| reveal_value(key, candidate_id, i)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> FieldKey {
        FieldKey::from_bytes(&[b; KEY_LEN]).unwrap()
    }

    #[test]
    fn a_sealed_field_opens_only_under_its_key_and_candidate() {
        let k = key(1);
        let s = seal(&k, "cand-1", [7; NONCE_LEN], "ana@example.com");
        assert!(is_sealed(&s) && !s.contains("ana"), "{s}");
        assert_eq!(open(&k, "cand-1", &s).unwrap(), "ana@example.com");
        assert_eq!(open(&key(2), "cand-1", &s), Err(SealError::DoesNotOpen), "another key");
        assert_eq!(open(&k, "cand-2", &s), Err(SealError::DoesNotOpen), "moved to another candidate");
        assert_eq!(open(&k, "cand-1", "plain"), Err(SealError::NotSealed));
        // Any changed character fails to open; it never opens to other text.
        for i in PREFIX.len()..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(b).unwrap();
            if edited != s {
                assert!(open(&k, "cand-1", &edited).is_err(), "edited at {i}");
            }
        }
        assert!(open(&k, "cand-1", "vbx1:").is_err() && open(&k, "cand-1", "vbx1:!!").is_err());
    }

    #[test]
    fn two_seals_of_one_value_differ_by_their_nonce() {
        let k = key(1);
        assert_ne!(seal(&k, "c", [1; NONCE_LEN], "x"), seal(&k, "c", [2; NONCE_LEN], "x"));
    }

    #[test]
    fn reveal_shows_plaintext_with_the_key_and_erased_without_it() {
        let k = key(3);
        let note = seal(&k, "c", [9; NONCE_LEN], "called the candidate");
        let detail = serde_json::json!({ "note": note, "n": 1 }).to_string();
        let cases: &[(&str, Option<&FieldKey>, &str, &str)] = &[
            ("a sealed field, keyed", Some(&k), &note, "called the candidate"),
            ("a sealed field, key gone", None, &note, ERASED),
            ("a sealed field, another key", Some(&FieldKey::from_bytes(&[4; 32]).unwrap()), &note, ERASED),
            ("plain text stays", None, "policy_mismatch", "policy_mismatch"),
            ("JSON with nothing sealed stays byte for byte", None, r#"{"b": 1,"a":2}"#, r#"{"b": 1,"a":2}"#),
            ("JSON with a sealed value, keyed", Some(&k), &detail, r#"{"n":1,"note":"called the candidate"}"#),
            ("JSON with a sealed value, key gone", None, &detail, r#"{"n":1,"note":"erased"}"#),
        ];
        for (what, key, text, want) in cases {
            assert_eq!(reveal(*key, "c", text), *want, "{what}");
        }
    }

    #[test]
    fn keys_parse_from_their_hex_and_never_print() {
        let k = key(5);
        assert_eq!(FieldKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_eq!(FieldKey::from_hex("abcd"), Err(SealError::KeyLength));
        assert_eq!(format!("{k:?}"), "FieldKey(..)");
    }
}
