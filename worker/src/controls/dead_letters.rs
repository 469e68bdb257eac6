//! Dead letters: ATS writes refused for good (a permanent 4xx), listed from
//! a projection of the audit log, and re-driven by a signal to their
//! verification, which sends each again with its own idempotency key.

pub use crate::store::projection::dead_letters::DeadLetter;
use serde::Serialize;

/// Most dead letters one listing returns.
pub const MAX_LIST: u32 = 500;

/// What a re-drive did: dead letters sent again, verifications signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retried {
    pub retried: usize,
    pub verifications: usize,
}

/// Re-drive the open dead letter `key`, or all of them (up to [`MAX_LIST`]):
/// a `retry_writes` signal to each verification concerned.
pub async fn retry(
    store: &dyn crate::store::EventStore,
    fw: &crate::temporal::forward::Forwarder,
    key: Option<&str>,
    actor: &str,
    reason: &str,
) -> Result<Retried, crate::temporal::human::MoveError> {
    use crate::temporal::human::{self, MoveError, Verification};
    use vbridge_core::domain::{ApplicationId, CandidateId};
    let letters = store.dead_letters(key, MAX_LIST).await.map_err(|e| MoveError::Store(e.to_string()))?;
    if let (Some(k), true) = (key, letters.is_empty()) {
        return Err(MoveError::Unknown(format!("dead letter {k}")));
    }
    let by_verification: std::collections::BTreeSet<(&str, &str)> =
        letters.iter().map(|d| (d.candidate_id.as_str(), d.application_id.as_str())).collect();
    for (c, a) in &by_verification {
        let v = Verification {
            candidate_id: CandidateId::parse(c).map_err(|e| MoveError::Store(e.to_string()))?,
            application_id: ApplicationId::parse(a).map_err(|e| MoveError::Store(e.to_string()))?,
        };
        let r = vbridge_proto::RetryWrites {
            idempotency_key: key.unwrap_or_default().to_owned(),
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        human::retry_writes(store, fw, &v, r).await?;
    }
    Ok(Retried { retried: letters.len(), verifications: by_verification.len() })
}
