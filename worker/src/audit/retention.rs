//! Retention under the policy's floor (`eventLog.retentionDays`): the one
//! way the CLI and the Temporal Schedule cut the audit log. A cut-off younger
//! than the floor is refused before the store is touched; each retention
//! record carries its cut and floor ([`Cut`]), and [`floor_breaks`] finds
//! any cut that went below it, however it was made.

use crate::store::{EventStore, Retention, StoreError};
use vbridge_core::chain::Broken;
use vbridge_core::chain::floor::{self, Cut, FloorError};
use vbridge_core::record::RecordKind;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Floor(#[from] FloorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The policy's floor, in days.
pub fn floor_days(policy: &vbridge_core::Policy) -> u32 {
    policy.raw().event_log.retention_days
}

/// Cut every chain's records older than `days` (the policy's floor when
/// none is asked; fewer is refused).
pub async fn run(
    store: &dyn EventStore,
    policy: &vbridge_core::Policy,
    days: Option<u32>,
) -> Result<Retention, RetentionError> {
    let cut: Cut = floor::cutoff(chrono::Utc::now(), days, floor_days(policy))?;
    tracing::info!(cutoff = %cut.cutoff, floor_days = cut.retention_days, "audit retention starting");
    Ok(store.retain(&cut).await?)
}

/// Every retention record whose cut went below the floor (the policy's, or
/// the one it was made under if smaller).
pub async fn floor_breaks(store: &dyn EventStore, policy_days: u32) -> Result<Vec<Broken>, StoreError> {
    let decisions = store.decisions(None, None).await?;
    let made = decisions.iter().filter(|d| d.record.kind == RecordKind::Retention).map(|d| floor::Made {
        stream: &d.stream,
        chain_pos: d.chain_pos,
        recorded_at: &d.record.recorded_at,
        write_targets: &d.record.write_targets,
        detail: &d.record.detail,
        label: format!("decision {} (seq {})", d.record.record_id, d.seq),
    });
    Ok(floor::breaks(made, policy_days))
}

/// When the bridge's retention schedule runs: nightly, at 03:17 UTC (off
/// the hour, away from other nightly jobs).
pub const RETENTION_CRON: &str = "17 3 * * *";

/// The id of the bridge's retention schedule on a task queue.
pub fn schedule_id(task_queue: &str) -> String {
    format!("vbridge-retention-{task_queue}")
}

/// The store and the policy, as the retention activity's source.
pub struct StoreRetention {
    pub store: std::sync::Arc<dyn EventStore>,
    pub policy: vbridge_core::Policy,
}

#[async_trait::async_trait]
impl vbridge_activities::retention::RetentionSource for StoreRetention {
    async fn retain(&self, requested_by: &str) -> Result<String, vbridge_activities::retention::RetentionFailure> {
        use vbridge_activities::retention::RetentionFailure;
        let report = run(self.store.as_ref(), &self.policy, None).await.map_err(|e| match e {
            RetentionError::Floor(f) => RetentionFailure::Refused(f.to_string()),
            RetentionError::Store(s) => RetentionFailure::Failed(s.to_string()),
        })?;
        tracing::info!(
            %requested_by,
            streams_cut = report.streams_cut,
            records_removed = report.records_removed,
            held_by_outbox = report.held_by_outbox,
            "audit retention finished"
        );
        Ok(serde_json::to_string(&report).unwrap_or_default())
    }
}

/// Create the nightly retention schedule unless it exists.
pub async fn ensure_schedule(client: &temporalio_client::Client, task_queue: &str) -> Result<(), String> {
    use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleSpec};
    use vbridge_workflows::retention::AuditRetention;
    let id = schedule_id(task_queue);
    let opts = CreateScheduleOptions::builder()
        .action(ScheduleAction::start_workflow(
            AuditRetention::run,
            "schedule".to_owned(),
            task_queue.to_owned(),
            format!("audit-retention-{task_queue}"),
        ))
        .spec(ScheduleSpec::builder().cron_strings(vec![RETENTION_CRON.to_owned()]).build())
        .note("eventLog.retentionDays: the audit log's nightly cut (docs/audit.md)".to_owned())
        .build();
    match client.create_schedule(id.clone(), opts).await {
        Ok(_) => {
            tracing::info!(schedule = %id, cron = RETENTION_CRON, "audit retention schedule created");
            Ok(())
        }
        Err(e) if e.to_string().to_lowercase().contains("already") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
