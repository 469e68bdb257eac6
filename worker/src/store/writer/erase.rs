//! Erasure's store side (crypto-shredding: docs/privacy.md). In one group
//! transaction: the candidate's field key goes (every field sealed under it
//! no longer opens, and the chains, which link the sealed text, still
//! verify), the hiring rows that name the candidate go, and the chained
//! `erased` record is appended to the `erasure` chain. That record holds no
//! personal data: it is never sealed, never cut by retention and never
//! erased.

use super::Backend;
use crate::store::run::Run;
use crate::store::sql;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// What to erase, asked by whom and why.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub candidate_id: String,
    /// Who asked: the API's subject, the CLI's `--actor`, or the webhook's
    /// sender (`greenhouse`, `persona`).
    pub actor: String,
    pub reason_code: String,
    /// The operator's words about the erasure (never the candidate's data).
    pub note: String,
    /// What triggered it: `api`, `cli`, `greenhouse.candidate_anonymized`,
    /// `persona.inquiry.redacted`.
    pub trigger: String,
    pub trace_id: String,
    /// The erasure record's id: a retried request appends it once.
    pub record_id: String,
}

/// What one erasure did in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub record_id: String,
    pub recorded_at: String,
    /// A key was destroyed (false: the candidate had none left; erased before).
    pub key_destroyed: bool,
    /// Hiring rows deleted (addresses, sessions and links, mail records).
    pub hiring_rows: u64,
}

/// Delete the key and the hiring rows; the record to append.
pub(super) async fn erase<B: Backend>(b: &mut B, e: &Erasure) -> Result<(DecisionRecord, Erased), sqlx::Error> {
    let c = e.candidate_id.as_str();
    let key_destroyed = b.conn().execute(sql::ERASE_FIELD_KEY, &[c.into()]).await? > 0;
    let mut hiring_rows = 0;
    for q in [sql::ERASE_CONTACTS, sql::ERASE_STARTS, sql::ERASE_MAILS] {
        hiring_rows += b.conn().execute(q, &[c.into()]).await?;
    }
    let now = crate::now_rfc3339();
    let record = DecisionRecord {
        record_id: e.record_id.clone(),
        recorded_at: now.clone(),
        kind: RecordKind::Erased.into(),
        candidate_id: c.to_owned(),
        event_type: e.trigger.clone(),
        reason: e.note.clone(),
        trace_id: e.trace_id.clone(),
        override_actor: e.actor.clone(),
        override_reason_code: e.reason_code.clone(),
        override_timestamp: now.clone(),
        processing_result: "erased".into(),
        detail: serde_json::json!({
            "trigger": e.trigger,
            "key_destroyed": key_destroyed,
            "hiring_rows": hiring_rows,
        })
        .to_string(),
        ..Default::default()
    };
    let erased = Erased { record_id: e.record_id.clone(), recorded_at: now, key_destroyed, hiring_rows };
    Ok((record, erased))
}

/// Whether a record names a person in its `reason` and `detail`, to seal
/// under the candidate's key before it is linked: a mail's record (its
/// recipient's SHA-256, which a dictionary of addresses would undo, and the
/// Message-ID). A human move's note arrives sealed already (the edge seals
/// it before Temporal sees it).
pub(super) fn names_a_person(r: &DecisionRecord) -> bool {
    r.kind == RecordKind::MailSent && !r.candidate_id.is_empty()
}
