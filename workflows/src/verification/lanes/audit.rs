//! The audit lane: the timeline into the audit log, as it grows.

use crate::verification::CandidateVerification;
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use vbridge_activity_defs::AuditActivities;
use vbridge_proto::DecisionBatch;

impl CandidateVerification {
    /// Appends the timeline to the audit log as it grows. Never waits for an
    /// ATS write for long (see the hold below). An append that keeps failing (the store is down) is
    /// retried in rounds, so that a continue-as-new is never held up for long.
    pub(in crate::verification) async fn audit_lane(
        ctx: &WorkflowContext<Self>,
        workflow_id: &str,
    ) -> WorkflowResult<()> {
        loop {
            ctx.wait_condition(|s| s.has_unclaimed() || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                // A run that took batches logs what it holds in one more
                // append before it continues as new, so that it carries
                // little (batches bring entries faster than one per signal).
                if ctx.state(|s| s.batched_extra > 0 && s.has_unclaimed()) {
                    let (claimed, records) = ctx.state_mut(|s| s.claim(workflow_id));
                    let opts = audit_append_options(Duration::from_secs(10), 10);
                    let appended =
                        ctx.execute_activity(AuditActivities::append_decisions, DecisionBatch { records }, opts).await;
                    ctx.state_mut(|s| s.release(&claimed, appended.is_ok()));
                }
                return Ok(());
            }
            // Entries that come while a write is owed are left to it (it logs
            // what it finds unclaimed) for up to `audit_hold_ms`; past that the
            // lane logs them itself, so an ATS in a long retry round never
            // keeps decisions out of the log for longer.
            let hold_ms = ctx.state(|s| s.tuning.audit_hold_ms);
            if ctx.state(|s| s.patches().write_logs && s.write_owed()) {
                let held_long = temporalio_sdk::workflows::select! {
                    _ = ctx.wait_condition(|s: &Self| !s.write_owed() || !s.has_unclaimed() || s.stopping) => false,
                    _ = ctx.timer(Duration::from_millis(hold_ms as u64)) => true,
                };
                if !held_long {
                    continue;
                }
            }
            let (claimed, records) = ctx.state_mut(|s| s.claim(workflow_id));
            if records.is_empty() {
                continue;
            }
            // Rounds of 10 attempts: see the Err arm below.
            let opts = audit_append_options(Duration::from_secs(10), 10);
            let appended =
                ctx.execute_activity(AuditActivities::append_decisions, DecisionBatch { records }, opts).await;
            ctx.state_mut(|s| s.release(&claimed, appended.is_ok()));
            // The log must not lose a decision: the entries stay, and are
            // carried over a continue-as-new, until they are stored.
            if appended.is_err() {
                temporalio_sdk::workflows::select! {
                    _ = ctx.timer(Duration::from_secs(30)) => {}
                    _ = ctx.wait_condition(|s: &Self| s.stopping) => {}
                }
            }
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
            }
        }
    }
}

/// Options of the audit append: `maximum_attempts` 0 retries for ever.
pub(in crate::verification) fn audit_append_options(
    maximum_interval: Duration,
    maximum_attempts: u32,
) -> ActivityOptions {
    let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(30));
    opts.retry_policy = Some(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(200))
            .maximum_interval(maximum_interval)
            .maximum_attempts(maximum_attempts)
            .build(),
    );
    opts
}
