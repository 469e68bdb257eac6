//! Reconciliation (policy `resiliency.reconciliation`, mode diff-and-heal):
//! the store's side. What the bridge wrote to each ATS check is the merge of
//! its `ats_write` records' fields (a projection the store keeps,
//! `crate::store::projection::reconcile`); the
//! `Reconciliation` workflow pages through it, reads the ATS back and heals
//! the differences; its report is a `reconciled` record in the audit log's
//! `reconciliation` chain, and a row of `reconcile_runs`. A Temporal Schedule
//! made from the policy's cron starts it ([`ensure_schedule`]).

use crate::store::{EventStore, StoreError};
use std::sync::Arc;
use temporalio_client::{Client, WorkflowStartOptions};
use vbridge_core::record::RecordKind;
use vbridge_proto::{DecisionRecord, ExpectedWrite, ReconcileInput, ReconcileProgress};
use vbridge_workflows::reconcile::Reconciliation;

/// The store as the reconciliation's source.
pub struct StoreSource(pub Arc<dyn EventStore>);

#[async_trait::async_trait]
impl vbridge_activities::ReconcileSource for StoreSource {
    async fn expected_page(&self, after: &str, limit: u32) -> Result<Vec<ExpectedWrite>, String> {
        let (app, check) = after.split_once('\n').unwrap_or(("", ""));
        self.0.expected_page((app, check), limit).await.map_err(|e| e.to_string())
    }

    async fn record_report(&self, run_id: &str, report: &ReconcileProgress) -> Result<(), String> {
        let mut summary = report.clone();
        summary.items.clear();
        let now = crate::now_rfc3339();
        let record = DecisionRecord {
            record_id: format!(
                "rcn-{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(run_id.as_bytes()))[..40].to_owned()
            ),
            recorded_at: now,
            kind: RecordKind::Reconciled.into(),
            reason: format!(
                "{}checked {}, drifted {}, healed {}, failed {}, unreadable {}",
                if report.dry_run { "dry run: " } else { "" },
                report.checked,
                report.drifted,
                report.healed,
                report.failed,
                report.unreadable
            ),
            write_targets: run_id.to_owned(),
            processing_result: RecordKind::Reconciled.into(),
            override_actor: report.requested_by.clone(),
            detail: serde_json::to_string(report).map_err(|e| e.to_string())?,
            ..Default::default()
        };
        self.0.append_decisions(vec![record]).await.map_err(|e| e.to_string())?;
        tracing::info!(%run_id, checked = summary.checked, drifted = summary.drifted, healed = summary.healed, "reconciliation finished");
        Ok(())
    }
}

/// The input of a run under the policy.
pub fn input(policy: &vbridge_core::Policy, dry_run: bool, requested_by: &str) -> ReconcileInput {
    ReconcileInput {
        dry_run,
        page_size: vbridge_workflows::reconcile::DEFAULT_PAGE,
        timeout_ms: policy.ats_write_timeout_ms() as u32,
        max_attempts: policy.max_retry_attempts(),
        requested_by: requested_by.to_owned(),
        carried: None,
    }
}

/// Start a run now; its id.
pub async fn start(
    client: &Client,
    task_queue: &str,
    policy: &vbridge_core::Policy,
    dry_run: bool,
    requested_by: &str,
) -> Result<String, crate::temporal::TemporalError> {
    let id = format!("reconcile-{}", uuid::Uuid::new_v4().simple());
    let opts = WorkflowStartOptions::new(task_queue.to_owned(), id.clone()).build();
    client
        .start_workflow(Reconciliation::run, input(policy, dry_run, requested_by), opts)
        .await
        .map_err(|e| crate::temporal::TemporalError::Call(e.to_string()))?;
    Ok(id)
}

/// The id of the bridge's reconciliation schedule on a task queue.
pub fn schedule_id(task_queue: &str) -> String {
    format!("vbridge-reconciliation-{task_queue}")
}

/// Create the Temporal Schedule of the policy's cron, when the policy
/// enables reconciliation and it does not exist yet.
pub async fn ensure_schedule(
    client: &Client,
    task_queue: &str,
    policy: &vbridge_core::Policy,
) -> Result<(), crate::temporal::TemporalError> {
    use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleSpec};
    let r = &policy.raw().resiliency.reconciliation;
    if !r.enabled {
        return Ok(());
    }
    let id = schedule_id(task_queue);
    let opts = CreateScheduleOptions::builder()
        .action(ScheduleAction::start_workflow(
            Reconciliation::run,
            input(policy, false, "schedule"),
            task_queue.to_owned(),
            format!("reconcile-nightly-{task_queue}"),
        ))
        .spec(ScheduleSpec::builder().cron_strings(vec![r.schedule.clone()]).build())
        .note(format!("resiliency.reconciliation ({}), policy {}", r.mode, policy.version()))
        .build();
    match client.create_schedule(id.clone(), opts).await {
        Ok(_) => {
            tracing::info!(schedule = %id, cron = %r.schedule, "reconciliation schedule created");
            Ok(())
        }
        Err(e) if e.to_string().to_lowercase().contains("already") => Ok(()),
        Err(e) => Err(crate::temporal::TemporalError::Call(e.to_string())),
    }
}

/// A finished run's report, or the progress of one still running.
pub async fn report(
    store: &dyn EventStore,
    client: Option<&Client>,
    run_id: &str,
) -> Result<Option<ReconcileProgress>, StoreError> {
    if let Some(json) = store.reconcile_run(run_id).await? {
        return Ok(serde_json::from_str(&json).ok());
    }
    let Some(client) = client else { return Ok(None) };
    let h = client.get_workflow_handle::<Reconciliation>(run_id.to_owned());
    Ok(h.query(Reconciliation::progress, (), Default::default()).await.ok())
}
