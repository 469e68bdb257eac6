//! The manual-review queue's projection (`review_items`): how an audit
//! record changes it (a pure function of the record: `review_routed` and
//! `escalated` records carry the whole item in `detail`; a record that moves
//! the state out of `needs_review` closes it), and how it is read back
//! (filters, keyset paging in due order). `crate::review` serves it.

use vbridge_core::record::RecordKind;
use vbridge_proto::{DecisionRecord, ReviewItem};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub queue: Option<String>,
    /// Only overdue items (true) or only items within their SLA (false).
    pub overdue: Option<bool>,
    pub reason_code: Option<String>,
}

/// Where a page starts: after this (due_at, candidate, application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub due_at: String,
    pub candidate_id: String,
    pub application_id: String,
}

const SEP: char = '\u{1f}';

impl Cursor {
    /// Opaque to clients: hex of the three keys.
    pub fn encode(&self) -> String {
        hex::encode(format!("{}{SEP}{}{SEP}{}", self.due_at, self.candidate_id, self.application_id))
    }

    pub fn parse(s: &str) -> Result<Cursor, String> {
        let bad = || "the cursor is not one this API handed out".to_owned();
        let text = hex::decode(s).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
        let mut parts = text.split(SEP);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(d), Some(c), Some(a), None) => {
                Ok(Cursor { due_at: d.to_owned(), candidate_id: c.to_owned(), application_id: a.to_owned() })
            }
            _ => Err(bad()),
        }
    }
}

/// One open item as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub candidate_id: String,
    pub application_id: String,
    pub queue: String,
    pub reason_codes: String,
    pub evidence_pack_url: String,
    pub routed_at: String,
    pub due_at: String,
    pub escalations: i64,
    pub flags: String,
    pub trace_id: String,
}

impl Row {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            due_at: self.due_at.clone(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
        }
    }
}

/// The SQL `LIKE` pattern that finds a code in a stored JSON array.
pub fn reason_code_pattern(code: &str) -> String {
    let quoted = serde_json::to_string(code).expect("a string serializes");
    let escaped: String = quoted
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

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
    match RecordKind::of(&r.kind)? {
        RecordKind::ReviewRouted | RecordKind::Escalated => {
            let item: ReviewItem = serde_json::from_str(&r.detail).ok()?;
            Some(Change::Upsert { candidate_id, application_id, item, as_of })
        }
        RecordKind::Applied if r.state_before == IN_REVIEW && r.state_after != IN_REVIEW => {
            Some(Change::Close { candidate_id, application_id, as_of })
        }
        // A human move decides the open item, whatever the state: a
        // provider's reversal is held at `verified` or `failed`, and an
        // admin's override or confirmation closes it. A move into review
        // is followed by its own `review_routed`, which opens the item again.
        RecordKind::ReviewDecided | RecordKind::Override => Some(Change::Close { candidate_id, application_id, as_of }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c =
            Cursor { due_at: "2026-01-01T00:00:00.000Z".into(), candidate_id: "c".into(), application_id: "a".into() };
        assert_eq!(Cursor::parse(&c.encode()), Ok(c));
        assert!(Cursor::parse("zz").is_err());
        assert!(Cursor::parse(&hex::encode("only-one")).is_err());
    }

    #[test]
    fn reason_code_patterns_escape_like_wildcards() {
        assert_eq!(reason_code_pattern("doc-anomaly"), "%\"doc-anomaly\"%");
        assert_eq!(reason_code_pattern("a%b_c"), "%\"a\\%b\\_c\"%");
    }

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
        // A human move closes whatever is open (a held reversal stays in
        // its state); a move into review is opened again by its review_routed.
        for (before, after) in [("verified", "failed"), ("verified", "verified"), ("verified", IN_REVIEW)] {
            assert!(matches!(change_of(&rec("override", before, after, "")), Some(Change::Close { .. })), "{after}");
        }
        assert_eq!(change_of(&rec("provider_reversal", "verified", "verified", "")), None);
        assert_eq!(change_of(&rec("applied", "pending", "verified", "")), None);
        assert_eq!(change_of(&rec("review_routed", IN_REVIEW, IN_REVIEW, "not json")), None);
    }
}
