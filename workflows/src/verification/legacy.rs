//! The run loop of histories recorded before [`LANES_PATCH`](super::LANES_PATCH).

use super::CandidateVerification;
use super::lanes::audit_append_options;
use super::state::rfc3339;
use std::time::Duration;
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowResult};
use vbridge_activity_defs::{AtsActivities, AuditActivities};
use vbridge_proto::{DecisionBatch, PendingWrite};

impl CandidateVerification {
    /// The loop of runs recorded before [`LANES_PATCH`](super::LANES_PATCH): kept so that their
    /// histories replay. The audit append and the ATS write run side by side
    /// but each round waits for both.
    pub(super) async fn run_legacy(
        ctx: &mut WorkflowContext<Self>,
        audit: bool,
        workflow_id: &str,
    ) -> WorkflowResult<()> {
        let mut signals_checked = 0u64;
        loop {
            ctx.wait_condition(|s| {
                !s.pending.is_empty() || s.signals != signals_checked || (audit && s.has_unclaimed())
            })
            .await?;
            signals_checked = ctx.state(|s| s.signals);
            if Self::history_full(ctx) {
                let next = ctx.state(|s| s.next_input());
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            }
            let (claimed, records) = if audit { ctx.state_mut(|s| s.claim(workflow_id)) } else { (vec![], vec![]) };
            let request = match ctx.state(|s| s.pending.front().cloned()) {
                Some(PendingWrite { request: None, .. }) => {
                    ctx.state_mut(|s| s.pending.pop_front());
                    None
                }
                Some(PendingWrite { request: Some(r), .. }) => Some(r),
                None => None,
            };
            let append = async {
                if records.is_empty() {
                    return Ok(());
                }
                // The log must not lose a decision: retry until it is stored.
                let opts = audit_append_options(Duration::from_secs(30), 0);
                ctx.execute_activity(AuditActivities::append_decisions, DecisionBatch { records }, opts).await
            };
            let write = async {
                match &request {
                    Some(r) => {
                        let opts = ctx.state(|s| s.activity_options());
                        Some(ctx.execute_activity(AtsActivities::write_verification, r.clone(), opts).await)
                    }
                    None => None,
                }
            };
            let (appended, written) = temporalio_sdk::workflows::join!(append, write);
            appended?;
            ctx.state_mut(|s| s.release(&claimed, true));
            let (Some(request), Some(result)) = (request, written) else { continue };
            let now = rfc3339(ctx.workflow_time());
            let deferral = ctx.state_mut(|s| s.settle_write(now, &request, result));
            let attrs = ctx.state(|s| s.sync_attributes());
            ctx.upsert_search_attributes(attrs);
            if let Some(wait) = deferral {
                ctx.timer(wait).await;
            }
        }
    }
}
