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
        ctx.history_length() >= ctx.state(|s| s.tuning.continue_as_new_after) || ctx.continue_as_new_suggested()
    }
}
