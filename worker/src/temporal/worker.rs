//! The Temporal worker: the `CandidateVerification` workflow and its activities.

use std::sync::Arc;
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// How many workflows a worker keeps in its sticky cache. A workflow not in
/// it is replayed from its history on its next task (short: runs continue as
/// new), which on a burst over more workflows than the cache adds engine
/// work. Each cached verification costs the process about 110–170 KiB (the
/// bench's phase 13: 12,000 open with 10,000 cached took 1,340 MiB; 5,000
/// open with 2,000 cached, 370 MiB; 15,000, 473 MiB), so the cache sizes
/// most of the worker's memory. A cold verification answered a
/// query in 13–36 ms against 5–12 ms warm, and a decision reached the ATS
/// as fast either way (docs/benchmarks.md, run L).
pub const DEFAULT_CACHED_WORKFLOWS: usize = 2_000;

/// Concurrent workflow task polls per worker, and the share of them on the
/// task queue itself rather than the worker's sticky queue. The SDK's
/// defaults (5 and 0.2) leave one poll on the task queue, where every new
/// run's first task waits: in a backlog over new applications (a storm, a
/// catch-up) that one poll, a round trip per task, held the drain back.
/// Ten polls, half of them there, drained the bench's burst 8 % faster
/// (docs/benchmarks.md, run N).
const WORKFLOW_TASK_POLLS: usize = 10;
const NONSTICKY_POLL_RATIO: f32 = 0.5;

/// The options every worker of the bridge (and the bench's bare ceiling) gets.
pub fn tune(options: &mut WorkerOptions, cached_workflows: usize) {
    use temporalio_sdk::runtime::PollerBehavior;
    options.max_cached_workflows = cached_workflows.max(1);
    options.workflow_task_poller_behavior = Some(PollerBehavior::SimpleMaximum(WORKFLOW_TASK_POLLS));
    options.nonsticky_to_sticky_poll_ratio = NONSTICKY_POLL_RATIO;
}
use vbridge_activities::{
    AtsActivities, AtsConfig, AtsMetrics, AuditActivities, AuditSink, EscalationConfig, ReviewActivities,
};
use vbridge_workflows::verification::CandidateVerification;

/// The SDK runtime's options: its worker metrics go to `meter` (the SDK's
/// Prometheus exporter) when there is one.
pub fn runtime_options(
    meter: Option<Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>>,
) -> temporalio_sdk::runtime::RuntimeOptions {
    let telemetry = match meter {
        Some(m) => temporalio_common::telemetry::TelemetryOptions::builder().metrics(m).build(),
        None => Default::default(),
    };
    temporalio_sdk::runtime::RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .expect("valid runtime options")
}

/// Start the SDK's own Prometheus exporter (worker metrics: task slots,
/// poll latencies, workflow and activity task counts, sticky cache) on
/// `listen`; its bound address and the meter to give the runtime.
pub fn start_sdk_metrics(
    listen: std::net::SocketAddr,
) -> anyhow::Result<(std::net::SocketAddr, Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>)> {
    let opts = temporalio_common::telemetry::PrometheusExporterOptions::builder()
        .socket_addr(listen)
        .counters_total_suffix(true)
        .use_seconds_for_durations(true)
        .unit_suffix(true)
        .build();
    let started = temporalio_common::telemetry::start_prometheus_metric_exporter(opts)?;
    Ok((started.bound_addr, started.meter))
}

/// What the worker's activities are made from.
#[derive(Clone)]
pub struct ActivityDeps {
    /// The SDK's worker metrics exporter (none: not exported).
    pub sdk_meter: Option<Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>>,
    pub ats: AtsConfig,
    pub ats_metrics: Arc<AtsMetrics>,
    pub audit: Arc<dyn AuditSink>,
    pub escalation: EscalationConfig,
    pub escalations: vbridge_activities::ReviewMetrics,
    pub reconcile: Arc<dyn vbridge_activities::ReconcileSource>,
    pub retention: Arc<dyn vbridge_activities::retention::RetentionSource>,
    /// The hiring loop's start and mail activities.
    pub hiring: vbridge_activities::hiring::HiringActivities,
    /// Where polled interviews go (the intake), with the poll's cursor.
    pub interviews: Arc<dyn vbridge_activities::interviews::InterviewSink>,
}

/// Run the Temporal worker until `shutdown` resolves.
pub async fn run_worker(
    client: Client,
    task_queue: &str,
    deps: ActivityDeps,
    cached_workflows: usize,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = Runtime::from_current_tokio(runtime_options(deps.sdk_meter.clone()))?;
    // One connector for writes and reads: one token cache, one rate limiter.
    let connector = deps.ats.connector();
    let mut options = WorkerOptions::new(task_queue.to_owned())
        .register_workflow::<CandidateVerification>()?
        .register_workflow::<vbridge_workflows::reconcile::Reconciliation>()?
        .register_workflow::<vbridge_workflows::retention::AuditRetention>()?
        .register_workflow::<vbridge_workflows::interview_poll::InterviewPoll>()?
        .register_activities(vbridge_activities::interviews::InterviewActivities {
            connector: connector.clone(),
            sink: deps.interviews,
        })
        .register_activities(vbridge_activities::retention::RetentionActivities { source: deps.retention })
        .register_activities(vbridge_activities::ReconcileActivities::new(connector.clone(), deps.reconcile))
        .register_activities(AtsActivities::new(connector, deps.ats_metrics, Some(deps.audit.clone())))
        .register_activities(AuditActivities { sink: deps.audit })
        .register_activities(ReviewActivities::new(deps.escalation, deps.escalations))
        .register_activities(deps.hiring)
        .build();
    tune(&mut options, cached_workflows);
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
