//! Erasure's Temporal side (docs/privacy.md): a candidate's workflow
//! histories. Open runs are signalled `erase` and continue as new at their
//! next safe point (the new run's input holds no address, and the notes in
//! it are sealed under the destroyed key); then every closed run of the
//! candidate's workflows is deleted through `DeleteWorkflowExecution`, since
//! the namespace's retention would keep them for days.

use super::TemporalError;
use super::broadcast::json_payload;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use temporalio_client::Client;
use temporalio_client::tonic::Request;
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DeleteWorkflowExecutionRequest, DescribeWorkflowExecutionRequest, ListWorkflowExecutionsRequest,
    SignalWorkflowExecutionRequest,
};
use vbridge_core::domain::CandidateId;
use vbridge_proto::EraseSignal;

/// What erasure did to the candidate's histories.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoriesErased {
    /// Open runs asked to continue as new.
    pub continued: u32,
    /// Closed runs whose histories were deleted.
    pub deleted: u32,
    /// Open runs that had not closed within the wait (their history is
    /// deleted by the next erasure of the candidate, or by retention).
    pub still_open: u32,
}

/// The most runs one erasure walks (a candidate has a run per application,
/// and a chain of continued runs behind each).
const MAX_RUNS: usize = 10_000;

struct Run {
    workflow_id: String,
    run_id: String,
    running: bool,
}

async fn list(client: &Client, namespace: &str, query: &str) -> Result<Vec<Run>, TemporalError> {
    let mut out = vec![];
    let mut token = vec![];
    loop {
        let req = ListWorkflowExecutionsRequest {
            namespace: namespace.to_owned(),
            page_size: 500,
            next_page_token: token,
            query: query.to_owned(),
        };
        let page = client
            .connection()
            .workflow_service()
            .list_workflow_executions(Request::new(req))
            .await
            .map_err(|e| TemporalError::Call(e.to_string()))?
            .into_inner();
        for e in page.executions {
            let Some(x) = e.execution else { continue };
            let running = e.status == WorkflowExecutionStatus::Running as i32;
            out.push(Run { workflow_id: x.workflow_id, run_id: x.run_id, running });
        }
        if page.next_page_token.is_empty() || out.len() >= MAX_RUNS {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

async fn running(client: &Client, namespace: &str, workflow_id: &str, run_id: &str) -> Result<bool, TemporalError> {
    let req = DescribeWorkflowExecutionRequest {
        namespace: namespace.to_owned(),
        execution: Some(WorkflowExecution { workflow_id: workflow_id.to_owned(), run_id: run_id.to_owned() }),
    };
    let info = client
        .connection()
        .workflow_service()
        .describe_workflow_execution(Request::new(req))
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))?
        .into_inner()
        .workflow_execution_info;
    Ok(info.is_some_and(|i| i.status == WorkflowExecutionStatus::Running as i32))
}

/// Continue the candidate's open runs as new, then delete every closed run
/// of its workflows. `wait`: how long open runs get to reach a safe point.
pub async fn erase_histories(
    client: &Client,
    namespace: &str,
    candidate: &CandidateId,
    signal: EraseSignal,
    wait: Duration,
) -> Result<HistoriesErased, TemporalError> {
    // A parsed id holds no quote; doubled anyway, the visibility query's escape.
    let c = candidate.as_str().replace('\'', "''");
    let query = format!("WorkflowType = 'CandidateVerification' AND CandidateId = '{c}'");
    let runs = list(client, namespace, &query).await?;
    let mut out = HistoriesErased::default();
    let mut signalled = vec![];
    for r in runs.iter().filter(|r| r.running) {
        let req = SignalWorkflowExecutionRequest {
            namespace: namespace.to_owned(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: r.workflow_id.clone(),
                run_id: r.run_id.clone(),
            }),
            signal_name: vbridge_workflows::verification::ERASE_SIGNAL.to_owned(),
            input: Some(json_payload(&signal)),
            identity: format!("vbridge@{}", std::process::id()),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        match client.connection().workflow_service().signal_workflow_execution(Request::new(req)).await {
            Ok(_) => signalled.push((r.workflow_id.clone(), r.run_id.clone())),
            // Closed between the list and the signal: deleted below.
            Err(e) if e.code() == temporalio_client::tonic::Code::NotFound => {}
            Err(e) => return Err(TemporalError::Call(e.to_string())),
        }
    }
    out.continued = signalled.len() as u32;
    let deadline = Instant::now() + wait;
    let mut closed: BTreeSet<(String, String)> = BTreeSet::new();
    for (w, r) in &signalled {
        // Polled: the server says when a run closed, not a notice.
        loop {
            if !running(client, namespace, w, r).await? {
                closed.insert((w.clone(), r.clone()));
                break;
            }
            if Instant::now() >= deadline {
                out.still_open += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let workflows: BTreeSet<&str> = runs.iter().map(|r| r.workflow_id.as_str()).collect();
    for w in workflows {
        let q = format!("WorkflowId = '{}'", w.replace('\'', "''"));
        for r in list(client, namespace, &q).await? {
            if !r.running {
                closed.insert((r.workflow_id, r.run_id));
            }
        }
    }
    for (w, r) in closed {
        let req = DeleteWorkflowExecutionRequest {
            namespace: namespace.to_owned(),
            workflow_execution: Some(WorkflowExecution { workflow_id: w, run_id: r }),
        };
        match client.connection().workflow_service().delete_workflow_execution(Request::new(req)).await {
            Ok(_) => out.deleted += 1,
            Err(e) if e.code() == temporalio_client::tonic::Code::NotFound => {}
            Err(e) => return Err(TemporalError::Call(e.to_string())),
        }
    }
    Ok(out)
}
