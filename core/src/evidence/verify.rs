//! Checking a pack offline: its signature (against the key the checker
//! trusts), every chain from its start to its head, every record's bytes
//! against its digest and link, and the summary against the records. Every
//! problem is named by its chain and position; a chain's first break stops
//! that chain only.

use super::{Chain, FORMAT, Pack, PublicKey, Table, signed_bytes, summarize, timeline};
use crate::chain::{GENESIS, Keyring};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub place: String,
    pub what: String,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub candidate_id: String,
    pub chains: usize,
    pub records: usize,
    /// The key that signed it.
    pub key_id: String,
    /// Whether that key is the one the checker trusts (`false` when the
    /// checker named none: the pack is then only as good as its key's
    /// provenance).
    pub trusted_key: bool,
    /// Keyed links recomputed with an audit key the checker holds, and
    /// those checked by their digest only.
    pub keyed_links_checked: usize,
    pub keyed_links_by_digest: usize,
    pub problems: Vec<Problem>,
}

impl Verified {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, place: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem { place: place.into(), what: what.into() });
    }
}

/// Check the file `bytes`: against `trusted` when the checker has the
/// bridge's published key, with `audit_keys` when the checker holds them.
pub fn verify(bytes: &[u8], trusted: Option<&PublicKey>, audit_keys: &Keyring) -> Verified {
    let mut out = Verified::default();
    let pack: Pack = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            out.problem("the file", format!("not an evidence pack ({e})"));
            return out;
        }
    };
    out.candidate_id = pack.candidate_id.clone();
    out.chains = pack.chains.len();
    out.records = pack.chains.iter().map(|c| c.records.len()).sum();
    out.key_id = pack.signature.key_id.clone();
    if pack.format != FORMAT && pack.format != super::FORMAT_V1 {
        out.problem("the file", format!("format {:?} is not {FORMAT}", pack.format));
    }
    check_signature(&pack, trusted, &mut out);
    for chain in &pack.chains {
        if !chain.stream.starts_with(&format!("{}:", pack.candidate_id)) {
            out.problem(format!("chain {}", chain.stream), "it is not one of the candidate's chains");
        }
        check_chain(chain, audit_keys, &mut out);
    }
    let how = pack.reveal();
    if !pack.field_key.is_empty() && how.key.is_none() {
        out.problem("the field key", "it is not 64 hex digits");
    }
    if summarize(&pack.chains, &how) != pack.summary {
        out.problem("the summary", "it does not match the records (it was edited)");
    }
    if timeline(&pack.chains, &how) != pack.timeline {
        out.problem("the timeline", "it does not match the records (it was edited)");
    }
    out
}

fn check_signature(pack: &Pack, trusted: Option<&PublicKey>, out: &mut Verified) {
    let s = &pack.signature;
    if s.alg != super::ALG {
        out.problem("the signature", format!("algorithm {:?} is not {}", s.alg, super::ALG));
        return;
    }
    let key = match PublicKey::parse(&s.public_key) {
        Ok(k) => k,
        Err(e) => return out.problem("the signature", format!("its public key: {e}")),
    };
    if key.id() != s.key_id {
        out.problem("the signature", "its key id is not its public key's");
    }
    if let Some(t) = trusted {
        if t.id() != key.id() {
            out.problem(
                "the signature",
                format!(
                    "signed by key {}, not the trusted key {} (another bridge's pack, or re-signed)",
                    key.id(),
                    t.id()
                ),
            );
        } else {
            out.trusted_key = true;
        }
    }
    if !key.verify(&signed_bytes(pack), &s.value) {
        out.problem("the signature", "it does not match the pack (the file was changed after it was signed)");
    }
}

/// How a person finds a record: its chain, position, table and id.
fn label(stream: &str, pos: i64, table: Table, linked: &Value) -> String {
    let r = linked.get("record").unwrap_or(&Value::Null);
    let id = match table {
        Table::Decision => r.get("record_id").and_then(Value::as_str).map(|i| format!("decision {i}")),
        Table::Delivery => r.get("event_id").and_then(Value::as_str).map(|i| format!("delivery {i}")),
    };
    let table = match table {
        Table::Decision => "decision",
        Table::Delivery => "delivery",
    };
    format!("{stream} position {pos} ({})", id.unwrap_or_else(|| table.to_owned()))
}

fn check_chain(chain: &Chain, audit_keys: &Keyring, out: &mut Verified) {
    let stream = &chain.stream;
    let (mut pos, mut prev) = match &chain.starts_at {
        Some(s) => (s.chain_pos, s.prev_hash.clone()),
        None => (1, GENESIS.to_owned()),
    };
    for e in &chain.records {
        let linked: Value = serde_json::from_str(&e.linked).unwrap_or(Value::Null);
        let place = label(stream, e.chain_pos, e.table, &linked);
        let digest = hex::encode(Sha256::digest(e.linked.as_bytes()));
        let names = |k: &str| linked.get(k).unwrap_or(&Value::Null);
        let problem = if e.chain_pos > pos && chain.records.iter().any(|later| later.chain_pos == pos) {
            Some(format!("it is out of order: position {pos} comes after it (records were reordered)"))
        } else if e.chain_pos > pos {
            Some(format!("position {pos} is missing before it (a record was dropped)"))
        } else if e.chain_pos < pos {
            Some(format!("it is out of order: position {pos} was due (records were reordered)"))
        } else if e.prev_hash != prev {
            Some("it does not link to the record before it".to_owned())
        } else if !linked.is_object()
            || names("stream").as_str() != Some(stream.as_str())
            || names("chain_pos").as_i64() != Some(e.chain_pos)
            || names("prev_hash").as_str() != Some(e.prev_hash.as_str())
        {
            Some("its linked bytes name another place in the chain".to_owned())
        } else if digest != e.sha256 {
            Some("its content does not match its digest (it was edited)".to_owned())
        } else if e.key_id.is_empty() && digest != e.hash {
            Some("its content does not match its link (it was edited)".to_owned())
        } else if !e.key_id.is_empty() {
            match audit_keys.get(&e.key_id) {
                Some(k) if k.mac_hex(e.linked.as_bytes()) != e.hash => {
                    Some(format!("its content does not match its link under audit key {}", e.key_id))
                }
                Some(_) => {
                    out.keyed_links_checked += 1;
                    None
                }
                None => {
                    out.keyed_links_by_digest += 1;
                    None
                }
            }
        } else {
            None
        };
        if let Some(what) = problem {
            out.problem(place, what);
            return;
        }
        pos += 1;
        prev = e.hash.clone();
    }
    if (chain.head.chain_pos, &chain.head.hash) != (pos - 1, &prev) {
        out.problem(
            format!("head of {stream}"),
            format!(
                "the chain ends at position {} but its head is position {} (records were dropped from its end)",
                pos - 1,
                chain.head.chain_pos
            ),
        );
    }
}
