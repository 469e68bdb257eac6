//! Human moves on a verification, as Temporal Updates: a reviewer's decision
//! (`review_decide`) and an admin's override (`override`). Both go by
//! update-with-start, so a verification whose workflow closed at rest opens a
//! new run for it (seeded from its audit log). The update id is the
//! request's `Idempotency-Key`: a retried request applies once.

use super::forward::{Forwarder, start_attributes};
use crate::store::EventStore;
use temporalio_client::errors::{WorkflowUpdateError, WorkflowUpdateWithStartError};
use temporalio_client::{WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions};
use vbridge_core::domain::{ApplicationId, CandidateId, workflow_id};
use vbridge_core::review::Refusal;
use vbridge_proto::{GatingSignal, OverrideRequest, PauseSignal, RetryWrites, ReviewDecision, StateView};
use vbridge_workflows::verification::CandidateVerification;

/// A process's way to Temporal for human moves: the client once connected
/// (none in a receiver-only process), and what a new run's input needs.
pub struct TemporalLink {
    pub client: tokio::sync::watch::Receiver<Option<temporalio_client::Client>>,
    pub task_queue: String,
    pub policy: std::sync::Arc<vbridge_core::Policy>,
    pub tuning: vbridge_proto::Tuning,
    pub public_url: String,
    pub banner: crate::temporal::SharedBanner,
    pub namespace: String,
}

