//! The ATS lane: drains the queue of writes, in order.

use crate::verification::CandidateVerification;
use crate::verification::state::{rfc3339, write_record_id};
use temporalio_sdk::{WorkflowContext, WorkflowResult};
use vbridge_activity_defs::AtsActivities;
use vbridge_proto::PendingWrite;

impl CandidateVerification {
    /// Drains the queue of ATS writes in order. Never waits for the audit log.
    pub(in crate::verification) async fn ats_lane(
        ctx: &WorkflowContext<Self>,
        workflow_id: &str,
    ) -> WorkflowResult<()> {
        loop {
            ctx.wait_condition(|s| (!s.pending.is_empty() && !s.view.paused) || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let (mut request, local) = match ctx.state(|s| s.pending.front().cloned()) {
                Some(PendingWrite { request: Some(r), local, .. }) => (r, local),
                _ => {
                    ctx.state_mut(|s| s.pending.pop_front());
                    continue;
                }
            };
            let write_logs = ctx.state(|s| s.patches().write_logs);
            let mut claimed = vec![];
            if write_logs {
                let (indices, records) = ctx.state_mut(|s| {
                    s.ats_in_flight = true;
                    s.claim(workflow_id)
                });
                claimed = indices;
                request.records = records;
                request.write_record_id = write_record_id(workflow_id, &request.idempotency_key);
            }
            // A backlog's write runs as a local activity (LOCAL_WRITE_PATCH):
            // the same activity, retry policy and idempotency key, without a
            // task of its own in the engine.
            let result = if local && ctx.state(|s| s.patches().local_write) {
                let opts = ctx.state(|s| s.local_activity_options());
                ctx.execute_local_activity(AtsActivities::write_verification, request.clone(), opts).await
            } else {
                let opts = ctx.state(|s| s.activity_options());
                ctx.execute_activity(AtsActivities::write_verification, request.clone(), opts).await
            };
            let now = rfc3339(ctx.workflow_time());
            let deferral = ctx.state_mut(|s| {
                s.ats_in_flight = false;
                s.release(&claimed, result.as_ref().is_ok_and(|r| r.records_logged));
                s.settle_write(now, &request, result)
            });
            if !write_logs {
                let attrs = ctx.state(|s| s.sync_attributes());
                ctx.upsert_search_attributes(attrs);
            }
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
            }
            if let Some(wait) = deferral {
                temporalio_sdk::workflows::select! {
                    _ = ctx.timer(wait) => {}
                    _ = ctx.wait_condition(|s: &Self| s.stopping) => {}
                }
            }
        }
    }
}
