//! The rest lane: a verification at rest for a quiet period closes.

use crate::verification::CandidateVerification;
use std::time::Duration;
use temporalio_sdk::WorkflowContext;

impl CandidateVerification {
    /// Closes a verification that stays at rest for `quiet_close_ms` (with
    /// [`REST_CLOSE_PATCH`](super::super::REST_CLOSE_PATCH)): the lanes stop and the run completes.
    /// An event in the same activation as the timer wins, and the run goes on.
    pub(in crate::verification) async fn rest_lane(ctx: &WorkflowContext<Self>) {
        let quiet = ctx.state(|s| s.tuning.quiet_close_ms);
        if !ctx.state(|s| s.patches().rest_close) || quiet == 0 {
            return;
        }
        loop {
            let _ = ctx.wait_condition(|s| s.at_rest() || s.stopping).await;
            if ctx.state(|s| s.stopping) {
                return;
            }
            let signals = ctx.state(|s| s.signals);
            let quiet_done = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.signals != signals || !s.at_rest() || s.stopping) => false,
                _ = ctx.timer(Duration::from_millis(quiet as u64)) => true,
            };
            if quiet_done {
                ctx.state_mut(|s| {
                    s.closing = true;
                    s.stopping = true;
                });
                return;
            }
        }
    }
}
