//! The bare ceiling of the bench's burst phase: the least a workflow can do
//! per event, one signal and one no-op activity, on the same SDK, dev server
//! and machine as the bridge. The bridge's end-to-end rate is stated as a
//! fraction of this one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, Runtime, SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
};

#[workflow]
#[derive(Default)]
pub struct BareCeiling {
    queued: u64,
    done: u64,
}

#[workflow_methods]
impl BareCeiling {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, _name: String) -> WorkflowResult<()> {
        loop {
            ctx.wait_condition(|s| s.queued > s.done).await?;
            let opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(30));
            ctx.execute_activity(BareActivities::noop, String::new(), opts).await?;
            ctx.state_mut(|s| s.done += 1);
        }
    }

    #[signal]
    pub fn event(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _id: String) {
        self.queued += 1;
    }
}

/// Counts the events the bare workflows finished.
pub struct BareActivities {
    pub done: Arc<AtomicU64>,
}

#[activities]
impl BareActivities {
    #[activity]
    pub async fn noop(self: Arc<Self>, _ctx: ActivityContext, _id: String) -> Result<(), ActivityError> {
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// One event to one bare workflow, as the relay sends one to the bridge's.
pub async fn signal(client: &Client, task_queue: &str, workflow: &str, event: String) -> anyhow::Result<()> {
    let opts = WorkflowStartOptions::new(task_queue.to_owned(), workflow.to_owned())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    client
        .signal_with_start_workflow(BareCeiling::run, String::new(), BareCeiling::event, event, opts)
        .await
        .map_err(|e| anyhow::anyhow!("bare signal-with-start: {e}"))?;
    Ok(())
}

/// Run a worker for the bare workflow until `stop` resolves.
pub async fn run_worker(
    client: Client,
    task_queue: &str,
    done: Arc<AtomicU64>,
    cached_workflows: usize,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut options = WorkerOptions::new(task_queue.to_owned())
        .register_workflow::<BareCeiling>()?
        .register_activities(BareActivities { done })
        .build();
    // The same tuning as the bridge's worker: the ceiling is the engine's.
    crate::temporal::worker::tune(&mut options, cached_workflows);
    crate::temporal::worker::run_until(Worker::new(&runtime, client, options)?, stop).await
}
