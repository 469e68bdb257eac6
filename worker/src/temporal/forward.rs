//! The relay's one Temporal call: signal-with-start of the verification's
//! workflow, whose id comes from the business key.

use super::TemporalError;
use std::sync::Arc;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;
use vbridge_proto::{EventSignal, Tuning, WorkflowInput};
use vbridge_workflows::Policy;
use vbridge_workflows::domain::workflow_id;
use vbridge_workflows::workflow::{CandidateVerification, SA_APPLICATION_ID, SA_CANDIDATE_ID};

/// What the relay needs to start or signal a workflow.
#[derive(Clone)]
pub struct Forwarder {
    pub client: Client,
    pub task_queue: String,
    pub policy: Arc<Policy>,
    pub tuning: Tuning,
}

impl Forwarder {
    /// Signal-with-start: the workflow is created on first use, reused after.
    /// `seen_before`: earlier events of this verification were forwarded, so a
    /// new run here reopens one that closed at rest, and seeds itself.
    #[tracing::instrument(skip_all, fields(trace_id = %ev.trace_id, event_id = %ev.event_id))]
    pub async fn forward(&self, ev: &EventSignal, seen_before: bool) -> Result<(), TemporalError> {
        let workflow_id = workflow_id(&ev.candidate_id, &ev.application_id);
        let input = WorkflowInput {
            candidate_id: ev.candidate_id.clone(),
            application_id: ev.application_id.clone(),
            policy_yaml: self.policy.text().to_owned(),
            policy_sha256: self.policy.sha256().to_owned(),
            carried: None,
            tuning: Some(self.tuning),
            reopen: seen_before,
        };
        let opts = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .search_attributes(SearchAttributes::new([
                SA_CANDIDATE_ID.value_set(ev.candidate_id.clone()),
                SA_APPLICATION_ID.value_set(ev.application_id.clone()),
            ]))
            .build();
        self.client
            .signal_with_start_workflow(
                CandidateVerification::run,
                input,
                CandidateVerification::on_event,
                ev.clone(),
                opts,
            )
            .await
            .map_err(|e| TemporalError::Call(e.to_string()))?;
        Ok(())
    }
}
