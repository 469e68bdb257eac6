//! How an audit record changes the review queue: a pure function of the
//! record. `review_routed` and `escalated` records carry the whole item (in
//! `detail`); a record that moves the state out of `needs_review` closes it.

use vbridge_proto::{DecisionRecord, ReviewItem};

/// One change to the queue. `as_of`: the record's workflow time; the store
/// never lets an older change overwrite a newer one.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert { candidate_id: String, application_id: String, item: ReviewItem, as_of: String },
    Close { candidate_id: String, application_id: String, as_of: String },
}

/// The state the queue serves (needs_review, by the policy's routing).
const IN_REVIEW: &str = "needs_review";

pub fn change_of(r: &DecisionRecord) -> Option<Change> {
    let (candidate_id, application_id, as_of) =
        (r.candidate_id.clone(), r.application_id.clone(), r.recorded_at.clone());
    match r.kind.as_str() {
        "review_routed" | "escalated" => {
            let item: ReviewItem = serde_json::from_str(&r.detail).ok()?;
            Some(Change::Upsert { candidate_id, application_id, item, as_of })
        }
        "applied" | "review_decided" | "override" if r.state_before == IN_REVIEW && r.state_after != IN_REVIEW => {
            Some(Change::Close { candidate_id, application_id, as_of })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, before: &str, after: &str, detail: &str) -> DecisionRecord {
        DecisionRecord {
            kind: kind.into(),
            candidate_id: "c".into(),
            application_id: "a".into(),
            recorded_at: "2026-01-01T00:00:00.000Z".into(),
            state_before: before.into(),
            state_after: after.into(),
            detail: detail.into(),
            ..Default::default()
        }
    }

    #[test]
    fn routing_and_escalation_upsert_leaving_review_closes() {
        let item = ReviewItem { queue: "manual-review".into(), escalations: 2, ..Default::default() };
        let detail = serde_json::to_string(&item).unwrap();
        for kind in ["review_routed", "escalated"] {
            match change_of(&rec(kind, IN_REVIEW, IN_REVIEW, &detail)) {
                Some(Change::Upsert { item: got, .. }) => assert_eq!(got, item),
                other => panic!("{kind}: {other:?}"),
            }
        }
        for kind in ["applied", "review_decided", "override"] {
            assert!(matches!(change_of(&rec(kind, IN_REVIEW, "verified", "")), Some(Change::Close { .. })), "{kind}");
        }
        assert_eq!(change_of(&rec("override", "verified", IN_REVIEW, "")), None, "its review_routed opens the item");
        assert_eq!(change_of(&rec("applied", "pending", "verified", "")), None);
        assert_eq!(change_of(&rec("review_routed", IN_REVIEW, IN_REVIEW, "not json")), None);
    }
}
