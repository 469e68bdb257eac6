//! The part of a pack a person reads first, derived from the records alone
//! (so `verify` derives it again and a summary that lies is caught):
//! - the decisions, reviews and overrides, with their actor, reason code and
//!   reason, in chain order;
//! - the ATS writes, with their idempotency keys, targets and answers;
//! - the provider's evidence links the deliveries named.

use super::{Chain, Reveal, Table};
use crate::seal::{self, FieldKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub decisions: Vec<Decision>,
    pub ats_writes: Vec<AtsWrite>,
    pub evidence_links: Vec<String>,
}

/// A decision record that is not an ATS write: an applied event, a refused
/// or skipped one, a review routed or decided, an override, a reversal, a
/// hiring step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub stream: String,
    pub chain_pos: i64,
    pub recorded_at: String,
    pub kind: String,
    pub state_before: String,
    pub state_after: String,
    /// A person's decision: who (the override's actor), else empty.
    pub actor: String,
    pub reason_code: String,
    pub reason: String,
    /// A human move's note, opened with the pack's field key (`erased`
    /// when the candidate was erased).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// An ATS write's record (`ats_write`, `ats_failed`, `ats_deferred`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtsWrite {
    pub stream: String,
    pub chain_pos: i64,
    pub recorded_at: String,
    pub kind: String,
    pub idempotency_key: String,
    pub targets: String,
    /// What the ATS answered, as the record says it.
    pub answer: String,
}

/// A record's sealed text shown: opened under `key`, or `erased`.
fn shown(r: &Value, field: &str, key: Option<&FieldKey>) -> String {
    seal::reveal(key, &text(r, "candidate_id"), &text(r, field))
}

/// A human move's note (in its `detail`), shown (format /2 on).
fn note(r: &Value, how: &Reveal) -> String {
    if !how.notes {
        return String::new();
    }
    let key = how.key.as_ref();
    let detail: Value = serde_json::from_str(&text(r, "detail")).unwrap_or(Value::Null);
    let n = text(&detail, "note");
    seal::reveal(key, &text(r, "candidate_id"), &n)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The summary of `chains`' records (a record whose `linked` is not JSON
/// contributes nothing: `verify` names it).
/// Sealed fields are opened with the candidate's field key the pack carries
/// (none: they show `erased`).
pub fn summarize(chains: &[Chain], how: &Reveal) -> Summary {
    let key = how.key.as_ref();
    let mut out = Summary::default();
    for c in chains {
        for e in &c.records {
            let Ok(linked) = serde_json::from_str::<Value>(&e.linked) else { continue };
            let Some(r) = linked.get("record") else { continue };
            match e.table {
                Table::Delivery => {
                    let signal: Value = serde_json::from_str(&text(r, "signal")).unwrap_or(Value::Null);
                    let link = text(&signal, "evidence_pack_url");
                    if !link.is_empty() && !out.evidence_links.contains(&link) {
                        out.evidence_links.push(link);
                    }
                }
                Table::Decision => {
                    let kind = text(r, "kind");
                    if kind.starts_with("ats_") {
                        out.ats_writes.push(AtsWrite {
                            stream: c.stream.clone(),
                            chain_pos: e.chain_pos,
                            recorded_at: text(r, "recorded_at"),
                            kind,
                            idempotency_key: text(r, "idempotency_key"),
                            targets: text(r, "write_targets"),
                            answer: text(r, "reason"),
                        });
                    } else {
                        out.decisions.push(Decision {
                            stream: c.stream.clone(),
                            chain_pos: e.chain_pos,
                            recorded_at: text(r, "recorded_at"),
                            kind,
                            state_before: text(r, "state_before"),
                            state_after: text(r, "state_after"),
                            actor: text(r, "override_actor"),
                            reason_code: text(r, "override_reason_code"),
                            reason: shown(r, "reason", key),
                            note: note(r, how),
                        });
                    }
                }
            }
        }
    }
    out
}

/// One line of the candidate's timeline: each record of every chain, in
/// time order (chain order within a chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineLine {
    pub at: String,
    pub stream: String,
    pub chain_pos: i64,
    pub source: Table,
    /// A delivery's processing result, or a decision record's kind.
    pub kind: String,
    pub event_id: String,
    pub event_type: String,
    pub state_before: String,
    pub state_after: String,
    pub actor: String,
    pub reason_code: String,
    pub reason: String,
    /// As [`Decision::note`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The timeline of `chains`' records, derived from them alone.
pub fn timeline(chains: &[Chain], how: &Reveal) -> Vec<TimelineLine> {
    let key = how.key.as_ref();
    let mut out = vec![];
    for c in chains {
        for e in &c.records {
            let Ok(linked) = serde_json::from_str::<Value>(&e.linked) else { continue };
            let Some(r) = linked.get("record") else { continue };
            let (at, kind) = match e.table {
                Table::Delivery => (text(r, "received_at"), text(r, "processing_result")),
                Table::Decision => (text(r, "recorded_at"), text(r, "kind")),
            };
            out.push(TimelineLine {
                at,
                stream: c.stream.clone(),
                chain_pos: e.chain_pos,
                source: e.table,
                kind,
                event_id: text(r, "event_id"),
                event_type: text(r, "event_type"),
                state_before: text(r, "state_before"),
                state_after: text(r, "state_after"),
                actor: text(r, "override_actor"),
                reason_code: text(r, "override_reason_code"),
                reason: shown(r, "reason", key),
                note: note(r, how),
            });
        }
    }
    // Chains are in order already; a stable sort by time merges them.
    out.sort_by(|a, b| a.at.cmp(&b.at));
    out
}