impl TemporalLink {
    pub fn forwarder(&self) -> Option<Forwarder> {
        let client = self.client.borrow().clone()?;
        Some(Forwarder {
            client,
            task_queue: self.task_queue.clone(),
            policy: self.policy.clone(),
            tuning: self.tuning,
            public_url: self.public_url.clone(),
            banner: self.banner.clone(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// The workflow refused it (validator or handler): the contract's code.
    #[error("{0}")]
    Refused(Refusal),
    #[error("Temporal: {0}")]
    Temporal(String),
    /// No delivery of this verification was ever accepted: nothing is started.
    #[error("no verification {0} is known to the bridge")]
    Unknown(String),
    #[error("the event store cannot be read: {0}")]
    Store(String),
    /// An operator's visibility query that could widen the bridge's filter.
    #[error(transparent)]
    BadQuery(#[from] super::broadcast::BadQuery),
}

/// Only a verification the bridge has accepted events for may be moved, so
/// that a typo never starts a workflow.
async fn known(store: &dyn EventStore, v: &Verification) -> Result<(), MoveError> {
    match store.knows(v.candidate_id.as_str(), v.application_id.as_str()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(MoveError::Unknown(v.workflow_id())),
        Err(e) => Err(MoveError::Store(e.to_string())),
    }
}

/// A human move's note, checked as written and then sealed under the
/// candidate's key (docs/privacy.md): Temporal's histories, the workflow's
/// state and the audit log only ever hold it sealed, and erasing the
/// candidate makes every copy unreadable.
async fn sealed_note(store: &dyn EventStore, v: &Verification, note: &str) -> Result<String, MoveError> {
    vbridge_core::review::check_note(note).map_err(MoveError::Refused)?;
    store.seal_for(v.candidate_id.as_str(), note).await.map_err(|e| MoveError::Store(e.to_string()))
}

/// A verification's key, parsed.
#[derive(Debug, Clone)]
pub struct Verification {
    pub candidate_id: CandidateId,
    pub application_id: ApplicationId,
}

impl Verification {
    pub fn workflow_id(&self) -> String {
        workflow_id(self.candidate_id.as_str(), self.application_id.as_str())
    }
}

fn options(fw: &Forwarder, v: &Verification, update_id: &str) -> WorkflowUpdateWithStartOptions {
    let (c, a) = (v.candidate_id.as_str(), v.application_id.as_str());
    WorkflowUpdateWithStartOptions::new(fw.task_queue.clone(), v.workflow_id(), WorkflowIdConflictPolicy::UseExisting)
        .search_attributes(start_attributes(c, a))
        .memo(fw.memo(c, a))
        .static_summary(super::forward::summary(c, a))
        .update_id(update_id.to_owned())
        .build()
}

fn classify(e: WorkflowUpdateWithStartError) -> MoveError {
    let failure = match &e {
        WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Failed(f)) => Some(f.message.clone()),
        _ => None,
    };
    match failure.as_deref().and_then(Refusal::from_failure) {
        Some(r) => MoveError::Refused(r),
        None => MoveError::Temporal(e.to_string()),
    }
}

/// Pause or resume one verification's ATS writes (role ops). A signal, by
/// signal-with-start, so a verification closed at rest can be paused too.
#[tracing::instrument(skip_all, fields(trace_id = %p.trace_id, workflow_id = %v.workflow_id(), actor = %p.actor))]
pub async fn pause(store: &dyn EventStore, fw: &Forwarder, v: &Verification, p: PauseSignal) -> Result<(), MoveError> {
    signal(store, fw, v, CandidateVerification::run, CandidateVerification::on_pause, p).await
}

/// Re-drive a verification's dead letters (one by key, or all).
#[tracing::instrument(skip_all, fields(workflow_id = %v.workflow_id(), actor = %r.actor))]
pub async fn retry_writes(
    store: &dyn EventStore,
    fw: &Forwarder,
    v: &Verification,
    r: RetryWrites,
) -> Result<(), MoveError> {
    signal(store, fw, v, CandidateVerification::run, CandidateVerification::on_retry_writes, r).await
}

/// Signal a known verification by signal-with-start (a run closed at rest
/// reopens, seeded from the audit log).
async fn signal<W, S>(
    store: &dyn EventStore,
    fw: &Forwarder,
    v: &Verification,
    workflow: W,
    s: S,
    input: S::Input,
) -> Result<(), MoveError>
where
    W: temporalio_common::HasWorkflowDefinition<Input = vbridge_proto::WorkflowInput>,
    S: temporalio_common::SignalDefinition<Workflow = W::Run>,
    S::Input: Send,
{
    known(store, v).await?;
    let start = fw.input(v.candidate_id.as_str(), v.application_id.as_str(), true);
    let opts = temporalio_client::WorkflowStartOptions::new(fw.task_queue.clone(), v.workflow_id())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .search_attributes(start_attributes(v.candidate_id.as_str(), v.application_id.as_str()))
        .memo(fw.memo(v.candidate_id.as_str(), v.application_id.as_str()))
        .static_summary(super::forward::summary(v.candidate_id.as_str(), v.application_id.as_str()))
        .build();
    fw.client
        .signal_with_start_workflow(workflow, start, s, input, opts)
        .await
        .map(|_| ())
        .map_err(|e| MoveError::Temporal(e.to_string()))
}

/// Pause or resume every open verification the visibility query `and`
/// narrows to (all, when none): a batch signal. Its job id.
pub async fn pause_all(
    fw: &Forwarder,
    namespace: &str,
    and: Option<&str>,
    p: PauseSignal,
) -> Result<String, MoveError> {
    let query = super::broadcast::open_verifications(&fw.task_queue, and)?;
    let reason = format!("{} by {}: {}", if p.paused { "pause" } else { "resume" }, p.actor, p.reason);
    super::broadcast::signal_all(
        &fw.client,
        namespace,
        query,
        vbridge_workflows::verification::PAUSE_SIGNAL,
        &p,
        &reason,
    )
    .await
    .map_err(|e| MoveError::Temporal(e.to_string()))
}

/// Tell every open verification that the kill switch changed (their ATS
/// banner): a batch signal. Its job id.
pub async fn broadcast_gating(fw: &Forwarder, namespace: &str, g: GatingSignal) -> Result<String, MoveError> {
    let query = super::broadcast::open_verifications(&fw.task_queue, None)?;
    let reason = format!("gating {} by {}: {}", if g.enabled { "on" } else { "off" }, g.actor, g.reason);
    super::broadcast::signal_all(
        &fw.client,
        namespace,
        query,
        vbridge_workflows::verification::GATING_SIGNAL,
        &g,
        &reason,
    )
    .await
    .map_err(|e| MoveError::Temporal(e.to_string()))
}

/// A reviewer's decision. `update_id`: the request's idempotency key.
#[tracing::instrument(skip_all, fields(trace_id = %d.trace_id, workflow_id = %v.workflow_id(), actor = %d.actor))]
pub async fn decide(
    store: &dyn EventStore,
    fw: &Forwarder,
    v: &Verification,
    mut d: ReviewDecision,
) -> Result<StateView, MoveError> {
    known(store, v).await?;
    d.note = sealed_note(store, v, &d.note).await?;
    let input = fw.input(v.candidate_id.as_str(), v.application_id.as_str(), true);
    let opts = options(fw, v, &format!("review:{}", d.request_id));
    fw.client
        .execute_update_with_start_workflow(
            CandidateVerification::run,
            input,
            CandidateVerification::review_decide,
            d,
            opts,
        )
        .await
        .map_err(classify)
}

/// An admin's override.
#[tracing::instrument(skip_all, fields(trace_id = %o.trace_id, workflow_id = %v.workflow_id(), actor = %o.actor))]
pub async fn override_state(
    store: &dyn EventStore,
    fw: &Forwarder,
    v: &Verification,
    mut o: OverrideRequest,
) -> Result<StateView, MoveError> {
    known(store, v).await?;
    o.note = sealed_note(store, v, &o.note).await?;
    let input = fw.input(v.candidate_id.as_str(), v.application_id.as_str(), true);
    let opts = options(fw, v, &format!("override:{}", o.request_id));
    fw.client
        .execute_update_with_start_workflow(
            CandidateVerification::run,
            input,
            CandidateVerification::override_state,
            o,
            opts,
        )
        .await
        .map_err(classify)
}
