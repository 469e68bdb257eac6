//! The interview-scheduling gate's projection (`gate_items`): one row per
//! application, its verification's state and ATS sync, moved by the
//! records that change them. The gate itself is `crate::controls::gate`.

use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// One application's row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Row {
    pub application_id: String,
    pub candidate_id: String,
    pub state: String,
    pub ats_sync: String,
    /// An open review item flagged `provider_reversal` holds the gate.
    pub reversal_held: bool,
}

/// How an audit record changes an application's row.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The state moved (a write is now owed).
    State { application_id: String, candidate_id: String, state: String, as_of: String },
    /// A write of `written` (a state) went through: synced if still the state.
    Written { application_id: String, written: String },
    /// The ATS write is owed again, or refused for good.
    Sync { application_id: String, ats_sync: String },
}

pub fn change_of(r: &DecisionRecord) -> Option<Change> {
    let application_id = r.application_id.clone();
    if application_id.is_empty() {
        return None;
    }
    match RecordKind::of(&r.kind)? {
        RecordKind::Applied | RecordKind::ReviewDecided | RecordKind::Override => Some(Change::State {
            application_id,
            candidate_id: r.candidate_id.clone(),
            state: r.state_after.clone(),
            as_of: r.recorded_at.clone(),
        }),
        RecordKind::AtsWrite => Some(Change::Written { application_id, written: r.state_after.clone() }),
        RecordKind::AtsDeferred => Some(Change::Sync { application_id, ats_sync: "pending-sync".into() }),
        RecordKind::AtsFailed => Some(Change::Sync { application_id, ats_sync: "failed".into() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_move_the_row() {
        let rec = |kind: &str, after: &str| DecisionRecord {
            kind: kind.into(),
            application_id: "a".into(),
            candidate_id: "c".into(),
            state_after: after.into(),
            ..Default::default()
        };
        assert!(matches!(change_of(&rec("applied", "verified")), Some(Change::State { .. })));
        assert!(matches!(change_of(&rec("override", "failed")), Some(Change::State { .. })));
        assert!(matches!(change_of(&rec("ats_write", "verified")), Some(Change::Written { .. })));
        assert!(matches!(change_of(&rec("ats_failed", "")), Some(Change::Sync { .. })));
        assert_eq!(change_of(&rec("skipped", "")), None);
        assert_eq!(change_of(&DecisionRecord { kind: "applied".into(), ..Default::default() }), None);
    }
}
