//! The hiring lane (with [`HIRING_PATCH`](super::super::HIRING_PATCH)): the
//! starts a trigger requested, created at the provider, then their invites
//! mailed, one step at a time, each through an activity idempotent by the
//! start's key (see `verification::hiring`).

use crate::verification::CandidateVerification;
use crate::verification::hiring::{HiringJob, rejected_type};
use crate::verification::state::rfc3339;
use temporalio_sdk::{WorkflowContext, WorkflowResult};
use vbridge_activity_defs::HiringActivities;

impl CandidateVerification {
    pub(in crate::verification) async fn hiring_lane(ctx: &WorkflowContext<Self>) -> WorkflowResult<()> {
        let workflow_id = ctx.workflow_id().to_owned();
        if !ctx.state(|s| s.patches().hiring) {
            return Ok(());
        }
        loop {
            ctx.wait_condition(|s| s.stopping || s.hiring_job().is_some()).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let Some(job) = ctx.state(|s| s.hiring_job()) else { continue };
            let opts = ctx.state(|s| s.hiring_options(rejected_type(&job)));
            match job {
                HiringJob::Start(req) => {
                    let result = ctx.execute_activity(HiringActivities::start_verification, req.clone(), opts).await;
                    let now = rfc3339(ctx.workflow_time());
                    ctx.state_mut(|s| s.start_done(&now, &workflow_id, &req.key, result));
                }
                HiringJob::Mail(req) => {
                    let result = ctx.execute_activity(HiringActivities::send_mail, req.clone(), opts).await;
                    let now = rfc3339(ctx.workflow_time());
                    ctx.state_mut(|s| s.mail_done(&now, &req, result));
                }
            }
        }
    }
}
