//! Temporal glue: connecting, registering search attributes, running the
//! worker, and the signal-with-start the relay uses.

use std::sync::Arc;
use std::time::Duration;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowIdConflictPolicy, WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use vbridge_activities::{AtsActivities, AtsConfig, AtsMetrics, AuditActivities, AuditSink};
use vbridge_proto::{EventSignal, Tuning, WorkflowInput};
use vbridge_workflows::Policy;
use vbridge_workflows::workflow::{CandidateVerification, SA_APPLICATION_ID, SA_CANDIDATE_ID, SEARCH_ATTRIBUTES};

#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    #[error("bad Temporal address {0:?}")]
    Address(String),
    #[error("cannot reach Temporal at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("Temporal call failed: {0}")]
    Call(String),
}

pub fn address_url(address: &str) -> Result<Url, TemporalError> {
    let with_scheme = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    Url::parse(&with_scheme).map_err(|_| TemporalError::Address(address.to_owned()))
}

pub async fn connect(address: &str, namespace: &str) -> Result<Client, TemporalError> {
    let url = address_url(address)?;
    let opts = ConnectionOptions::new(url)
        .identity(format!("vbridge@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conn = Connection::connect(opts)
        .await
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })?;
    Client::new(conn, ClientOptions::new(namespace.to_owned()).build())
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })
}

/// Register the bridge's search attributes (CONTRACT §3) where missing.
pub async fn register_search_attributes(client: &Client, namespace: &str) -> Result<(), TemporalError> {
    use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
    use temporalio_common::protos::temporal::api::operatorservice::v1::{
        AddSearchAttributesRequest, ListSearchAttributesRequest,
    };
    let mut ops = client.connection().operator_service();
    let existing = ops
        .list_search_attributes(temporalio_client::tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))?
        .into_inner();
    let mut missing = std::collections::HashMap::new();
    for (name, kind) in SEARCH_ATTRIBUTES {
        if !existing.custom_attributes.contains_key(*name) {
            let t = match *kind {
                "Datetime" => IndexedValueType::Datetime,
                _ => IndexedValueType::Keyword,
            };
            missing.insert((*name).to_owned(), t as i32);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    ops.add_search_attributes(temporalio_client::tonic::Request::new(AddSearchAttributesRequest {
        search_attributes: missing,
        namespace: namespace.to_owned(),
    }))
    .await
    .map_err(|e| TemporalError::Call(e.to_string()))?;
    Ok(())
}

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
    #[tracing::instrument(skip_all, fields(trace_id = %ev.trace_id, event_id = %ev.event_id))]
    pub async fn forward(&self, ev: &EventSignal) -> Result<(), TemporalError> {
        let workflow_id = format!("verification:{}:{}", ev.candidate_id, ev.application_id);
        let input = WorkflowInput {
            candidate_id: ev.candidate_id.clone(),
            application_id: ev.application_id.clone(),
            policy_yaml: self.policy.text().to_owned(),
            policy_sha256: self.policy.sha256().to_owned(),
            carried: None,
            tuning: Some(self.tuning),
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
    let mut worker = Worker::new(&runtime, client, options)?;
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
