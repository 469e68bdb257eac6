//! Tamper evidence: each audit record carries the hash of the record before
//! it in its stream. A record's hash covers its stream, its position, the
//! previous hash and every stored field, as canonical JSON (fields in a fixed
//! order). Editing, removing or reordering any record breaks a link that
//! `vbridge audit verify` finds. With an audit key ([`key`]) the link is an
//! HMAC under it, which a database writer without the key cannot recompute.
//! Pure: the worker's store links records as it writes them and checks them
//! when asked.

pub mod floor;
pub mod key;

pub use key::{AuditKey, Keyring};

use crate::record::RecordKind;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The `prev_hash` of a stream's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The stream of deliveries that were rejected (they may name no candidate).
pub const REJECTED_STREAM: &str = "rejected";

pub fn stream_of(candidate_id: &str, application_id: &str) -> String {
    format!("{candidate_id}:{application_id}")
}

/// The stream of refused operator API requests (401/403): no verification
/// owns them. (A verification's stream always holds a ':'.)
pub const ACCESS_STREAM: &str = "access";
/// The stream of operations controls' changes (the kill switch).
pub const CONTROLS_STREAM: &str = "controls";
/// The stream of reconciliation reports.
pub const RECONCILIATION_STREAM: &str = "reconciliation";
/// The stream of erasures (docs/privacy.md): one record per candidate
/// erased, never cut by retention and never erased itself.
pub const ERASURE_STREAM: &str = "erasure";

/// The stream a decision record goes to.
pub fn decision_stream(r: &vbridge_proto::DecisionRecord) -> String {
    match RecordKind::of(&r.kind) {
        Some(RecordKind::AccessDenied) => ACCESS_STREAM.to_owned(),
        // Claimed ids are not the candidate's: never in a verification's chain.
        Some(RecordKind::DeliveriesRefused) => REJECTED_STREAM.to_owned(),
        Some(RecordKind::ControlChanged) => CONTROLS_STREAM.to_owned(),
        Some(RecordKind::Reconciled) => RECONCILIATION_STREAM.to_owned(),
        Some(RecordKind::Erased) => ERASURE_STREAM.to_owned(),
        // A retention record lives in the chain it cut, whatever kind of
        // chain that is (a verification's, `access`, `rejected`, ...): the
        // checkpoint it names says which.
        Some(RecordKind::Retention) => match checkpoint_stream(&r.write_targets) {
            Some(stream) => stream.to_owned(),
            None => stream_of(&r.candidate_id, &r.application_id),
        },
        _ => stream_of(&r.candidate_id, &r.application_id),
    }
}

#[derive(Serialize)]
struct Linked<'a, T: Serialize> {
    stream: &'a str,
    chain_pos: i64,
    prev_hash: &'a str,
    record: &'a T,
}

/// A plain link: the SHA-256 of the linked record (links made without an
/// audit key, and every link made before keys existed).
pub fn link_hash<T: Serialize>(stream: &str, chain_pos: i64, prev_hash: &str, record: &T) -> String {
    hex::encode(Sha256::digest(linked_bytes("", stream, chain_pos, prev_hash, record)))
}

/// The bytes a link covers: the record in its place, with the key's id for
/// a keyed link (`key_id` empty: a plain one). An evidence pack carries
/// them, so that a checker without the store sees what was linked.
pub fn linked_bytes<T: Serialize>(key_id: &str, stream: &str, chain_pos: i64, prev_hash: &str, record: &T) -> Vec<u8> {
    let bytes = if key_id.is_empty() {
        serde_json::to_vec(&Linked { stream, chain_pos, prev_hash, record })
    } else {
        serde_json::to_vec(&KeyedLinked { stream, chain_pos, prev_hash, key_id, record })
    };
    bytes.expect("records serialize")
}

/// What a keyed link covers: the plain link's fields and the key's id, so a
/// link cannot be passed off as made by another key.
#[derive(Serialize)]
struct KeyedLinked<'a, T: Serialize> {
    stream: &'a str,
    chain_pos: i64,
    prev_hash: &'a str,
    key_id: &'a str,
    record: &'a T,
}

