//! `AuditRetention`: the nightly cut of the audit log under the policy's
//! floor (`eventLog.retentionDays`), started by a Temporal Schedule beside
//! reconciliation's, so that no outside cron is needed. It only orchestrates:
//! the one activity runs the cut in the store and refuses a cut below the
//! floor (not retried); a store that cannot be reached is retried.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use vbridge_activity_defs::{RETENTION_REFUSED, RetentionActivities};

#[workflow]
#[derive(Default)]
pub struct AuditRetention;

/// The activity's options: a large store takes a while to cut; a failure
/// is retried a few times, a refusal never.
pub fn retain_options() -> ActivityOptions {
    let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(30 * 60));
    opts.retry_policy = Some(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(5))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(300))
            .maximum_attempts(5)
            .non_retryable_error_types([RETENTION_REFUSED])
            .build(),
    );
    opts
}

#[workflow_methods]
impl AuditRetention {
    /// `requested_by`: who started it (`schedule`, or an operator). Returns
    /// the store's report (JSON).
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, requested_by: String) -> WorkflowResult<String> {
        Ok(ctx.execute_activity(RetentionActivities::retain, requested_by, retain_options()).await?)
    }
}
