//! The Temporal worker: the `CandidateVerification` workflow and its activities.

use std::sync::Arc;
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use vbridge_activities::{AtsActivities, AtsConfig, AtsMetrics, AuditActivities, AuditSink};
use vbridge_workflows::workflow::CandidateVerification;

/// Run the Temporal worker until `shutdown` resolves.
pub async fn run_worker(
    client: Client,
    task_queue: &str,
    ats: AtsConfig,
    ats_metrics: Arc<AtsMetrics>,
    audit: Arc<dyn AuditSink>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = WorkerOptions::new(task_queue.to_owned())
        .register_workflow::<CandidateVerification>()?
        .register_activities(AtsActivities::new(ats, ats_metrics, Some(audit.clone())))
        .register_activities(AuditActivities { sink: audit })
        .build();
    run_until(Worker::new(&runtime, client, options)?, shutdown).await
}

/// Run a worker until it stops by itself or `shutdown` resolves; then let it
/// finish what it has in hand.
pub async fn run_until(mut worker: Worker, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let stop = worker.shutdown_handle();
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => r?,
        _ = shutdown => {
            stop();
            run.await?;
        }
    }
    Ok(())
}
