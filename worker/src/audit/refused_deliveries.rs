//! Refused deliveries, for auditors (`GET /v1/audit/refused-deliveries`,
//! `vbridge audit refused`): what the `rejected` chain holds, by time window,
//! code and claimed candidate, a page at a time. Every id in an item is the
//! delivery's own claim, never verified: an item says so (`claims_verified`),
//! and none of them is ever part of a candidate's timeline.

use crate::store::refused::{Cursor, Filter, Row};
use crate::store::{EventStore, StoreError};
use serde::Serialize;

/// Items per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 500;

/// The ids a refused delivery claimed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Claims {
    pub candidate_id: String,
    pub application_id: String,
    pub event_id: String,
}

/// One refused delivery, or one window of them.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `delivery`: one delivery; `window`: unauthenticated deliveries of one
    /// key aggregated over a window (`count` of them).
    pub source: String,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    /// The reject code (`invalid_signature`, `timestamp_out_of_tolerance`, ...).
    pub code: String,
    /// What the deliveries said they were about: unverified.
    pub claimed: Claims,
    /// Whether the claims came from a body whose signature verified (a
    /// delivery refused for its content); false for every unauthenticated one.
    pub claims_verified: bool,
    pub trace_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub items: Vec<Item>,
    /// Where the next page starts; none when this one is the last.
    pub next: Option<String>,
}

/// A time as given (RFC 3339, any offset) in the store's form (UTC, millis).
pub fn store_time(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

fn item(r: Row) -> Item {
    let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
    Item {
        last_seen: detail["last_seen"].as_str().unwrap_or(&r.first_seen).to_owned(),
        count: detail["count"].as_u64().unwrap_or(1),
        source: r.source,
        first_seen: r.first_seen,
        code: r.code,
        claimed: Claims { candidate_id: r.candidate_id, application_id: r.application_id, event_id: r.event_id },
        claims_verified: r.signature_valid,
        trace_id: r.trace_id,
    }
}

/// A page of refused deliveries in first-seen order.
pub async fn list(
    store: &dyn EventStore,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Listing, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let rows = store.refused_deliveries(filter, after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    let rows: Vec<Row> = rows.into_iter().take(limit as usize).collect();
    let next = if more { rows.last().map(|r| r.cursor().encode()) } else { None };
    Ok(Listing { items: rows.into_iter().map(item).collect(), next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_any_offset_and_kept_as_the_store_writes_them() {
        assert_eq!(store_time("2026-12-03T11:00:00+01:00").unwrap(), "2026-12-03T10:00:00.000Z");
        assert!(store_time("yesterday").is_err());
    }

    #[test]
    fn a_window_carries_its_count_and_last_seen() {
        let row = Row {
            source: "window".into(),
            seq: 1,
            first_seen: "2026-12-03T10:00:00.000Z".into(),
            code: "invalid_signature".into(),
            candidate_id: "victim".into(),
            application_id: "app".into(),
            event_id: String::new(),
            signature_valid: false,
            trace_id: "t".into(),
            detail: r#"{"count":40,"last_seen":"2026-12-03T10:00:09.000Z"}"#.into(),
        };
        let i = item(row);
        assert_eq!((i.count, i.last_seen.as_str(), i.claims_verified), (40, "2026-12-03T10:00:09.000Z", false));
    }
}
