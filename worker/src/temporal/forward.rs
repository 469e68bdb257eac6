//! The relay's one Temporal call: signal-with-start of the verification's
//! workflow, whose id comes from the business key.

use super::TemporalError;
use std::sync::Arc;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;
use vbridge_core::Policy;
use vbridge_core::domain::workflow_id;
use vbridge_proto::{EventBatch, EventSignal, Tuning, WorkflowInput};
pub use vbridge_workflows::verification::BATCH_EVENTS_MAX;
use vbridge_workflows::verification::{CandidateVerification, SA_APPLICATION_ID, SA_CANDIDATE_ID, SA_REGION};

/// What the relay needs to start or signal a workflow.
#[derive(Clone)]
pub struct Forwarder {
    pub client: Client,
    pub task_queue: String,
    pub policy: Arc<Policy>,
    pub tuning: Tuning,
    /// See `WorkflowInput.public_url`.
    pub public_url: String,
    /// See `WorkflowInput.banner`.
    pub banner: crate::temporal::SharedBanner,
}

impl Forwarder {
    /// Signal-with-start: the workflow is created on first use, reused after.
    /// `seen_before`: earlier events of this verification were forwarded, so a
    /// new run here reopens one that closed at rest, and seeds itself.
    pub async fn forward(&self, ev: &EventSignal, seen_before: bool) -> Result<(), TemporalError> {
        self.forward_batch(std::slice::from_ref(ev), seen_before, false).await
    }

    /// Forward events of one verification, in commit order, in one call: one
    /// event as `on_event` (what every worker version knows), several, or
    /// one of a backlog, as one `event_batch` signal (at most [`BATCH_EVENTS_MAX`], the relay's bound).
    /// `seen_before` is the first event's; `backlog`: see `EventBatch`.
    pub async fn forward_batch(
        &self,
        events: &[EventSignal],
        seen_before: bool,
        backlog: bool,
    ) -> Result<(), TemporalError> {
        let Some(first) = events.first() else { return Ok(()) };
        if events.len() > BATCH_EVENTS_MAX {
            return Err(TemporalError::Call(format!("a batch of {} events is over {BATCH_EVENTS_MAX}", events.len())));
        }
        let span = tracing::info_span!("forward", trace_id = %first.trace_id, event_id = %first.event_id, events = events.len());
        // Exported traces: the workflow's spans join the (first) delivery's trace.
        crate::telemetry::join_trace(&span, &first.trace_id, "relay");
        use tracing::Instrument;
        self.signal_with_start(events, seen_before, backlog).instrument(span).await
    }

    async fn signal_with_start(
        &self,
        events: &[EventSignal],
        seen_before: bool,
        backlog: bool,
    ) -> Result<(), TemporalError> {
        let ev = &events[0];
        let workflow_id = workflow_id(&ev.candidate_id, &ev.application_id);
        let input = self.input(&ev.candidate_id, &ev.application_id, seen_before);
        // The region a run starts with: the first event that names one.
        let named = events.iter().find(|e| !e.region.is_empty()).unwrap_or(ev);
        let opts = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .search_attributes(event_start_attributes(named))
            .memo(self.memo(&ev.candidate_id, &ev.application_id))
            .static_summary(summary(&ev.candidate_id, &ev.application_id))
            .build();
        let sent = match events {
            // A lone event of a backlog goes as a batch of one, so that the
            // workflow knows it for a backlog (its write runs locally).
            [one] if !backlog => self
                .client
                .signal_with_start_workflow(
                    CandidateVerification::run,
                    input,
                    CandidateVerification::on_event,
                    one.clone(),
                    opts,
                )
                .await
                .map(|_| ()),
            many => self
                .client
                .signal_with_start_workflow(
                    CandidateVerification::run,
                    input,
                    CandidateVerification::on_event_batch,
                    EventBatch { events: many.to_vec(), backlog },
                    opts,
                )
                .await
                .map(|_| ()),
        };
        sent.map_err(|e| TemporalError::Call(e.to_string()))
    }

    /// The input of a new run of a verification's workflow. `reopen`: the
    /// verification had runs before, whose audit log seeds this one.
    /// The memo a verification's run starts with: who, and under which
    /// policy (what an engineer looks for first in the Temporal UI).
    pub fn memo(&self, candidate_id: &str, application_id: &str) -> temporalio_common::MemoValues {
        let mut memo = temporalio_common::MemoValues::new();
        memo.insert("candidate_id", candidate_id.to_owned());
        memo.insert("application_id", application_id.to_owned());
        memo.insert("policy_version", self.policy.version().to_owned());
        memo.insert("policy_sha256", self.policy.sha256().to_owned());
        memo
    }

    pub fn input(&self, candidate_id: &str, application_id: &str, reopen: bool) -> WorkflowInput {
        WorkflowInput {
            candidate_id: candidate_id.to_owned(),
            application_id: application_id.to_owned(),
            policy_yaml: self.policy.text().to_owned(),
            policy_sha256: self.policy.sha256().to_owned(),
            carried: None,
            tuning: Some(self.tuning),
            reopen,
            public_url: self.public_url.clone(),
            banner: self.banner.read().map(|b| b.clone()).unwrap_or_default(),
        }
    }
}

/// The search attributes a run started by an event begins with: the
/// business key, and the job's region when the event names one.
pub fn event_start_attributes(ev: &EventSignal) -> SearchAttributes {
    let mut updates = vec![
        SA_CANDIDATE_ID.value_set(ev.candidate_id.clone()),
        SA_APPLICATION_ID.value_set(ev.application_id.clone()),
    ];
    if !ev.region.is_empty() {
        updates.push(SA_REGION.value_set(ev.region.clone()));
    }
    SearchAttributes::new(updates)
}

/// The one-line summary the Temporal UI shows for a verification's run.
pub fn summary(candidate_id: &str, application_id: &str) -> String {
    format!("identity verification of candidate {candidate_id} for application {application_id}")
}

/// The search attributes a verification's workflow starts with.
pub fn start_attributes(candidate_id: &str, application_id: &str) -> SearchAttributes {
    SearchAttributes::new([
        SA_CANDIDATE_ID.value_set(candidate_id.to_owned()),
        SA_APPLICATION_ID.value_set(application_id.to_owned()),
    ])
}
