//! The attributes lane: search attributes and current details, once per activation.

use crate::verification::CandidateVerification;
use temporalio_sdk::WorkflowContext;

impl CandidateVerification {
    /// Upserts the search attributes that changed, once per activation (with
    /// [`WRITE_LOGS_PATCH`](super::super::WRITE_LOGS_PATCH); before it, each change upserted its
    /// own).
    pub(in crate::verification) async fn attributes_lane(ctx: &WorkflowContext<Self>) {
        if !ctx.state(|s| s.patches().write_logs) {
            return;
        }
        loop {
            let _ = ctx.wait_condition(|s| s.attributes_changed() || s.stopping).await;
            let updates = ctx.state_mut(|s| s.changed_attributes());
            if !updates.is_empty() {
                ctx.upsert_search_attributes(updates);
            }
            if let Some(details) = ctx.state_mut(|s| {
                let d = s.details();
                (s.patches().review && d != s.details_set).then(|| {
                    s.details_set = d.clone();
                    d
                })
            }) {
                ctx.set_current_details(details);
            }
            if ctx.state(|s| s.stopping) {
                return;
            }
        }
    }
}
