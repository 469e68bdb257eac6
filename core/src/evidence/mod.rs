//! Evidence packs (docs/evidence.md, contract §9): one file per candidate
//! that a third party checks offline, with no store and no network.
//!
//! A pack holds every record of the candidate's chains exactly as its link
//! covers it (the `linked` bytes: stream, position, previous hash and the
//! stored record, as the store hashed them), the chains' heads at export,
//! the policy's version and digest, a summary derived from the records
//! (decisions with actor and reason code, ATS writes with their idempotency
//! keys and answers, the provider's evidence links), and an Ed25519
//! signature over all of it.
//!
//! Why Ed25519 and not the audit key's HMAC: the checker is a third party (an
//! auditor, a regulator, the candidate's counsel). An HMAC key that can check
//! a pack can also forge one, and the audit key must never leave the bridge;
//! the public half of an Ed25519 key checks and cannot sign. The signature
//! is the seal of the heads it covers: made at export, by the bridge's
//! evidence key, over the heads and every record behind them.
//!
//! Pure: [`verify`] takes the file's bytes and, optionally, the public key
//! the checker trusts and the audit keys the checker holds.

mod summary;
mod verify;

pub use summary::{Summary, TimelineLine, summarize, timeline};
pub use verify::{Problem, Verified, verify};

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format this code writes: /2 adds the human moves' notes (sealed in
/// the records, opened with the pack's field key), the field key and the
/// erasures.
pub const FORMAT: &str = "vbridge-evidence-pack/2";
/// The first format, still read: its summary and timeline carry no notes.
pub const FORMAT_V1: &str = "vbridge-evidence-pack/1";
/// The signature's algorithm.
pub const ALG: &str = "Ed25519";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    pub format: String,
    pub candidate_id: String,
    pub exported_at: String,
    /// Who asked for it (the API's subject, or the CLI's operator).
    pub exported_by: String,
    pub policy: PolicyRef,
    /// Every record as a line, in time order ([`timeline`]); `verify`
    /// derives it again.
    pub timeline: Vec<TimelineLine>,
    pub chains: Vec<Chain>,
    /// Derived from the records ([`summarize`]); `verify` derives it again.
    pub summary: Summary,
    /// The candidate's field key (64 hex digits: docs/privacy.md), so that
    /// a checker opens the sealed fields and sees they are what the links
    /// cover. Empty once the candidate was erased: the fields show `erased`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_key: String,
    /// The candidate's erasures, from the bridge's `erasure` chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erasures: Vec<Erasure>,
    pub signature: Signature,
}

/// How sealed fields are shown ([`summarize`], [`timeline`]).
#[derive(Debug, Clone, Default)]
pub struct Reveal {
    /// The candidate's field key (none: sealed fields show `erased`).
    pub key: Option<crate::seal::FieldKey>,
    /// Whether the human moves' notes are shown (format /2 on).
    pub notes: bool,
}

/// One erasure of the candidate (its record in the `erasure` chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub recorded_at: String,
    pub actor: String,
    pub reason_code: String,
    pub trigger: String,
    /// The erasure record's link in the `erasure` chain.
    pub chain_pos: i64,
    pub hash: String,
}

impl Pack {
    /// How the pack's summary and timeline show sealed fields: opened with
    /// the field key it carries; notes only from format /2 on.
    pub fn reveal(&self) -> Reveal {
        Reveal { key: self.field_key(), notes: self.format != FORMAT_V1 }
    }

    /// The field key the pack carries, when it carries a valid one.
    pub fn field_key(&self) -> Option<crate::seal::FieldKey> {
        crate::seal::FieldKey::from_hex(&self.field_key).ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub version: String,
    pub sha256: String,
}

/// One chain (one application of the candidate), from its first kept
/// record to its head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub stream: String,
    /// Where the chain starts when retention cut records before it: the
    /// first kept record's position and the hash it links to.
    pub starts_at: Option<Start>,
    /// The chain's head when the pack was made.
    pub head: Head,
    pub records: Vec<Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub chain_pos: i64,
    pub prev_hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub chain_pos: i64,
    pub hash: String,
}

/// Which table a record came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    #[default]
    Delivery,
    Decision,
}

