//! The reminder lane (with [`HIRING_PATCH`](super::super::HIRING_PATCH)):
//! the candidate's reminders before the deadline an interview set, on
//! durable timers (see `verification::interview`), then the interview's own
//! time, to record whether the verification was verified by then. A change of the plan (the
//! interview moved or cancelled, a decision, a new start) cancels the timer
//! and plans again.

use crate::verification::CandidateVerification;
use crate::verification::interview::Wake;
use crate::verification::state::rfc3339;
use chrono::{DateTime, Utc};
use temporalio_sdk::{CancellableFuture, WorkflowContext, WorkflowResult};

impl CandidateVerification {
    pub(in crate::verification) async fn reminder_lane(ctx: &WorkflowContext<Self>) -> WorkflowResult<()> {
        if !ctx.state(|s| s.patches().hiring) {
            return Ok(());
        }
        let now = |ctx: &WorkflowContext<Self>| -> DateTime<Utc> {
            ctx.workflow_time().map(DateTime::<Utc>::from).unwrap_or_default()
        };
        loop {
            ctx.wait_condition(|s| s.stopping || s.reminder_key().is_some()).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let key = ctx.state(|s| s.reminder_key());
            let Some(next) = ctx.state(|s| s.next_wake(now(ctx))) else {
                // Nothing left to wait for: wait for the plan to change.
                ctx.wait_condition(|s| s.stopping || s.reminder_key() != key).await?;
                continue;
            };
            let due = match &next {
                Wake::Remind(r) => r.due,
                Wake::Reached(at) => *at,
            };
            let wait = (due - now(ctx)).to_std().unwrap_or_default();
            let mut timer = ctx.timer(wait);
            let fired = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.stopping || s.reminder_key() != key) => false,
                _ = &mut timer => true,
            };
            if !fired {
                timer.cancel();
                continue;
            }
            let at = rfc3339(ctx.workflow_time());
            ctx.state_mut(|s| match &next {
                Wake::Remind(r) => s.remind(r),
                Wake::Reached(_) => s.interview_reached(&at),
            });
        }
    }
}
