//! The lanes of a run (behind [`LANES_PATCH`](crate::verification::LANES_PATCH)), one file
//! each, joined by the run. Each stops at its next safe point once
//! `stopping` is set; the run then continues as new with what is left, so
//! nothing owed is lost.

mod ats;
mod attributes;
mod audit;
mod hiring;
mod history;
mod reminders;
mod rest;
mod review;

pub(super) use audit::audit_append_options;

use super::CandidateVerification;
use temporalio_sdk::WorkflowContext;

impl CandidateVerification {
    pub(in crate::verification) fn history_full(ctx: &WorkflowContext<Self>) -> bool {
        // A batch is one history event but many events: each counts, so a
        // run takes no more events than it did one signal each. (Runs
        // without batches have no extra: their histories replay as recorded.)
        let (after, extra) = ctx.state(|s| (s.tuning.continue_as_new_after, s.batched_extra));
        ctx.history_length().saturating_add(extra) >= after || ctx.continue_as_new_suggested()
    }
}
