//! The review lane: the SLA timer of the open review item, and its escalations.

use crate::verification::CandidateVerification;
use crate::verification::human::until;
use crate::verification::state::rfc3339;
use temporalio_sdk::{CancellableFuture, WorkflowContext, WorkflowResult};
use vbridge_activity_defs::ReviewActivities;

impl CandidateVerification {
    /// The SLA timer of the open review item (with [`REVIEW_PATCH`](super::super::REVIEW_PATCH)):
    /// when it fires with no decision, the item is escalated (an `escalated` entry, a signed
    /// webhook) and the timer set one more SLA out. A decision, an override or a new routing
    /// cancels it.
    pub(in crate::verification) async fn review_lane(
        ctx: &WorkflowContext<Self>,
        workflow_id: &str,
    ) -> WorkflowResult<()> {
        if !ctx.state(|s| s.patches().review) {
            return Ok(());
        }
        let key = |s: &Self| s.view.review.as_ref().map(|r| (r.routed_at.clone(), r.escalations));
        loop {
            ctx.wait_condition(|s| s.view.review.is_some() || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let (item, due) = ctx.state(|s| (key(s), s.view.review.as_ref().map(|r| r.due_at.clone())));
            let wait = until(&due.unwrap_or_default(), ctx.workflow_time());
            let mut timer = ctx.timer(wait);
            let fired = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.stopping || key(s) != item) => false,
                _ = &mut timer => true,
            };
            if !fired {
                // Decided, overridden or re-routed: the SLA timer is cancelled
                // (a dropped timer would still fire, to no one).
                timer.cancel();
                continue;
            }
            let now = rfc3339(ctx.workflow_time());
            let Some(req) = ctx.state_mut(|s| s.escalate(&now, workflow_id)) else { continue };
            let opts = ctx.state(|s| s.escalation_options());
            let result = ctx.execute_activity(ReviewActivities::escalate, req.clone(), opts).await;
            let now = rfc3339(ctx.workflow_time());
            ctx.state_mut(|s| s.escalation_done(now, &req, result));
        }
    }
}
