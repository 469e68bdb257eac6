//! A decision record's append inside a group: its chain, its sealed
//! fields, and the projections that follow the log in the same transaction.

use super::{Backend, Heads, erase};
use crate::store::ops;
use crate::store::projection::{controls, dead_letters, gate, reconcile, review};
use vbridge_core::chain;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// What a newly stored decision record makes the metrics observe, once the
/// transaction that stored it is committed.
pub(super) enum Observed {
    /// A verification's move into `verified`: the apply → verified seconds
    /// (`time_apply_to_verified`).
    Verified(f64),
    /// A provider's reversal (`provider_reversal_count`).
    Reversal,
    /// An interview's time came; verified by then or not
    /// (`verified_before_interview_ratio`'s two counters).
    InterviewReached { verified: bool },
}

/// Append one decision record (a no-op when its id is stored). Returns what
/// the metrics observe of it, when anything.
pub(super) async fn append_decision<B: Backend>(
    b: &mut B,
    heads: &mut Heads<'_>,
    r: &DecisionRecord,
) -> Result<Option<Observed>, sqlx::Error> {
    if ops::decision_exists(b.conn(), &r.record_id).await? {
        return Ok(None);
    }
    let stream = chain::decision_stream(r);
    let mut sealed;
    let r = if erase::names_a_person(r) {
        sealed = r.clone();
        for field in [&mut sealed.reason, &mut sealed.detail] {
            if !field.is_empty() && !vbridge_core::seal::is_sealed(field) {
                *field = heads.seal(b, &r.candidate_id, field).await?;
            }
        }
        &sealed
    } else {
        r
    };
    let next = heads.next(b, &stream).await?;
    let link = heads.link(&stream, next, r);
    ops::insert_decision(b.conn(), r, &link).await?;
    // The queue follows the log in the same transaction: never ahead of it.
    if let Some(change) = review::change_of(r) {
        ops::project_review(b.conn(), &change).await?;
    }
    if let Some(change) = gate::change_of(r) {
        ops::project_gate(b.conn(), &change).await?;
    }
    if let Some(change) = dead_letters::change_of(r) {
        ops::project_dead_letter(b.conn(), &change).await?;
    }
    if let Some((run_id, report)) = reconcile::report_of(r) {
        ops::project_run(b.conn(), &run_id, &r.recorded_at, &report).await?;
    }
    if let Some(w) = reconcile::written_of(r) {
        ops::project_expected(b.conn(), &w).await?;
    }
    if let Some(control) = controls::control_of(r) {
        ops::project_control(b.conn(), &control).await?;
    }
    if r.kind == RecordKind::Applied && r.state_after == "verified" && r.state_before != "verified" {
        let key = crate::store::keys::existing(b.conn(), &r.candidate_id).await?;
        let times = ops::event_times(b.conn(), &r.candidate_id, &r.application_id, key.as_ref()).await?;
        return Ok(crate::metrics::apply_to_verified_seconds(&times, &r.occurred_at).map(Observed::Verified));
    }
    if r.kind == RecordKind::ProviderReversal {
        return Ok(Some(Observed::Reversal));
    }
    if r.kind == RecordKind::InterviewReached {
        return Ok(Some(Observed::InterviewReached { verified: r.state_after == "verified" }));
    }
    Ok(None)
}

impl Observed {
    /// Count it (once its group is committed).
    pub(super) fn count(self) {
        match self {
            Observed::Verified(seconds) => crate::metrics::APPLY_TO_VERIFIED.observe(seconds),
            Observed::Reversal => crate::metrics::PROVIDER_REVERSALS.inc(),
            Observed::InterviewReached { verified } => {
                crate::metrics::INTERVIEWS_REACHED.inc();
                if verified {
                    crate::metrics::INTERVIEWS_REACHED_VERIFIED.inc();
                }
            }
        }
    }
}
