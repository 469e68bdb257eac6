//! The audit key: links made as an HMAC-SHA256 under a key kept outside the
//! database, so that whoever can write to the database cannot recompute a
//! consistent history after editing, removing or inserting a record. A plain
//! SHA-256 link can be recomputed by anyone; a keyed one only by a holder of
//! the key.
//!
//! Each link stores the id of the key that made it, so keys rotate: the
//! keyring's first key signs, every key in it verifies. The id is derived
//! from the key (a fingerprint), so it cannot be mistyped and names no secret.
//! Links made before any key was configured carry no id and verify as plain
//! SHA-256 links, as they always did.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The shortest audit key taken: 32 bytes (64 hex characters).
pub const MIN_KEY_BYTES: usize = 32;

/// One audit key. Its bytes are never printed.
#[derive(Clone)]
pub struct AuditKey {
    id: String,
    secret: Vec<u8>,
}

impl AuditKey {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The HMAC-SHA256 of `bytes` under this key, as hex.
    pub fn mac_hex(&self, bytes: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({}, ..)", self.id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("audit key #{0} is not hex")]
    NotHex(usize),
    #[error("audit key #{0} is {1} bytes; at least {MIN_KEY_BYTES} are needed (64 hex characters)")]
    Short(usize, usize),
}

/// The audit keys: the first signs new links, all of them verify.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<AuditKey>,
}

/// A key's id: `ak-` and 16 hex characters of a SHA-256 of the key, domain
/// separated so the id is no hash a link could ever be.
pub fn key_id(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"vbridge audit key id\n");
    h.update(secret);
    format!("ak-{}", &hex::encode(h.finalize())[..16])
}

impl Keyring {
    /// No key: links are plain SHA-256, as before keys existed.
    pub fn none() -> Keyring {
        Keyring::default()
    }

    /// Keys as hex, separated by commas, whitespace or newlines; the newest
    /// (the one that signs) first. Empty text is no key.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut keys = vec![];
        for (i, entry) in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()).enumerate() {
            let secret = hex::decode(entry).map_err(|_| KeyError::NotHex(i + 1))?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeyError::Short(i + 1, secret.len()));
            }
            keys.push(AuditKey { id: key_id(&secret), secret });
        }
        Ok(Keyring { keys })
    }

    /// The key that signs new links.
    pub fn signing(&self) -> Option<&AuditKey> {
        self.keys.first()
    }

    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids held (for `config show`): never the keys.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_rotate_and_never_print() {
        let (a, b) = ("11".repeat(32), "22".repeat(40));
        let ring = Keyring::parse(&format!(" {a},\n{b} ")).unwrap();
        assert_eq!(ring.ids().len(), 2);
        assert_eq!(ring.signing().unwrap().id(), key_id(&hex::decode(&a).unwrap()));
        assert!(ring.get(&key_id(&hex::decode(&b).unwrap())).is_some(), "an older key still verifies");
        assert!(!format!("{ring:?}").contains(&a[..8]), "{ring:?}");
        assert_eq!(Keyring::parse("zz").unwrap_err(), KeyError::NotHex(1));
        assert_eq!(Keyring::parse(&"ab".repeat(16)).unwrap_err(), KeyError::Short(1, 16));
        assert!(Keyring::parse("").unwrap().is_empty());
        assert_ne!(ring.signing().unwrap().mac_hex(b"x"), ring.get(ring.ids()[1]).unwrap().mac_hex(b"x"));
    }
}
