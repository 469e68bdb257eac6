//! One signal to many verifications at once, through Temporal's batch
//! operations (`StartBatchOperation`): the server's own batcher walks the
//! visibility query and signals each workflow, so a change reaches tens of
//! thousands of open verifications without the bridge looping over them.
//! Used for the kill switch's banner and for pausing by query.

use super::TemporalError;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::batch::v1::BatchOperationSignal;
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    StartBatchOperationRequest, start_batch_operation_request::Operation,
};

/// Signals per second the batch asks for (the server caps it with its own
/// `worker.batcherRPS`).
pub const BATCH_RPS: f32 = 1000.0;

/// The visibility query of the bridge's open verifications on a task queue,
/// narrowed by `and` (a visibility query of the operator's) when given.
pub fn open_verifications(task_queue: &str, and: Option<&str>) -> String {
    let base = format!(
        "WorkflowType = 'CandidateVerification' AND ExecutionStatus = 'Running' AND TaskQueue = '{}'",
        task_queue.replace('\'', "")
    );
    match and {
        Some(q) if !q.trim().is_empty() => format!("{base} AND ({q})"),
        _ => base,
    }
}

/// The payload the SDK's JSON converter reads back.
pub fn json_payload<T: serde::Serialize>(value: &T) -> Payloads {
    let data = serde_json::to_vec(value).expect("a signal serializes");
    Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into_iter().collect(),
            data,
            ..Default::default()
        }],
    }
}

/// Start a batch signal; its job id.
pub async fn signal_all<T: serde::Serialize>(
    client: &Client,
    namespace: &str,
    query: String,
    signal: &str,
    input: &T,
    reason: &str,
) -> Result<String, TemporalError> {
    let job_id = format!("vbridge-{signal}-{}", uuid::Uuid::new_v4().simple());
    let request = StartBatchOperationRequest {
        namespace: namespace.to_owned(),
        visibility_query: query,
        job_id: job_id.clone(),
        reason: reason.to_owned(),
        max_operations_per_second: BATCH_RPS,
        operation: Some(Operation::SignalOperation(BatchOperationSignal {
            signal: signal.to_owned(),
            input: Some(json_payload(input)),
            identity: format!("vbridge@{}", std::process::id()),
            ..Default::default()
        })),
        ..Default::default()
    };
    client
        .connection()
        .workflow_service()
        .start_batch_operation(temporalio_client::tonic::Request::new(request))
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))?;
    tracing::info!(%job_id, %signal, "batch signal started");
    Ok(job_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_the_bridge_s_open_verifications_narrowed() {
        let q = open_verifications("verification-bridge", Some("ApplicationId STARTS_WITH 'emea-'"));
        assert!(q.starts_with("WorkflowType = 'CandidateVerification' AND ExecutionStatus = 'Running'"));
        assert!(q.ends_with("AND (ApplicationId STARTS_WITH 'emea-')"));
        assert!(!open_verifications("q'x", None).contains("q'x"), "a quote cannot end the task queue's string");
    }
}
