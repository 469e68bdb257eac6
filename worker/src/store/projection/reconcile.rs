//! Reconciliation's projections: what the bridge wrote to each ATS check
//! (`ats_expected`, the merge of its `ats_write` records' fields) and the
//! reports of finished runs (`reconcile_runs`, from `reconciled` records).
//! The reconciliation itself is `crate::controls::reconcile`.

use std::collections::BTreeMap;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// One write's fields, to merge into the expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub application_id: String,
    pub check_id: String,
    pub candidate_id: String,
    pub fields: BTreeMap<String, String>,
}

/// The fields an `ats_write` record says were written (records from before
/// the fields were recorded give none).
pub fn written_of(r: &DecisionRecord) -> Option<Written> {
    if r.kind != RecordKind::AtsWrite || r.detail.is_empty() {
        return None;
    }
    let check = vbridge_activities::check_of_target(&r.write_targets)?;
    let fields: BTreeMap<String, String> = serde_json::from_str(&r.detail).ok()?;
    Some(Written {
        application_id: r.application_id.clone(),
        check_id: check.to_owned(),
        candidate_id: r.candidate_id.clone(),
        fields,
    })
}

/// The report a `reconciled` record carries: (run id, report JSON).
pub fn report_of(r: &DecisionRecord) -> Option<(String, String)> {
    (r.kind == RecordKind::Reconciled).then(|| (r.write_targets.clone(), r.detail.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_give_their_fields_and_reports_their_run() {
        let r = DecisionRecord {
            kind: RecordKind::AtsWrite.into(),
            application_id: "a".into(),
            candidate_id: "c".into(),
            write_targets: "application/a/verification-check/k".into(),
            detail: r#"{"verification_state":"verified"}"#.into(),
            ..Default::default()
        };
        let w = written_of(&r).unwrap();
        assert_eq!((w.check_id.as_str(), w.fields["verification_state"].as_str()), ("k", "verified"));
        assert_eq!(written_of(&DecisionRecord { detail: String::new(), ..r.clone() }), None);
        let rep = DecisionRecord {
            kind: RecordKind::Reconciled.into(),
            write_targets: "run-1".into(),
            detail: "{}".into(),
            ..r
        };
        assert_eq!(report_of(&rep), Some(("run-1".into(), "{}".into())));
    }
}