/// Link a record: an HMAC under `key` when one is given, else a plain hash.
/// Returns the key's id (empty for a plain link) and the link.
pub fn make_link<T: Serialize>(
    key: Option<&AuditKey>,
    stream: &str,
    chain_pos: i64,
    prev_hash: &str,
    record: &T,
) -> (String, String) {
    match key {
        None => (String::new(), link_hash(stream, chain_pos, prev_hash, record)),
        Some(k) => (k.id().to_owned(), k.mac_hex(&linked_bytes(k.id(), stream, chain_pos, prev_hash, record))),
    }
}

/// The link a stored record should carry, made again; `None` when it was
/// made by a key the keyring does not hold.
pub fn recompute<T: Serialize>(
    keys: &Keyring,
    key_id: &str,
    stream: &str,
    chain_pos: i64,
    prev_hash: &str,
    record: &T,
) -> Option<String> {
    if key_id.is_empty() {
        return Some(link_hash(stream, chain_pos, prev_hash, record));
    }
    keys.get(key_id).map(|k| make_link(Some(k), stream, chain_pos, prev_hash, record).1)
}

/// One stored link, as read back for verification.
#[derive(Debug, Clone)]
pub struct Link {
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The link recomputed from the stored fields; `None` when its key is
    /// not held ([`recompute`]).
    pub recomputed: Option<String>,
    /// The audit key that made the link; empty for a plain hash.
    pub key_id: String,
    /// Where the row sits in its table's insertion order (table, seq): a
    /// plain link inserted after a keyed one in the same table was written
    /// without the key, behind the store.
    pub order: (u8, i64),
    /// How a person finds the record: `delivery seq 12`, `decision <record_id>`.
    pub label: String,
    /// For a retention record: the checkpoint it made ([`checkpoint_target`]).
    pub made_checkpoint: Option<String>,
}

/// What a retention record names as its write target: the checkpoint it
/// left. A checkpoint that no record in its chain names was forged.
pub fn checkpoint_target(cp: &Checkpoint) -> String {
    format!("chain_checkpoints/{}@{}:{}", cp.stream, cp.next_pos, cp.prev_hash)
}

/// The stream a [`checkpoint_target`] names. The position and the hash after
/// the last `@` hold no `@`, so a stream that does still parses.
pub fn checkpoint_stream(target: &str) -> Option<&str> {
    target.strip_prefix("chain_checkpoints/")?.rsplit_once('@').map(|(stream, _)| stream)
}

/// A chain's stored head: where its last record sits. A chain whose last
/// record is not its head lost records at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Head {
    pub stream: String,
    pub chain_pos: i64,
    pub hash: String,
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
    /// The first broken chain (kept for readers of the one-break report).
    pub broken: Option<Broken>,
    /// Every broken chain, each with its first break, in stream order; a
    /// delivery row with no place in any chain is one too.
    pub broken_chains: Vec<Broken>,
    /// Candidates erased (the `erasure` chain): their sealed fields no
    /// longer open, and their chains, which link the sealed text, verify as
    /// any other. Erased is not broken.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub erased_candidates: Vec<String>,
}

impl Report {
    /// Add a break found outside the links (a seal's), keeping `broken` the first.
    pub fn push(&mut self, b: Broken) {
        if self.broken.is_none() {
            self.broken = Some(b.clone());
        }
        self.broken_chains.push(b);
    }
}

/// Check every stream's links, each chain's tail against its stored head,
/// and each checkpoint against the retention record that made it. Every
/// chain is checked, so a break in one never hides a break in another; each
/// of `unchained` (rows with no place in a chain) is a break too.
pub fn verify(links: Vec<Link>, checkpoints: &[Checkpoint], heads: &[Head], unchained: Vec<Broken>) -> Report {
    let mut by_stream: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    let records = links.len();
    // The checkpoints retention records say they made. Stores written before
    // retention records went to the chain they cut hold some of them in a
    // chain of their own ("access:" for `access`); the record is linked and
    // hashed wherever it sits, so it vouches for its checkpoint all the same.
    let made: BTreeSet<String> = links.iter().filter_map(|l| l.made_checkpoint.clone()).collect();
    // Once a table holds a keyed link, every row inserted after it is keyed:
    // the bridge never goes back to plain hashes while it holds a key.
    let mut first_keyed: BTreeMap<u8, i64> = BTreeMap::new();
    for l in links.iter().filter(|l| !l.key_id.is_empty()) {
        let e = first_keyed.entry(l.order.0).or_insert(l.order.1);
        *e = (*e).min(l.order.1);
    }
    for l in links {
        by_stream.entry(l.stream.clone()).or_default().push(l);
    }
    for h in heads.iter().filter(|h| h.chain_pos > 0) {
        by_stream.entry(h.stream.clone()).or_default();
    }
    let mut report = Report {
        streams: by_stream.len(),
        records,
        unchained: unchained.len(),
        broken: None,
        broken_chains: vec![],
        erased_candidates: vec![],
    };
    for (stream, links) in by_stream {
        if let Some(b) = verify_stream(&stream, links, checkpoints, heads, &made, &first_keyed) {
            report.push(b);
        }
    }
    for b in unchained {
        report.push(b);
    }
    report
}

