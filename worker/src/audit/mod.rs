//! The audit trail's tools: the hash chains ([`chain`]), the per-candidate
//! timeline export ([`timeline`]), refused requests aggregated
//! ([`refusals`]) and listed ([`refused_deliveries`]), and the seal.
//!
//! A seal is a digest of every chain's head at one moment, kept outside the
//! store (a ticket, a WORM bucket, an email to security). `audit verify
//! --seal FILE` later checks that every sealed head is still in its chain with
//! the same hash: a rewrite of the whole store, hashes recomputed, fails it.

pub mod refusals;
pub mod refused_deliveries;
pub mod timeline;

/// The hash chains are the pure core's; the store links records as it writes.
pub use vbridge_core::chain;

use crate::store::{EventStore, StoreError};
use chain::{Broken, Head};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    pub sealed_at: String,
    pub heads: Vec<Head>,
    /// SHA-256 of the heads (sorted by stream, as JSON): the seal's own check.
    pub digest: String,
}

fn digest(heads: &[Head]) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(heads).expect("heads serialize")))
}

/// Seal the store's current heads.
pub async fn seal(store: &dyn EventStore) -> Result<Seal, StoreError> {
    let mut heads: Vec<Head> = store.heads().await?.into_iter().filter(|h| h.chain_pos > 0).collect();
    heads.sort_by(|a, b| a.stream.cmp(&b.stream));
    let digest = digest(&heads);
    Ok(Seal { sealed_at: crate::now_rfc3339(), heads, digest })
}

/// Check a seal against the store: the first sealed head no longer found.
pub async fn check_seal(store: &dyn EventStore, seal: &Seal) -> Result<Option<Broken>, StoreError> {
    let broken = |stream: &str, pos: i64, problem: &str| {
        Some(Broken {
            stream: stream.to_owned(),
            record: format!("sealed head of {stream}"),
            chain_pos: pos,
            problem: problem.to_owned(),
        })
    };
    let mut sorted = seal.heads.clone();
    sorted.sort_by(|a, b| a.stream.cmp(&b.stream));
    if digest(&sorted) != seal.digest {
        return Ok(broken("", 0, "the seal's digest does not match its heads (the seal file was edited)"));
    }
    let deliveries = store.deliveries(None, None).await?;
    let decisions = store.decisions(None, None).await?;
    let checkpoints = store.checkpoints().await?;
    for h in &sorted {
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
            (None, Some(_)) => {}
            (None, None) => {
                return Ok(broken(&h.stream, h.chain_pos, "the sealed record is gone (records were removed)"));
            }
        }
    }
    Ok(None)
}
