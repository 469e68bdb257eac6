//! The reminder lane (with [`HIRING_PATCH`](super::super::HIRING_PATCH)):
//! the candidate's reminders before the deadline an interview set, on
//! durable timers (see `verification::interview`). A change of the plan (the
//! interview moved or cancelled, a decision, a new start) cancels the timer
//! and plans again.

use crate::verification::CandidateVerification;
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
            let Some(next) = ctx.state(|s| s.next_reminder(now(ctx))) else {
                // Every reminder sent: wait for the plan to change.
                ctx.wait_condition(|s| s.stopping || s.reminder_key() != key).await?;
                continue;
            };
            let wait = (next.due - now(ctx)).to_std().unwrap_or_default();
            let mut timer = ctx.timer(wait);
            let fired = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.stopping || s.reminder_key() != key) => false,
                _ = &mut timer => true,
            };
            if !fired {
                timer.cancel();
                continue;
            }
            ctx.state_mut(|s| s.remind(&next));
        }
    }
}
