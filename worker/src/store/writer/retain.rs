//! Retention's part of the writer: cut each chain's oldest records as a
//! prefix, leave a checkpoint and a retention record in the chain it cut
//! (stating its cut-off and floor), inside the writer's group transaction.

use super::{Backend, Heads, append_decision};
use crate::store::ops;
use std::collections::HashMap;
use vbridge_core::chain::{self, floor::Cut};
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// What a retention run removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Retention {
    pub cutoff: String,
    pub streams_cut: usize,
    pub records_removed: usize,
    /// Chains whose cut stopped early at an accepted delivery not yet
    /// forwarded: retention never removes one.
    pub held_by_outbox: usize,
}

/// One record's place in its chain, for retention.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ChainEntry {
    pub stream: String,
    pub chain_pos: i64,
    pub hash: String,
    pub at: String,
    /// An accepted delivery still in the outbox.
    pub pending: bool,
}

/// Cut every chain's records older than `cutoff`, as a prefix: a record
/// stays when any earlier one in its chain is newer than the cutoff, or is an
/// accepted delivery not yet forwarded, so the kept part is always one
/// unbroken run of links after a checkpoint and nothing owed to Temporal goes.
pub(super) async fn retain<B: Backend>(b: &mut B, heads: &mut Heads<'_>, spec: &Cut) -> Result<Retention, sqlx::Error> {
    let cutoff = spec.cutoff.as_str();
    let mut by_stream: HashMap<String, Vec<ChainEntry>> = HashMap::new();
    for e in ops::chain_entries(b.conn()).await? {
        by_stream.entry(e.stream.clone()).or_default().push(e);
    }
    // The erasure chain is kept whole: an erasure record is the proof that
    // a candidate's data was made unreadable, and must outlive the data.
    by_stream.remove(chain::ERASURE_STREAM);
    let mut streams: Vec<_> = by_stream.keys().cloned().collect();
    streams.sort();
    b.lock_streams(&streams).await?;
    let now = crate::now_rfc3339();
    let mut report = Retention { cutoff: cutoff.to_owned(), ..Default::default() };
    for stream in streams {
        let mut entries = by_stream.remove(&stream).unwrap_or_default();
        entries.sort_by_key(|e| e.chain_pos);
        let old = entries.iter().take_while(|e| e.at.as_str() < cutoff).count();
        let cut: Vec<&ChainEntry> = entries.iter().take_while(|e| e.at.as_str() < cutoff && !e.pending).collect();
        if cut.len() < old {
            report.held_by_outbox += 1;
        }
        let Some(last) = cut.last() else { continue };
        let cp =
            chain::Checkpoint { stream: stream.clone(), next_pos: last.chain_pos + 1, prev_hash: last.hash.clone() };
        let removed = b.cut_prefix(&cp, &now).await?;
        let (candidate_id, application_id) = stream.split_once(':').unwrap_or((stream.as_str(), ""));
        let id = vbridge_core::intake::sha256_hex(format!("{stream}\n{}", last.chain_pos).as_bytes());
        let record = DecisionRecord {
            record_id: format!("ret-{}", &id[..40]),
            recorded_at: now.clone(),
            kind: RecordKind::Retention.into(),
            candidate_id: candidate_id.into(),
            application_id: application_id.into(),
            reason: format!("removed {removed} records older than {cutoff} (positions up to {})", last.chain_pos),
            write_targets: chain::checkpoint_target(&cp),
            processing_result: "retention".into(),
            // The cut-off and the floor it was made under, for verify's floor check.
            detail: serde_json::to_string(spec).expect("a cut serializes"),
            ..Default::default()
        };
        append_decision(b, heads, &record).await?;
        report.streams_cut += 1;
        report.records_removed += removed as usize;
    }
    Ok(report)
}
