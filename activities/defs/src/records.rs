//! Records that the workflow and the activities both build, so that the
//! entry a workflow keeps and the record an activity logs are the same.

use vbridge_core::record::RecordKind;
use vbridge_proto::{AtsWriteRequest, AtsWriteResult, DecisionRecord, TimelineEntry};

/// The timeline entry of a write the ATS took. The workflow keeps it; the
/// activity logs the same entry when the workflow asks it to.
pub fn written_entry(req: &AtsWriteRequest, done: &AtsWriteResult, at: String) -> TimelineEntry {
    let mut reason = format!("written with HTTP {}", done.http_status);
    if req.superseded > 0 {
        reason.push_str(&format!("; carries the latest state of {} queued write(s) it replaced", req.superseded));
    }
    TimelineEntry {
        at,
        kind: RecordKind::AtsWrite.into(),
        event_id: req.event_id.clone(),
        state_after: req.fields.get("verification_state").cloned().unwrap_or_default(),
        reason,
        trace_id: req.trace_id.clone(),
        attempt: done.attempt,
        target: done.target.clone(),
        record_id: req.write_record_id.clone(),
        // The fields written: the reconciliation's expectation is their merge.
        detail: serde_json::to_string(&req.fields).unwrap_or_default(),
        ..Default::default()
    }
}

/// The audit record of a timeline entry of the workflow of (candidate, application).
pub fn entry_record(t: &TimelineEntry, record_id: String, candidate_id: &str, application_id: &str) -> DecisionRecord {
    DecisionRecord {
        record_id,
        recorded_at: t.at.clone(),
        kind: t.kind.clone(),
        candidate_id: candidate_id.to_owned(),
        application_id: application_id.to_owned(),
        event_id: t.event_id.clone(),
        event_type: t.event_type.clone(),
        occurred_at: t.occurred_at.clone(),
        received_at: t.received_at.clone(),
        idempotency_key: t.idempotency_key.clone(),
        state_before: t.state_before.clone(),
        state_after: t.state_after.clone(),
        reason: t.reason.clone(),
        write_targets: t.target.clone(),
        delivery_attempt: if t.attempt > 0 { t.attempt } else { t.delivery_attempt },
        processing_result: t.kind.clone(),
        trace_id: t.trace_id.clone(),
        override_actor: t.override_actor.clone(),
        override_reason_code: t.override_reason_code.clone(),
        override_timestamp: t.override_timestamp.clone(),
        detail: t.detail.clone(),
    }
}

/// The ATS object a write targets, as recorded in the timeline.
pub fn write_target(req: &AtsWriteRequest) -> String {
    format!("application/{}/verification-check/{}", req.application_id, req.verification_check_id)
}

/// The verification check a recorded [`write_target`] names.
pub fn check_of_target(target: &str) -> Option<&str> {
    target.rsplit_once("/verification-check/").map(|(_, c)| c).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_target_names_its_check_back() {
        let req = AtsWriteRequest {
            application_id: "app-1".into(),
            verification_check_id: "chk-2".into(),
            ..Default::default()
        };
        let target = write_target(&req);
        assert_eq!(target, "application/app-1/verification-check/chk-2");
        assert_eq!(check_of_target(&target), Some("chk-2"));
        for none in ["", "application/app-1", "application/app-1/verification-check/"] {
            assert_eq!(check_of_target(none), None, "{none:?} names no check");
        }
    }

    #[test]
    fn a_written_entry_says_how_many_queued_writes_it_replaced() {
        let mut req = AtsWriteRequest { event_id: "e1".into(), write_record_id: "dec-1".into(), ..Default::default() };
        req.fields.insert("verification_state".into(), "verified".into());
        let done = AtsWriteResult { http_status: 200, attempt: 2, target: "t".into(), ..Default::default() };
        let entry = written_entry(&req, &done, "now".into());
        assert_eq!((entry.kind.as_str(), entry.state_after.as_str()), ("ats_write", "verified"));
        assert_eq!(
            (entry.reason.as_str(), entry.attempt, entry.record_id.as_str()),
            ("written with HTTP 200", 2, "dec-1")
        );
        req.superseded = 3;
        let merged = written_entry(&req, &done, "now".into());
        assert!(
            merged.reason.ends_with("carries the latest state of 3 queued write(s) it replaced"),
            "{}",
            merged.reason
        );
    }

    #[test]
    fn an_entry_record_takes_the_attempt_when_there_is_one_else_the_delivery() {
        let t = TimelineEntry { kind: "applied".into(), delivery_attempt: 4, ..Default::default() };
        let r = entry_record(&t, "dec-x".into(), "c", "a");
        assert_eq!((r.record_id.as_str(), r.processing_result.as_str(), r.delivery_attempt), ("dec-x", "applied", 4));
        let r = entry_record(&TimelineEntry { attempt: 2, ..t }, "dec-y".into(), "c", "a");
        assert_eq!(r.delivery_attempt, 2);
    }
}
