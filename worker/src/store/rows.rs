//! The rows the store hands back: deliveries (with the content their hash
//! covers) and decision records, each with its place in its chain.

use serde::Serialize;
use vbridge_proto::DecisionRecord;

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

/// One stored row, for timelines and tests: the hashed content, plus where it
/// sits (seq, chain link) and whether the relay forwarded it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredDelivery {
    pub seq: i64,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub content: DeliveryContent,
    pub forwarded: bool,
    pub stream: Option<String>,
    pub chain_pos: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    /// The audit key that made the link; empty for a plain hash.
    pub key_id: String,
}

impl std::ops::Deref for StoredDelivery {
    type Target = DeliveryContent;
    fn deref(&self) -> &DeliveryContent {
        &self.content
    }
}

/// One decision record as stored, with its place in the chain.
#[derive(Debug, Clone, Serialize)]
pub struct StoredDecision {
    pub seq: i64,
    #[serde(flatten)]
    pub record: DecisionRecord,
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The audit key that made the link; empty for a plain hash.
    pub key_id: String,
}

/// A `decisions` row as both backends read it.
#[derive(sqlx::FromRow)]
pub(crate) struct DecisionRow {
    seq: i64,
    record_id: String,
    recorded_at: String,
    kind: String,
    candidate_id: String,
    application_id: String,
    event_id: String,
    event_type: String,
    occurred_at: String,
    received_at: String,
    idempotency_key: String,
    state_before: String,
    state_after: String,
    reason: String,
    write_targets: String,
    delivery_attempt: i64,
    processing_result: String,
    trace_id: String,
    override_actor: String,
    override_reason_code: String,
    override_timestamp: String,
    detail: String,
    stream: String,
    chain_pos: i64,
    prev_hash: String,
    hash: String,
    key_id: String,
}

impl From<DecisionRow> for StoredDecision {
    fn from(r: DecisionRow) -> StoredDecision {
        StoredDecision {
            seq: r.seq,
            record: DecisionRecord {
                record_id: r.record_id,
                recorded_at: r.recorded_at,
                kind: r.kind,
                candidate_id: r.candidate_id,
                application_id: r.application_id,
                event_id: r.event_id,
                event_type: r.event_type,
                occurred_at: r.occurred_at,
                received_at: r.received_at,
                idempotency_key: r.idempotency_key,
                state_before: r.state_before,
                state_after: r.state_after,
                reason: r.reason,
                write_targets: r.write_targets,
                delivery_attempt: r.delivery_attempt as u32,
                processing_result: r.processing_result,
                trace_id: r.trace_id,
                override_actor: r.override_actor,
                override_reason_code: r.override_reason_code,
                override_timestamp: r.override_timestamp,
                detail: r.detail,
            },
            stream: r.stream,
            chain_pos: r.chain_pos,
            prev_hash: r.prev_hash,
            hash: r.hash,
            key_id: r.key_id,
        }
    }
}
