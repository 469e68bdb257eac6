//! The audit trail's tools: the hash chains ([`chain`]), the per-candidate
//! timeline export ([`timeline`]), refused requests aggregated
//! ([`refusals`]) and listed ([`refused_deliveries`]), and the seal.
//!
//! A seal is a digest of every chain's head at one moment, kept outside the
//! store (a ticket, a WORM bucket, an email to security): each head's
//! position, hash and time. `audit verify --seal FILE` later checks that every
//! sealed head is still in its chain with the same hash: a rewrite of the
//! whole store, hashes recomputed, fails it. A sealed head that retention
//! removed must have been older than the floor when it went: a retention
//! that cut below the floor fails it too.

pub mod evidence;
pub mod refusals;
pub mod refused_deliveries;
pub mod retention;
pub mod timeline;

/// The hash chains are the pure core's; the store links records as it writes.
pub use vbridge_core::chain;

use crate::store::{EventStore, StoreError};
use chain::{Broken, Head};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A chain's head as sealed: where it was, and when its record was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedHead {
    #[serde(flatten)]
    pub head: Head,
    /// The head record's time (seals made before times were sealed have none,
    /// and digest as they did).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    pub sealed_at: String,
    pub heads: Vec<SealedHead>,
    /// SHA-256 of the heads (sorted by stream, as JSON): the seal's own check.
    pub digest: String,
}

fn digest(heads: &[SealedHead]) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(heads).expect("heads serialize")))
}

/// Seal the store's current heads.
pub async fn seal(store: &dyn EventStore) -> Result<Seal, StoreError> {
    let deliveries = store.deliveries(None, None).await?;
    let decisions = store.decisions(None, None).await?;
    let mut heads: Vec<SealedHead> = store
        .heads()
        .await?
        .into_iter()
        .filter(|h| h.chain_pos > 0)
        .map(|head| {
            let at = record_time(&deliveries, &decisions, &head.stream, head.chain_pos).unwrap_or_default();
            SealedHead { head, at }
        })
        .collect();
    heads.sort_by(|a, b| a.head.stream.cmp(&b.head.stream));
    let digest = digest(&heads);
    Ok(Seal { sealed_at: crate::now_rfc3339(), heads, digest })
}

/// When the record at (stream, position) was received or decided.
fn record_time(
    deliveries: &[crate::store::StoredDelivery],
    decisions: &[crate::store::StoredDecision],
    stream: &str,
    pos: i64,
) -> Option<String> {
    deliveries
        .iter()
        .find(|d| d.stream.as_deref() == Some(stream) && d.chain_pos == Some(pos))
        .map(|d| d.received_at.clone())
        .or_else(|| {
            decisions.iter().find(|d| d.stream == stream && d.chain_pos == pos).map(|d| d.record.recorded_at.clone())
        })
}

/// Check a seal against the store: the first sealed head no longer found,
/// or removed by a retention younger than `floor_days` allows.
pub async fn check_seal(store: &dyn EventStore, seal: &Seal, floor_days: u32) -> Result<Option<Broken>, StoreError> {
    let broken = |stream: &str, pos: i64, problem: &str| {
        Some(Broken {
            stream: stream.to_owned(),
            record: format!("sealed head of {stream}"),
            chain_pos: pos,
            problem: problem.to_owned(),
        })
    };
    let mut sorted = seal.heads.clone();
    sorted.sort_by(|a, b| a.head.stream.cmp(&b.head.stream));
    if digest(&sorted) != seal.digest {
        return Ok(broken("", 0, "the seal's digest does not match its heads (the seal file was edited)"));
    }
    let deliveries = store.deliveries(None, None).await?;
    let decisions = store.decisions(None, None).await?;
    let checkpoints = store.checkpoints().await?;
    for sealed in &sorted {
        let h = &sealed.head;
        let found = deliveries
            .iter()
            .find(|d| d.stream.as_deref() == Some(&h.stream) && d.chain_pos == Some(h.chain_pos))
            .and_then(|d| d.hash.clone())
            .or_else(|| {
                decisions.iter().find(|d| d.stream == h.stream && d.chain_pos == h.chain_pos).map(|d| d.hash.clone())
            });
        let cut = checkpoints.iter().find(|c| c.stream == h.stream && c.next_pos > h.chain_pos);
        match (found, cut) {
            (Some(hash), _) if hash == h.hash => {}
            (Some(_), _) => {
                return Ok(broken(&h.stream, h.chain_pos, "the sealed record's hash changed (history was rewritten)"));
            }
            // Retention removed it: the checkpoint right after it must carry its hash.
            (None, Some(c)) if c.next_pos == h.chain_pos + 1 && c.prev_hash != h.hash => {
                return Ok(broken(&h.stream, h.chain_pos, "the checkpoint after the sealed record names another hash"));
            }
            (None, Some(_)) => {
                if let Some(problem) = cut_too_young(&decisions, sealed, floor_days) {
                    return Ok(broken(&h.stream, h.chain_pos, &problem));
                }
            }
            (None, None) => {
                return Ok(broken(&h.stream, h.chain_pos, "the sealed record is gone (records were removed)"));
            }
        }
    }
    Ok(None)
}

/// Whether retention removed a sealed head younger than the floor: every
/// legitimate cut of its chain removed only records older than the floor at
/// the time, so the head's time is at least `floor_days` before the chain's
/// latest retention record.
fn cut_too_young(decisions: &[crate::store::StoredDecision], sealed: &SealedHead, floor_days: u32) -> Option<String> {
    use vbridge_core::record::RecordKind;
    let at = chrono::DateTime::parse_from_rfc3339(&sealed.at).ok()?;
    let latest = decisions
        .iter()
        .filter(|d| d.record.kind == RecordKind::Retention)
        .filter(|d| chain::checkpoint_stream(&d.record.write_targets) == Some(sealed.head.stream.as_str()))
        .filter_map(|d| chrono::DateTime::parse_from_rfc3339(&d.record.recorded_at).ok())
        .max()?;
    (at > latest - chrono::Duration::days(floor_days as i64)).then(|| {
        format!(
            "retention removed the sealed record of {} (made {}), younger than the floor of {floor_days} day(s) \
             when the chain was last cut ({})",
            sealed.head.stream,
            sealed.at,
            latest.to_rfc3339()
        )
    })
}
