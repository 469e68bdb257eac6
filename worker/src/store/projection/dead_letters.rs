//! Dead letters (`dead_letters`): ATS writes refused for good (a permanent
//! 4xx), opened by their `ats_failed` record and made moot by a later write
//! of the same target. Re-driven by `crate::controls::dead_letters`.

use serde::Serialize;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

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
    match RecordKind::of(&r.kind)? {
        RecordKind::AtsFailed if !r.idempotency_key.is_empty() => Some(Change::Failed(DeadLetter {
            idempotency_key: r.idempotency_key.clone(),
            candidate_id: r.candidate_id.clone(),
            application_id: r.application_id.clone(),
            event_id: r.event_id.clone(),
            target: r.write_targets.clone(),
            state: r.state_after.clone(),
            reason: r.reason.clone(),
            failed_at: r.recorded_at.clone(),
        })),
        RecordKind::AtsWrite if !r.write_targets.is_empty() => {
            Some(Change::Written { target: r.write_targets.clone(), at: r.recorded_at.clone() })
        }
        _ => None,
    }
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
