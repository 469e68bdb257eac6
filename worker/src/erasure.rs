//! Erasure by crypto-shredding (docs/privacy.md, contract §9): the
//! candidate's personal data becomes unreadable everywhere the bridge keeps
//! it, and every chain still verifies.
//!
//! One way in for every trigger (`POST /v1/candidates/{c}/erase`, `vbridge
//! erase`, Greenhouse's `candidate_anonymized`, Persona's
//! `inquiry.redacted`), in this order:
//! 1. the store, in one transaction: the candidate's field key is destroyed
//!    (every sealed field, in any row, backup or history, no longer opens),
//!    the hiring rows that name the candidate are deleted (addresses, links,
//!    mail records: so no pending invite or reminder can be sent), and the
//!    chained `erased` record is appended to the `erasure` chain;
//! 2. Temporal: open runs continue as new, and every closed run's history is
//!    deleted (`temporal::erase`).
//!
//! The first step is the one that matters, and it comes first: when
//! Temporal cannot be reached, the data is already unreadable and the report
//! says the histories are owed; erasing again (the same request) finishes
//! them.

use crate::store::{Erased, Erasure, EventStore, StoreError};
use crate::temporal::erase::HistoriesErased;
use std::time::Duration;
use vbridge_core::domain::CandidateId;

/// How long open runs get to reach a safe point and continue as new: well
/// inside the operator API's 15-s request budget (`VBRIDGE_API_REQUEST_TIMEOUT_MS`),
/// so that the answer can report the histories. A run still open after it
/// is reported `still_open`; erasing again deletes its history.
pub const SAFE_POINT_WAIT: Duration = Duration::from_secs(8);
/// The longest reason code taken.
const MAX_REASON_CODE: usize = 64;
/// The longest note taken (it is kept in the `erasure` chain for good).
pub const MAX_NOTE_CHARS: usize = 500;

/// Who asks, why, and through which door.
#[derive(Debug, Clone)]
pub struct Request {
    pub candidate: CandidateId,
    pub actor: String,
    pub reason_code: String,
    pub note: String,
    pub trigger: Trigger,
    pub trace_id: String,
    /// The erasure record's id: the same request erases once.
    pub request_id: String,
}

/// What triggered an erasure (stored in its record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Api,
    Cli,
    GreenhouseAnonymized,
    PersonaRedacted,
}

impl Trigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Cli => "cli",
            Trigger::GreenhouseAnonymized => "greenhouse.candidate_anonymized",
            Trigger::PersonaRedacted => "persona.inquiry.redacted",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("{0}")]
    Invalid(String),
    #[error("no candidate {0} is known to the bridge")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub candidate_id: String,
    #[serde(flatten)]
    pub store: Erased,
    /// The histories (none: this process has no Temporal connection, or the
    /// call failed: `histories_owed` says why).
    pub histories: Option<HistoriesErased>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histories_owed: Option<String>,
}

/// A reason code is a code (`candidate_request`, `ats_anonymized`, ...),
/// never free text: lower-case letters, digits and `_`.
fn check(req: &Request) -> Result<(), ErasureError> {
    let code = &req.reason_code;
    let is_code = !code.is_empty()
        && code.len() <= MAX_REASON_CODE
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !is_code {
        return Err(ErasureError::Invalid(format!(
            "reason_code must be a code of 1 to {MAX_REASON_CODE} lower-case letters, digits and _"
        )));
    }
    if req.actor.trim().is_empty() {
        return Err(ErasureError::Invalid("an erasure needs an actor".into()));
    }
    if req.note.chars().count() > MAX_NOTE_CHARS {
        return Err(ErasureError::Invalid(format!("the note is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(())
}

/// Whether the bridge holds anything of the candidate (a key, an erasure
/// before, or records from before keys existed), cheapest read first.
async fn known(store: &dyn EventStore, c: &str) -> Result<bool, StoreError> {
    Ok(store.existing_field_key(c).await?.is_some()
        || !store.erasures(Some(c)).await?.is_empty()
        || !store.deliveries(Some(c), None).await?.is_empty())
}

/// Erase the candidate: the store first, then the histories when a Temporal
/// client is given (`(client, namespace)`).
#[tracing::instrument(skip_all, fields(candidate_id = %req.candidate.as_str(), trace_id = %req.trace_id, trigger = req.trigger.as_str()))]
pub async fn erase(
    store: &dyn EventStore,
    temporal: Option<(&temporalio_client::Client, &str)>,
    req: Request,
) -> Result<Report, ErasureError> {
    check(&req)?;
    let c = req.candidate.as_str().to_owned();
    if !known(store, &c).await? {
        return Err(ErasureError::Unknown(c));
    }
    let erased = store
        .erase(Erasure {
            candidate_id: c.clone(),
            actor: req.actor.clone(),
            reason_code: req.reason_code.clone(),
            note: req.note.clone(),
            trigger: req.trigger.as_str().to_owned(),
            trace_id: req.trace_id.clone(),
            record_id: format!("erase:{}", req.request_id),
        })
        .await?;
    crate::metrics::ERASURES.inc();
    tracing::info!(key_destroyed = erased.key_destroyed, hiring_rows = erased.hiring_rows, actor = %req.actor, "candidate erased in the store");
    let mut report = Report { candidate_id: c, store: erased, histories: None, histories_owed: None };
    let Some((client, namespace)) = temporal else {
        report.histories_owed =
            Some("this process is not connected to Temporal; erase again to delete the histories".into());
        return Ok(report);
    };
    match erase_histories(client, namespace, &req.candidate, &req.actor, &req.trace_id).await {
        Ok(h) => report.histories = Some(h),
        Err(e) => report.histories_owed = Some(format!("{e}; erase again to delete the histories")),
    }
    Ok(report)
}

/// The Temporal side alone (a webhook's erasure runs it in the background,
/// after the store's part is committed and answered).
pub async fn erase_histories(
    client: &temporalio_client::Client,
    namespace: &str,
    candidate: &CandidateId,
    actor: &str,
    trace_id: &str,
) -> Result<HistoriesErased, crate::temporal::TemporalError> {
    let signal = vbridge_proto::EraseSignal { actor: actor.to_owned(), trace_id: trace_id.to_owned() };
    let r = crate::temporal::erase::erase_histories(client, namespace, candidate, signal, SAFE_POINT_WAIT).await;
    match &r {
        Ok(h) => {
            tracing::info!(
                trace_id,
                continued = h.continued,
                deleted = h.deleted,
                still_open = h.still_open,
                "histories erased"
            )
        }
        Err(e) => tracing::warn!(trace_id, error = %e, "the histories were not erased; erase again to finish"),
    }
    r
}
