//! Erasures a webhook asks for (docs/privacy.md): Greenhouse's
//! `candidate_anonymized` and Persona's `inquiry.redacted`. The signature is
//! checked first (an unauthenticated body erases nothing); the store's part
//! (the key, the hiring rows, the chained `erased` record, whose id is the
//! delivery's key, so a retried delivery records once) is committed before
//! the 2xx; the histories are deleted after, in the background.

use super::{Intake, IntakeError, NotApplied, Receipt};
use crate::erasure::{self, ErasureError, Trigger};
use crate::store::DeliveryRecord;
use serde_json::json;
use vbridge_core::domain::{CandidateId, TraceId};

/// Why an erasure webhook erases nothing: the bridge holds nothing of the
/// candidate it names.
pub const UNKNOWN_CANDIDATE: &str = "unknown_candidate";

/// A verified webhook asking for a candidate's erasure.
pub(super) struct Requested {
    /// The delivery's key as stored (`"{source}:{event key}"`).
    pub key: String,
    pub source: &'static str,
    pub event: String,
    pub candidate: CandidateId,
    pub trigger: Trigger,
    /// `ats_anonymized` or `provider_redacted`.
    pub reason_code: &'static str,
}

impl Intake {
    pub(super) async fn erasure_requested(
        &self,
        rec: DeliveryRecord,
        r: Requested,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let req = erasure::Request {
            candidate: r.candidate.clone(),
            actor: r.source.to_owned(),
            reason_code: r.reason_code.to_owned(),
            note: String::new(),
            trigger: r.trigger,
            trace_id: trace_id.to_string(),
            request_id: r.key.clone(),
        };
        match erasure::erase(self.store.as_ref(), None, req).await {
            Ok(report) => {
                tracing::info!(source = r.source, event = %r.event, key_destroyed = report.store.key_destroyed, "erasure requested by webhook: erased");
                let client = self.temporal.as_ref().and_then(|(rx, ns)| rx.borrow().clone().map(|c| (c, ns.clone())));
                if let Some((client, namespace)) = client {
                    let (candidate, actor, trace) = (r.candidate, r.source, trace_id.to_string());
                    tokio::spawn(async move {
                        let _ = erasure::erase_histories(&client, &namespace, &candidate, actor, &trace).await;
                    });
                }
                Ok(Receipt::Accepted { event_id: r.key })
            }
            Err(ErasureError::Unknown(_)) => {
                let delivery = NotApplied {
                    key: Some(r.key),
                    source: r.source,
                    event: r.event.clone(),
                    occurred_at: None,
                    ids: None,
                    record: json!({"source": r.source, "event": r.event, "candidate_id": r.candidate.as_str(), "ignored": UNKNOWN_CANDIDATE}),
                    reason: UNKNOWN_CANDIDATE,
                };
                self.not_applied(rec, delivery, trace_id).await
            }
            Err(ErasureError::Store(e)) => {
                tracing::error!(error = %e, "erasure requested by webhook: the store failed");
                Err(IntakeError::Unavailable)
            }
            Err(ErasureError::Invalid(m)) => {
                tracing::error!(message = %m, "erasure requested by webhook: refused");
                Err(IntakeError::Unavailable)
            }
        }
    }
}