fn verify_stream(
    stream: &str,
    mut links: Vec<Link>,
    checkpoints: &[Checkpoint],
    heads: &[Head],
    made: &BTreeSet<String>,
    first_keyed: &BTreeMap<u8, i64>,
) -> Option<Broken> {
    links.sort_by_key(|l| l.chain_pos);
    let broken = |record: String, chain_pos: i64, problem: String| {
        Some(Broken { stream: stream.to_owned(), record, chain_pos, problem })
    };
    let cp = checkpoints.iter().find(|c| c.stream == stream);
    if let Some(c) = cp {
        let target = checkpoint_target(c);
        if !made.contains(&target) {
            return broken(
                format!("checkpoint of {stream}"),
                c.next_pos,
                "the checkpoint was made by no retention record in its chain (it was forged or edited)".into(),
            );
        }
    }
    let (mut expect_pos, mut expect_prev) = match cp {
        Some(c) => (c.next_pos, c.prev_hash.clone()),
        None => (1, GENESIS.to_owned()),
    };
    for l in &links {
        let problem = if l.chain_pos != expect_pos {
            Some(if l.chain_pos < expect_pos {
                format!("position {} appears twice", l.chain_pos)
            } else {
                format!("position {expect_pos} is missing (a record was removed)")
            })
        } else if l.prev_hash != expect_prev {
            Some("prev_hash does not match the record before it".to_owned())
        } else if l.recomputed.is_none() {
            Some(format!(
                "the link was made with audit key {}, which this check does not hold (set VBRIDGE_AUDIT_KEY)",
                l.key_id
            ))
        } else if l.recomputed.as_deref() != Some(l.hash.as_str()) {
            Some("the stored fields do not match the record's hash (it was edited)".to_owned())
        } else if l.key_id.is_empty() && first_keyed.get(&l.order.0).is_some_and(|&first| l.order.1 > first) {
            Some(
                "a plain hash where the audit key's link belongs (the record was written or rewritten \
                 without the key, behind the store)"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            return broken(l.label.clone(), l.chain_pos, problem);
        }
        expect_pos += 1;
        expect_prev = l.hash.clone();
    }
    let tail = (expect_pos - 1, expect_prev);
    match heads.iter().find(|h| h.stream == stream) {
        Some(h) if (h.chain_pos, &h.hash) != (tail.0, &tail.1) && h.chain_pos > 0 => broken(
            format!("head of {stream}"),
            h.chain_pos,
            format!(
                "the chain ends at position {} but its head says {}: records were removed from its end",
                tail.0, h.chain_pos
            ),
        ),
        None if !links.is_empty() => {
            broken(format!("head of {stream}"), tail.0, "the chain has no stored head (it was removed)".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_detail_hashes_as_before_detail_existed() {
        // The hashed form of a record stored before `detail` was added: the
        // field must be left out while empty, or every old chain would break.
        let r = vbridge_proto::DecisionRecord {
            record_id: "dec-1".into(),
            kind: RecordKind::Applied.into(),
            ..Default::default()
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("detail"), "{json}");
        assert!(json.ends_with(r#""override_timestamp":""}"#), "{json}");
        let with = vbridge_proto::DecisionRecord { detail: "{}".into(), ..r.clone() };
        assert_ne!(link_hash("s", 1, GENESIS, &r), link_hash("s", 1, GENESIS, &with), "detail is hashed when set");
        assert_eq!(decision_stream(&r), ":", "a verification's stream");
        let denied = vbridge_proto::DecisionRecord { kind: RecordKind::AccessDenied.into(), ..r.clone() };
        assert_eq!(decision_stream(&denied), ACCESS_STREAM);
        // Refused deliveries name a candidate only as an unverified claim.
        let forged = vbridge_proto::DecisionRecord {
            kind: RecordKind::DeliveriesRefused.into(),
            candidate_id: "victim".into(),
            application_id: "app".into(),
            ..r
        };
        assert_eq!(decision_stream(&forged), REJECTED_STREAM);
    }

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
                    recomputed: Some(hash.clone()),
                    key_id: String::new(),
                    order: (0, pos),
                    label: format!("r{pos}"),
                    made_checkpoint: None,
                };
                prev = hash;
                l
            })
            .collect()
    }

    fn head(links: &[Link]) -> Head {
        let l = links.last().unwrap();
        Head { stream: l.stream.clone(), chain_pos: l.chain_pos, hash: l.hash.clone() }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (a, b) = (chain("a", 5), chain("b", 3));
        let heads = [head(&a), head(&b)];
        let r = verify([a, b].concat(), &[], &heads, vec![]);
        assert_eq!((r.streams, r.records, r.broken), (2, 8, None));
    }

    #[test]
    fn a_removed_tail_or_stream_is_found_by_its_head() {
        let a = chain("a", 5);
        let heads = [head(&a)];
        let b = verify(a[..4].to_vec(), &[], &heads, vec![]).broken.unwrap();
        assert!(b.problem.contains("removed from its end"), "{b:?}");
        let b = verify(vec![], &[], &heads, vec![]).broken.unwrap();
        assert_eq!(b.stream, "a");
        let b = verify(a, &[], &[], vec![]).broken.unwrap();
        assert!(b.problem.contains("no stored head"), "{b:?}");
    }

    #[test]
    fn edits_removals_and_reorders_are_found() {
        let mut c = chain("a", 5);
        let heads = [head(&c)];
        c[2].recomputed = Some("edited".into());
        assert_eq!(verify(c, &[], &heads, vec![]).broken.unwrap().record, "r3");

        let mut c = chain("a", 5);
        c.remove(1);
        let b = verify(c, &[], &heads, vec![]).broken.unwrap();
        assert!(b.problem.contains("missing"), "{b:?}");

        let mut c = chain("a", 5);
        c[3].prev_hash = GENESIS.into();
        assert_eq!(verify(c, &[], &heads, vec![]).broken.unwrap().record, "r4");
    }

    #[test]
    fn a_checkpoint_lets_a_cut_chain_verify() {
        let c = chain("a", 5);
        let heads = [head(&c)];
        let mut kept = c[2..].to_vec();
        assert!(verify(kept.clone(), &[], &heads, vec![]).broken.is_some());
        let cp = Checkpoint { stream: "a".into(), next_pos: 3, prev_hash: c[1].hash.clone() };
        // Without the retention record that made it, the checkpoint is forged.
        let b = verify(kept.clone(), std::slice::from_ref(&cp), &heads, vec![]).broken.unwrap();
        assert!(b.problem.contains("forged"), "{b:?}");
        kept[2].made_checkpoint = Some(checkpoint_target(&cp));
        assert_eq!(verify(kept, &[cp], &heads, vec![]).broken, None);
    }

    #[test]
    fn every_broken_chain_is_reported_not_only_the_first() {
        let (mut a, mut b, c) = (chain("a", 4), chain("b", 4), chain("c", 2));
        let heads = [head(&a), head(&b), head(&c)];
        a[1].recomputed = Some("edited".into());
        b[3].recomputed = Some("edited".into());
        let stray =
            Broken { stream: String::new(), record: "delivery seq 9".into(), chain_pos: 0, problem: "x".into() };
        let r = verify([a, b, c].concat(), &[], &heads, vec![stray]);
        let named: Vec<_> = r.broken_chains.iter().map(|b| (b.stream.as_str(), b.record.as_str())).collect();
        assert_eq!(named, [("a", "r2"), ("b", "r4"), ("", "delivery seq 9")]);
        assert_eq!((r.broken.unwrap().stream.as_str(), r.unchained), ("a", 1), "the first, and the stray row counted");
    }

    #[test]
    fn a_retention_record_lives_in_the_chain_it_cut() {
        for stream in [ACCESS_STREAM, REJECTED_STREAM, CONTROLS_STREAM, RECONCILIATION_STREAM, "cand@x:app-1"] {
            let cp = Checkpoint { stream: stream.into(), next_pos: 7, prev_hash: "ab".repeat(32) };
            let (candidate_id, application_id) = stream.split_once(':').unwrap_or((stream, ""));
            let r = vbridge_proto::DecisionRecord {
                kind: RecordKind::Retention.into(),
                candidate_id: candidate_id.into(),
                application_id: application_id.into(),
                write_targets: checkpoint_target(&cp),
                ..Default::default()
            };
            assert_eq!(decision_stream(&r), stream);
        }
        assert_eq!(checkpoint_stream("deliveries/12"), None);
    }

    #[test]
    fn a_checkpoint_vouched_for_from_another_chain_still_verifies() {
        // A store from before retention records went to the chain they cut:
        // the record that made `access`'s checkpoint sits in "access:".
        let c = chain("access", 5);
        let cp = Checkpoint { stream: "access".into(), next_pos: 3, prev_hash: c[1].hash.clone() };
        let mut legacy = chain("access:", 1);
        legacy[0].made_checkpoint = Some(checkpoint_target(&cp));
        let heads = [head(&c), head(&legacy)];
        let r = verify([c[2..].to_vec(), legacy].concat(), std::slice::from_ref(&cp), &heads, vec![]);
        assert_eq!(r.broken, None);
        let r = verify(c[2..].to_vec(), &[cp], &heads[..1], vec![]);
        assert!(r.broken.unwrap().problem.contains("forged"), "no record anywhere vouches for it");
    }

    /// A chain linked the way the store links it, under `key` or plain,
    /// its rows inserted from `seq` on.
    fn linked(stream: &str, n: i64, key: Option<&AuditKey>, keys: &Keyring, seq: i64) -> Vec<Link> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|pos| {
                let record = format!("record {pos}");
                let (key_id, hash) = make_link(key, stream, pos, &prev, &record);
                let recomputed = recompute(keys, &key_id, stream, pos, &prev, &record);
                let l = Link {
                    stream: stream.into(),
                    chain_pos: pos,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    recomputed,
                    key_id,
                    order: (0, seq + pos),
                    label: format!("r{pos}"),
                    made_checkpoint: None,
                };
                prev = hash;
                l
            })
            .collect()
    }

    #[test]
    fn keyed_links_verify_with_the_key_and_catch_a_rewrite_without_it() {
        let keys = Keyring::parse(&"5a".repeat(32)).unwrap();
        let key = keys.signing();
        let old = linked("legacy", 2, None, &keys, 0);
        let new = linked("a", 3, key, &keys, 10);
        let heads = [head(&old), head(&new)];
        let r = verify([old.clone(), new.clone()].concat(), &[], &heads, vec![]);
        assert_eq!(r.broken, None, "plain links made before the key, keyed ones after: {r:?}");
        assert!(
            new.iter().all(|l| l.hash != link_hash("a", l.chain_pos, &l.prev_hash, &format!("record {}", l.chain_pos)))
        );

        // A writer without the key rewrites chain "a" consistently with plain
        // hashes (its rows inserted anew): every link holds, but a plain row
        // inserted after the table's keyed rows ("b") is a break.
        let b = linked("b", 3, key, &keys, 10);
        let forged = linked("a", 3, None, &keys, 20);
        let heads = [head(&old), head(&b), head(&forged)];
        let r = verify([old.clone(), b, forged].concat(), &[], &heads, vec![]);
        let b = r.broken.expect("the downgrade is caught");
        assert!(b.problem.contains("without the key"), "{b:?}");

        // A verifier without the key says so instead of passing the chain.
        let blind = linked("a", 3, key, &Keyring::none(), 10);
        let b = verify(blind.clone(), &[], &[head(&blind)], vec![]).broken.unwrap();
        assert!(b.problem.contains("does not hold"), "{b:?}");
        // And a key of another name cannot vouch for it.
        let other = Keyring::parse(&"6b".repeat(32)).unwrap();
        let wrong = linked("a", 3, key, &other, 10);
        assert!(verify(wrong.clone(), &[], &[head(&wrong)], vec![]).broken.is_some());
    }
}
