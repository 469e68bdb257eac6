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
/// narrowed by `and` (a visibility query of the operator's) when given. The
/// operator's query goes inside parentheses after the bridge's own filter, so
/// it may only narrow it: one that could close those parentheses, or leave a
/// string or a comment open over the rest, is refused.
pub fn open_verifications(task_queue: &str, and: Option<&str>) -> Result<String, BadQuery> {
    let base = format!(
        "WorkflowType = 'CandidateVerification' AND ExecutionStatus = 'Running' AND TaskQueue = '{}'",
        task_queue.replace('\'', "")
    );
    Ok(match and {
        Some(q) if !q.trim().is_empty() => format!("{base} AND ({})", narrowing(q)?),
        _ => base,
    })
}

/// Why an operator's visibility query was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the visibility query cannot be used to narrow the bridge's filter: {0}")]
pub struct BadQuery(&'static str);

/// The longest narrowing query taken.
pub const MAX_QUERY_LEN: usize = 2048;

/// Check that `q` stays inside the parentheses it is put in: outside its
/// quoted strings (single or double quotes; a quote inside one is written
/// twice or after a backslash), parentheses balance and never close more than
/// they opened, and there is no comment or statement end.
fn narrowing(q: &str) -> Result<&str, BadQuery> {
    if q.len() > MAX_QUERY_LEN {
        return Err(BadQuery("longer than 2048 bytes"));
    }
    if q.chars().any(|c| c.is_control() && c != ' ') {
        return Err(BadQuery("control characters"));
    }
    let mut depth = 0i32;
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => loop {
                match chars.next() {
                    None => return Err(BadQuery("a string is not closed")),
                    Some('\\') => {
                        chars.next();
                    }
                    Some(x) if x == c && chars.peek() == Some(&c) => {
                        chars.next();
                    }
                    Some(x) if x == c => break,
                    Some(_) => {}
                }
            },
            '`' => return Err(BadQuery("backquotes")),
            '(' => depth += 1,
            ')' if depth == 0 => return Err(BadQuery("a parenthesis closes the bridge's own filter")),
            ')' => depth -= 1,
            ';' => return Err(BadQuery("a statement end")),
            '-' if chars.peek() == Some(&'-') => return Err(BadQuery("a comment")),
            '/' if chars.peek() == Some(&'*') => return Err(BadQuery("a comment")),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(BadQuery("a parenthesis is not closed"));
    }
    Ok(q)
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
        let q = open_verifications("verification-bridge", Some("ApplicationId STARTS_WITH 'emea-'")).unwrap();
        assert!(q.starts_with("WorkflowType = 'CandidateVerification' AND ExecutionStatus = 'Running'"));
        assert!(q.ends_with("AND (ApplicationId STARTS_WITH 'emea-')"));
        assert!(
            !open_verifications("q'x", None).unwrap().contains("q'x"),
            "a quote cannot end the task queue's string"
        );
    }

    #[test]
    fn a_query_that_would_escape_the_bridge_s_filter_is_refused() {
        let ok = [
            "Region = 'emea'",
            "(Region = 'emea' OR Region = 'apac') AND CandidateId != 'x'",
            "ApplicationId = 'has ) and ( inside'",
            "CandidateId = 'it''s'",
            "CandidateId = \"say \\\" ) hi\"",
            "ApplicationId STARTS_WITH 'a-b'",
        ];
        for q in ok {
            assert_eq!(narrowing(q), Ok(q), "{q}");
        }
        let refused = [
            ("x = 1) OR (true", "closes"),
            ("true) OR WorkflowType = 'Other' OR (true", "closes"),
            ("(x = 1", "not closed"),
            ("x = 'open", "string"),
            ("x = 1 -- ) trailing", "comment"),
            ("x = 1 /* )", "comment"),
            ("x = 1; DROP", "statement"),
            ("x = `a`", "backquotes"),
            ("x = 1\n) OR (true", "control"),
        ];
        for (q, why) in refused {
            let e = narrowing(q).expect_err(q);
            assert!(e.to_string().contains(why), "{q}: {e}");
        }
        assert!(narrowing(&"a".repeat(MAX_QUERY_LEN + 1)).is_err());
        assert!(open_verifications("vq", Some("x) OR (true")).is_err());
    }
}