/// One record, with its link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub table: Table,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The audit key that made the link (empty: a plain SHA-256).
    pub key_id: String,
    /// SHA-256 of `linked`: for a plain link, the link itself; for a keyed
    /// one, what a checker without the audit key compares.
    pub sha256: String,
    /// The exact bytes the link covers (JSON: stream, chain_pos, prev_hash,
    /// [key_id,] record).
    pub linked: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub alg: String,
    /// The first 16 hex digits of the SHA-256 of the public key.
    pub key_id: String,
    /// The public key (32 bytes, base64).
    pub public_key: String,
    /// The signature (64 bytes, base64) over [`signed_bytes`].
    pub value: String,
}

/// The evidence key, from its 32-byte seed (64 hex digits, or base64).
#[derive(Clone)]
pub struct EvidenceKey(SigningKey);

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvidenceKey({})", key_id(&self.0.verifying_key()))
    }
}

impl EvidenceKey {
    pub fn from_seed(seed: [u8; 32]) -> EvidenceKey {
        EvidenceKey(SigningKey::from_bytes(&seed))
    }

    /// Parse a seed as configured: 64 hex digits, or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<EvidenceKey, String> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| e.to_string())?
        } else {
            base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| "neither 64 hex digits nor base64")?
        };
        let seed: [u8; 32] = bytes.try_into().map_err(|_| "the seed must be 32 bytes")?;
        Ok(EvidenceKey::from_seed(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Sign `pack` (its signature is replaced).
    pub fn sign(&self, pack: &mut Pack) {
        let public = self.public();
        pack.signature =
            Signature { alg: ALG.into(), key_id: public.id(), public_key: public.to_base64(), value: String::new() };
        let sig = self.0.sign(&signed_bytes(pack));
        pack.signature.value = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
    }
}

/// An evidence key's public half: what `docs/evidence.md` publishes and the
/// bridge serves at `/.well-known/vbridge-evidence-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

fn key_id(k: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(k.as_bytes()))[..16].to_owned()
}

impl PublicKey {
    pub fn id(&self) -> String {
        key_id(&self.0)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    /// From base64 of its 32 bytes, or the JSON document the bridge serves
    /// (`{"alg", "key_id", "public_key"}`).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let t = text.trim();
        let b64 = match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) => v.get("public_key").and_then(|k| k.as_str()).ok_or("no public_key in the JSON")?.to_owned(),
            Err(_) => t.to_owned(),
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| "not base64")?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an Ed25519 public key is 32 bytes")?;
        VerifyingKey::from_bytes(&bytes).map(PublicKey).map_err(|e| format!("not an Ed25519 public key: {e}"))
    }

    /// The JSON document the bridge serves and the docs publish.
    pub fn document(&self) -> serde_json::Value {
        serde_json::json!({"alg": ALG, "key_id": self.id(), "public_key": self.to_base64()})
    }

    fn verify(&self, msg: &[u8], sig_b64: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sig_b64) else { return false };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes) else { return false };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

/// What the signature covers: the pack as JSON with the signature's value
/// empty (its algorithm, key id and public key are covered).
pub fn signed_bytes(pack: &Pack) -> Vec<u8> {
    let mut unsigned = pack.clone();
    unsigned.signature.value.clear();
    serde_json::to_vec(&unsigned).expect("a pack serializes")
}

/// One entry from a stored record: `linked` is what its link covers, made
/// by the same code that made the link ([`crate::chain::linked_bytes`]).
pub fn entry<T: Serialize>(
    table: Table,
    stream: &str,
    chain_pos: i64,
    prev_hash: &str,
    hash: &str,
    key_id: &str,
    record: &T,
) -> Entry {
    let linked = crate::chain::linked_bytes(key_id, stream, chain_pos, prev_hash, record);
    Entry {
        table,
        chain_pos,
        prev_hash: prev_hash.to_owned(),
        hash: hash.to_owned(),
        key_id: key_id.to_owned(),
        sha256: hex::encode(Sha256::digest(&linked)),
        linked: String::from_utf8(linked).expect("JSON is UTF-8"),
    }
}

#[cfg(test)]
mod tests;
