//! Dead letters: ATS writes refused for good (a permanent 4xx), listed from
//! a projection of the audit log, and re-driven by a signal to their
//! verification, which sends each again with its own idempotency key.

use serde::Serialize;
use vbridge_proto::DecisionRecord;

/// Most dead letters one listing returns.
pub const MAX_LIST: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub idempotency_key: String,
    pub candidate_id: String,
    pub application_id: String,
    pub event_id: String,
    pub target: String,
    pub state: String,
    pub reason: String,
    pub failed_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Failed(DeadLetter),
    /// A write of `target` went through at `at`: letters failed before are moot.
    Written {
        target: String,
        at: String,
    },
}

pub fn change_of(r: &DecisionRecord) -> Option<Change> {
    match r.kind.as_str() {
        "ats_failed" if !r.idempotency_key.is_empty() => Some(Change::Failed(DeadLetter {
            idempotency_key: r.idempotency_key.clone(),
            candidate_id: r.candidate_id.clone(),
            application_id: r.application_id.clone(),
            event_id: r.event_id.clone(),
            target: r.write_targets.clone(),
            state: r.state_after.clone(),
            reason: r.reason.clone(),
            failed_at: r.recorded_at.clone(),
        })),
        "ats_write" if !r.write_targets.is_empty() => {
            Some(Change::Written { target: r.write_targets.clone(), at: r.recorded_at.clone() })
        }
        _ => None,
    }
}

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
    use vbridge_workflows::domain::{ApplicationId, CandidateId};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_open_letters_and_writes_close_them() {
        let rec = |kind: &str, key: &str| DecisionRecord {
            kind: kind.into(),
            idempotency_key: key.into(),
            write_targets: "application/a/verification-check/c".into(),
            ..Default::default()
        };
        assert!(matches!(change_of(&rec("ats_failed", "k")), Some(Change::Failed(d)) if d.idempotency_key == "k"));
        assert_eq!(change_of(&rec("ats_failed", "")), None, "runs before the key was recorded");
        assert!(matches!(change_of(&rec("ats_write", "")), Some(Change::Written { .. })));
        assert_eq!(change_of(&rec("applied", "k")), None);
    }
}
