//! Tamper evidence: each audit record carries the hash of the record before
//! it in its stream. A record's hash covers its stream, its position, the
//! previous hash and every stored field, as canonical JSON (fields in a fixed
//! order). Editing, removing or reordering any record breaks a link that
//! `vbridge audit verify` finds.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The `prev_hash` of a stream's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The stream of deliveries that were rejected (they may name no candidate).
pub const REJECTED_STREAM: &str = "rejected";

pub fn stream_of(candidate_id: &str, application_id: &str) -> String {
    format!("{candidate_id}:{application_id}")
}

/// The stored fields of a delivery that its hash covers.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryContent {
    pub received_at: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub signature_valid: bool,
    pub processing_result: String,
    pub reject_code: Option<String>,
    pub trace_id: String,
    pub body_sha256: String,
    pub delivery_attempt: Option<i64>,
    pub payload: Option<String>,
    pub signal: Option<String>,
}

#[derive(Serialize)]
struct Linked<'a, T: Serialize> {
    stream: &'a str,
    chain_pos: i64,
    prev_hash: &'a str,
    record: &'a T,
}

pub fn link_hash<T: Serialize>(stream: &str, chain_pos: i64, prev_hash: &str, record: &T) -> String {
    let bytes = serde_json::to_vec(&Linked { stream, chain_pos, prev_hash, record }).expect("records serialize");
    hex::encode(Sha256::digest(&bytes))
}

/// One stored link, as read back for verification.
#[derive(Debug, Clone)]
pub struct Link {
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The hash recomputed from the stored fields.
    pub recomputed: String,
    /// How a person finds the record: `delivery seq 12`, `decision <record_id>`.
    pub label: String,
}

/// A stream may start after position 1 when retention removed its head; the
/// checkpoint then says where it starts and which hash the first kept record
/// must link to.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub stream: String,
    pub next_pos: i64,
    pub prev_hash: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Broken {
    pub stream: String,
    pub record: String,
    pub chain_pos: i64,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub streams: usize,
    pub records: usize,
    pub unchained: usize,
    pub broken: Option<Broken>,
}

/// Check every stream's links. Stops at the first broken one.
pub fn verify(links: Vec<Link>, checkpoints: &[Checkpoint], unchained: usize) -> Report {
    let mut by_stream: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    let records = links.len();
    for l in links {
        by_stream.entry(l.stream.clone()).or_default().push(l);
    }
    let mut report = Report { streams: by_stream.len(), records, unchained, broken: None };
    for (stream, mut links) in by_stream {
        links.sort_by_key(|l| l.chain_pos);
        let cp = checkpoints.iter().find(|c| c.stream == stream);
        let (mut expect_pos, mut expect_prev) = match cp {
            Some(c) => (c.next_pos, c.prev_hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        for l in links {
            let problem = if l.chain_pos != expect_pos {
                Some(if l.chain_pos < expect_pos {
                    format!("position {} appears twice", l.chain_pos)
                } else {
                    format!("position {expect_pos} is missing (a record was removed)")
                })
            } else if l.prev_hash != expect_prev {
                Some("prev_hash does not match the record before it".to_owned())
            } else if l.recomputed != l.hash {
                Some("the stored fields do not match the record's hash (it was edited)".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                report.broken = Some(Broken { stream, record: l.label, chain_pos: l.chain_pos, problem });
                return report;
            }
            expect_pos += 1;
            expect_prev = l.hash;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(stream: &str, n: i64) -> Vec<Link> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|pos| {
                let hash = link_hash(stream, pos, &prev, &format!("record {pos}"));
                let l = Link {
                    stream: stream.into(),
                    chain_pos: pos,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    recomputed: hash.clone(),
                    label: format!("r{pos}"),
                };
                prev = hash;
                l
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let r = verify([chain("a", 5), chain("b", 3)].concat(), &[], 0);
        assert_eq!((r.streams, r.records, r.broken), (2, 8, None));
    }

    #[test]
    fn edits_removals_and_reorders_are_found() {
        let mut c = chain("a", 5);
        c[2].recomputed = "edited".into();
        assert_eq!(verify(c, &[], 0).broken.unwrap().record, "r3");

        let mut c = chain("a", 5);
        c.remove(1);
        let b = verify(c, &[], 0).broken.unwrap();
        assert!(b.problem.contains("missing"), "{b:?}");

        let mut c = chain("a", 5);
        c[3].prev_hash = GENESIS.into();
        assert_eq!(verify(c, &[], 0).broken.unwrap().record, "r4");
    }

    #[test]
    fn a_checkpoint_lets_a_cut_chain_verify() {
        let c = chain("a", 5);
        let kept = c[2..].to_vec();
        assert!(verify(kept.clone(), &[], 0).broken.is_some());
        let cp = Checkpoint { stream: "a".into(), next_pos: 3, prev_hash: c[1].hash.clone() };
        assert_eq!(verify(kept, &[cp], 0).broken, None);
    }
}
