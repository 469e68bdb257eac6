//! A candidate's evidence pack (docs/evidence.md, contract §9): every
//! record of the candidate's chains with its link, the heads, the policy's
//! version and digest, and the summary, signed with the bridge's evidence
//! key. The pack's format and its offline check are the core's
//! (`vbridge_core::evidence`); here the store's rows become its entries.

use crate::store::{EventStore, StoreError};
use std::collections::BTreeMap;
use vbridge_core::evidence::{self, Chain, Entry, EvidenceKey, Head, Pack, PolicyRef, Start, Table};

/// The most records one pack holds: a candidate's chains are bounded by
/// retention, and a pack past this is refused rather than built in memory.
pub const MAX_RECORDS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("no evidence key is configured (VBRIDGE_EVIDENCE_KEY; `vbridge evidence keygen` makes one)")]
    NoKey,
    #[error("the bridge keeps nothing for candidate {0}")]
    Unknown(String),
    #[error("candidate {0} has more than {MAX_RECORDS} records: export one application at a time")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Build and sign the pack of `candidate`. The heads are read first, and
/// each chain is cut at its head: a record committed while the pack is read
/// belongs to the next pack, and never leaves this one's head behind.
pub async fn export(
    store: &dyn EventStore,
    policy: &vbridge_core::Policy,
    key: Option<&EvidenceKey>,
    candidate: &str,
    exported_by: &str,
) -> Result<Pack, EvidenceError> {
    let key = key.ok_or(EvidenceError::NoKey)?;
    let mine = |stream: &str| stream.starts_with(&format!("{candidate}:"));
    let heads: BTreeMap<String, vbridge_core::chain::Head> = store
        .heads()
        .await?
        .into_iter()
        .filter(|h| mine(&h.stream) && h.chain_pos > 0)
        .map(|h| (h.stream.clone(), h))
        .collect();
    if heads.is_empty() {
        return Err(EvidenceError::Unknown(candidate.to_owned()));
    }
    let checkpoints = store.checkpoints().await?;
    let mut entries: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let within = |stream: &str, pos: i64| heads.get(stream).is_some_and(|h| pos <= h.chain_pos);
    for d in store.deliveries(Some(candidate), None).await? {
        let (Some(stream), Some(pos), Some(prev), Some(hash)) = (&d.stream, d.chain_pos, &d.prev_hash, &d.hash) else {
            continue;
        };
        if within(stream, pos) {
            let e = evidence::entry(Table::Delivery, stream, pos, prev, hash, &d.key_id, &d.content);
            entries.entry(stream.clone()).or_default().push(e);
        }
    }
    for d in store.decisions(Some(candidate), None).await? {
        if within(&d.stream, d.chain_pos) {
            let e =
                evidence::entry(Table::Decision, &d.stream, d.chain_pos, &d.prev_hash, &d.hash, &d.key_id, &d.record);
            entries.entry(d.stream.clone()).or_default().push(e);
        }
    }
    if entries.values().map(Vec::len).sum::<usize>() > MAX_RECORDS {
        return Err(EvidenceError::TooLarge(candidate.to_owned()));
    }
    let chains: Vec<Chain> = heads
        .into_values()
        .map(|h| {
            let mut records = entries.remove(&h.stream).unwrap_or_default();
            records.sort_by_key(|e| e.chain_pos);
            let starts_at = checkpoints
                .iter()
                .find(|c| c.stream == h.stream)
                .map(|c| Start { chain_pos: c.next_pos, prev_hash: c.prev_hash.clone() });
            Chain { stream: h.stream, starts_at, head: Head { chain_pos: h.chain_pos, hash: h.hash }, records }
        })
        .collect();
    // The candidate's key opens the sealed fields for the checker; an erased
    // candidate has none, and the pack shows `erased` in their place.
    let field_key = store.existing_field_key(candidate).await?;
    let erasures = store
        .erasures(Some(candidate))
        .await?
        .into_iter()
        .map(|e| evidence::Erasure {
            recorded_at: e.record.recorded_at.clone(),
            actor: e.record.override_actor.clone(),
            reason_code: e.record.override_reason_code.clone(),
            trigger: e.record.event_type.clone(),
            chain_pos: e.chain_pos,
            hash: e.hash,
        })
        .collect();
    let mut pack = Pack {
        format: evidence::FORMAT.into(),
        candidate_id: candidate.to_owned(),
        exported_at: crate::now_rfc3339(),
        exported_by: exported_by.to_owned(),
        policy: PolicyRef { version: policy.version().to_owned(), sha256: policy.sha256().to_owned() },
        summary: evidence::summarize(&chains, &evidence::Reveal { key: field_key.clone(), notes: true }),
        timeline: evidence::timeline(&chains, &evidence::Reveal { key: field_key.clone(), notes: true }),
        chains,
        field_key: field_key.map(|k| k.to_hex()).unwrap_or_default(),
        erasures,
        signature: Default::default(),
    };
    key.sign(&mut pack);
    Ok(pack)
}

/// The printable view of a pack, for people: the same content, with the
/// offline check's verdict on top.
#[derive(askama::Template)]
#[template(path = "evidence.html")]
pub struct PackPage<'a> {
    pub pack: &'a Pack,
    pub verdict: &'a evidence::Verified,
}

/// Render the printable view (the verdict is the offline check's, against
/// the bridge's own key).
pub fn to_html(pack: &Pack, key: &EvidenceKey) -> String {
    use askama::Template;
    let bytes = serde_json::to_vec(pack).unwrap_or_default();
    let verdict = evidence::verify(&bytes, Some(&key.public()), &Default::default());
    PackPage { pack, verdict: &verdict }.render().unwrap_or_else(|e| format!("the page could not be rendered: {e}"))
}
