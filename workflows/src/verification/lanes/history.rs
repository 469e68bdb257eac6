//! The history watch: asks the lanes to stop when the history is full.

use crate::verification::CandidateVerification;
use temporalio_sdk::WorkflowContext;

impl CandidateVerification {
    /// Watches the history grow with signals; asks the lanes to stop when full.
    pub(in crate::verification) async fn history_watch(ctx: &WorkflowContext<Self>) {
        let mut checked = 0u64;
        loop {
            let _ = ctx.wait_condition(|s| s.signals != checked || s.stopping).await;
            if ctx.state(|s| s.stopping) {
                return;
            }
            checked = ctx.state(|s| s.signals);
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
                return;
            }
        }
    }
}
