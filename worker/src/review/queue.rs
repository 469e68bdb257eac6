//! The review queue as served: the item as the API and the CLI show it
//! (overdue flag, time left). Its rows, filters and keyset cursor are the
//! store's (`crate::store::projection::review`).

pub use crate::store::projection::review::{Cursor, Filter, Row};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Items per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// One item as served.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Item {
    pub candidate_id: String,
    pub application_id: String,
    pub queue: String,
    pub reason_codes: Vec<String>,
    pub evidence_pack_url: Option<String>,
    pub routed_at: String,
    pub due_at: String,
    /// Past its SLA: escalated at least once, or due now.
    pub overdue: bool,
    pub escalations: i64,
    /// Seconds until due (negative: overdue by that much).
    pub seconds_left: i64,
    pub flags: Vec<String>,
    pub trace_id: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Listing {
    pub items: Vec<Item>,
    /// The cursor of the next page, when there may be one.
    pub next: Option<String>,
}

impl Item {
    /// The SLA as a person reads it (the console's countdown renders the
    /// same text and ticks it).
    pub fn countdown(&self) -> String {
        let a = self.seconds_left.unsigned_abs();
        let (h, m, s) = (a / 3600, (a % 3600) / 60, a % 60);
        let mut span = String::new();
        if h > 0 {
            span.push_str(&format!("{h}h "));
        }
        if h > 0 || m > 0 {
            span.push_str(&format!("{m}m "));
        }
        span.push_str(&format!("{s}s"));
        if self.escalations > 0 {
            let next = if self.seconds_left > 0 { span } else { "0s".into() };
            return format!("overdue (escalated {}x), next escalation in {next}", self.escalations);
        }
        if self.seconds_left > 0 { format!("due in {span}") } else { format!("overdue by {span}") }
    }
}

impl Item {
    /// A stored row as served at `now`.
    pub fn of(row: Row, now: DateTime<Utc>) -> Item {
        let due = DateTime::parse_from_rfc3339(&row.due_at).map(|t| t.with_timezone(&Utc)).unwrap_or(now);
        let seconds_left = (due - now).num_seconds();
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        Item {
            overdue: row.escalations > 0 || due <= now,
            reason_codes: list(&row.reason_codes),
            flags: list(&row.flags),
            evidence_pack_url: Some(row.evidence_pack_url).filter(|u| !u.is_empty()),
            candidate_id: row.candidate_id,
            application_id: row.application_id,
            queue: row.queue,
            routed_at: row.routed_at,
            due_at: row.due_at,
            escalations: row.escalations,
            seconds_left,
            trace_id: row.trace_id,
        }
    }
}

/// "now" as the queue compares it with `due_at` (RFC 3339, milliseconds, Z).
pub fn now_key(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_say_overdue_and_time_left() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap().with_timezone(&Utc);
        let row = |due: &str, esc| Row {
            candidate_id: "c".into(),
            application_id: "a".into(),
            queue: "q".into(),
            reason_codes: "[\"doc-anomaly\"]".into(),
            evidence_pack_url: String::new(),
            routed_at: String::new(),
            due_at: due.into(),
            escalations: esc,
            flags: "[]".into(),
            trace_id: String::new(),
        };
        let i = Item::of(row("2026-01-01T13:00:00.000Z", 0), now);
        assert_eq!((i.overdue, i.seconds_left, i.evidence_pack_url), (false, 3600, None));
        assert_eq!(i.reason_codes, vec!["doc-anomaly"]);
        let late = Item::of(row("2026-01-01T11:59:00.000Z", 0), now);
        assert_eq!((late.overdue, late.seconds_left), (true, -60));
        assert!(Item::of(row("2026-01-01T13:00:00.000Z", 1), now).overdue, "escalated: overdue though due again later");
        assert_eq!(Item::of(row("2026-01-01T13:01:05.000Z", 0), now).countdown(), "due in 1h 1m 5s");
        assert_eq!(late.countdown(), "overdue by 1m 0s");
        assert_eq!(
            Item::of(row("2026-01-01T12:00:30.000Z", 2), now).countdown(),
            "overdue (escalated 2x), next escalation in 30s"
        );
    }
}
