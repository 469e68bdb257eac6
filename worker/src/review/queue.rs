//! Reading the review queue: filters, keyset paging in due order, and the
//! item as the API and the CLI show it (overdue flag, time left).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Items per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

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

impl Row {
    pub fn item(self, now: DateTime<Utc>) -> Item {
        let due = DateTime::parse_from_rfc3339(&self.due_at).map(|t| t.with_timezone(&Utc)).unwrap_or(now);
        let seconds_left = (due - now).num_seconds();
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        Item {
            overdue: self.escalations > 0 || due <= now,
            reason_codes: list(&self.reason_codes),
            flags: list(&self.flags),
            evidence_pack_url: Some(self.evidence_pack_url).filter(|u| !u.is_empty()),
            candidate_id: self.candidate_id,
            application_id: self.application_id,
            queue: self.queue,
            routed_at: self.routed_at,
            due_at: self.due_at,
            escalations: self.escalations,
            seconds_left,
            trace_id: self.trace_id,
        }
    }

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

/// "now" as the queue compares it with `due_at` (RFC 3339, milliseconds, Z).
pub fn now_key(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        let i = row("2026-01-01T13:00:00.000Z", 0).item(now);
        assert_eq!((i.overdue, i.seconds_left, i.evidence_pack_url), (false, 3600, None));
        assert_eq!(i.reason_codes, vec!["doc-anomaly"]);
        let late = row("2026-01-01T11:59:00.000Z", 0).item(now);
        assert_eq!((late.overdue, late.seconds_left), (true, -60));
        assert!(row("2026-01-01T13:00:00.000Z", 1).item(now).overdue, "escalated: overdue though due again later");
        assert_eq!(row("2026-01-01T13:01:05.000Z", 0).item(now).countdown(), "due in 1h 1m 5s");
        assert_eq!(late.countdown(), "overdue by 1m 0s");
        assert_eq!(
            row("2026-01-01T12:00:30.000Z", 2).item(now).countdown(),
            "overdue (escalated 2x), next escalation in 30s"
        );
    }

    #[test]
    fn reason_code_patterns_escape_like_wildcards() {
        assert_eq!(reason_code_pattern("doc-anomaly"), "%\"doc-anomaly\"%");
        assert_eq!(reason_code_pattern("a%b_c"), "%\"a\\%b\\_c\"%");
    }
}
