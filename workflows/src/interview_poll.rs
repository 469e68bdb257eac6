//! `InterviewPoll`: one pass over the ATS's interview listing (Greenhouse
//! pushes no interviews), started by a Temporal Schedule every
//! `VBRIDGE_INTERVIEW_POLL_SECONDS`. It only orchestrates: the one activity
//! reads the pages changed since its cursor and hands each booking to the
//! intake, which judges it by the gate as it does Ashby's pushed ones. The
//! schedule skips a run while the last one is still going.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use vbridge_activity_defs::InterviewActivities;

#[workflow]
#[derive(Default)]
pub struct InterviewPoll;

/// The activity's options: it heartbeats each second, so a worker killed
/// mid-run is retried after 10 s, from the same cursor; a few attempts,
/// then the next scheduled run tries again.
pub fn poll_options() -> ActivityOptions {
    let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(15 * 60));
    opts.heartbeat_timeout = Some(Duration::from_secs(10));
    opts.retry_policy = Some(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(2))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .maximum_attempts(4)
            .build(),
    );
    opts
}

#[workflow_methods]
impl InterviewPoll {
    /// `requested_by`: `schedule`, or an operator. Returns the activity's
    /// report (JSON).
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, requested_by: String) -> WorkflowResult<String> {
        Ok(ctx.execute_activity(InterviewActivities::poll, requested_by, poll_options()).await?)
    }
}
