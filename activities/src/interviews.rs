//! Interviews polled from an ATS that pushes none (Greenhouse: Harvest's
//! interview listing), run by the `InterviewPoll` workflow that a Temporal
//! Schedule starts. One run reads every page changed since the cursor and
//! hands each booking to the [`InterviewSink`] (the worker's intake: the
//! same gate reading, commit and relay as Ashby's pushed interviews).
//!
//! Crash points: the cursor moves only after every page is taken, to the
//! newest `updated_at` seen, less nothing; each run reads from the cursor
//! less [`OVERLAP`] (a change committed at the ATS just before the cursor's
//! time but listed late). Whatever is read twice is a duplicate by its key,
//! so a worker killed mid-run loses nothing and applies nothing twice.

use std::sync::Arc;
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use vbridge_activity_defs::{INTERVIEW_POLL_FAILED, marker};
use vbridge_core::intake::ats::Interview;
use vbridge_core::intake::ats::greenhouse::{polled_interview, polled_updated_at};

use crate::connector::Connector;

/// Read again behind the cursor on each run.
pub const OVERLAP: Duration = Duration::from_secs(300);
/// How far back the first run reads (no cursor yet).
pub const FIRST_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// Pages one run reads at most (500 interviews each); the rest is the next
/// run's, from the cursor of what was read.
pub const MAX_PAGES: usize = 200;

/// What became of one polled booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Accepted,
    Duplicate,
    /// The bridge verifies no one for its application: not recorded (the
    /// listing is the whole account's, not a delivery anyone sent).
    UnknownApplication,
}

/// Where polled bookings go, and the poll's cursor.
#[async_trait::async_trait]
pub trait InterviewSink: Send + Sync + 'static {
    /// The newest `updated_at` a finished run read (RFC 3339), if any.
    async fn cursor(&self) -> Result<Option<String>, String>;
    async fn set_cursor(&self, cursor: &str) -> Result<(), String>;
    /// Take one booking like a pushed one (`raw`: the listing's item).
    async fn take(&self, interview: Interview, raw: &serde_json::Value) -> Result<Taken, String>;
}

/// What a run did (its result, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollReport {
    pub requested_by: String,
    /// The ATS polls nothing (not Greenhouse): the run did nothing.
    pub not_polled: bool,
    pub since: String,
    pub pages: u32,
    pub listed: u32,
    pub accepted: u32,
    pub duplicates: u32,
    pub unknown_application: u32,
    /// Listed without a booked time, or without ids.
    pub not_bookings: u32,
    /// The cursor after the run.
    pub cursor: String,
    /// More pages than one run reads: the next run goes on.
    pub truncated: bool,
}

pub struct InterviewActivities {
    pub connector: Arc<dyn Connector>,
    pub sink: Arc<dyn InterviewSink>,
}

fn failed(what: String) -> ActivityError {
    tracing::warn!(error = %what, "interview poll failed; retried");
    ActivityError::application(ApplicationFailure::builder(what).type_name(INTERVIEW_POLL_FAILED.to_owned()).build())
}

/// Where a run starts: the cursor less [`OVERLAP`], else [`FIRST_LOOKBACK`]
/// before `now`.
pub fn since(cursor: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> String {
    let back = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
    let from = cursor
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&chrono::Utc) - back(OVERLAP))
        .unwrap_or_else(|| now - back(FIRST_LOOKBACK));
    from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl InterviewActivities {
    async fn run(&self, requested_by: String) -> Result<PollReport, String> {
        let cursor = self.sink.cursor().await?;
        let mut report = PollReport {
            requested_by,
            since: since(cursor.as_deref(), chrono::Utc::now()),
            cursor: cursor.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut newest = cursor.as_deref().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
        let mut next: Option<String> = None;
        loop {
            let Some(page) = self.connector.interviews(&report.since, next.as_deref()).await? else {
                report.not_polled = true;
                return Ok(report);
            };
            report.pages += 1;
            for item in &page.items {
                report.listed += 1;
                if let Some(t) = polled_updated_at(item) {
                    newest = newest.max(Some(t));
                }
                let Some(interview) = polled_interview(item) else {
                    report.not_bookings += 1;
                    continue;
                };
                match self.sink.take(interview, item).await? {
                    Taken::Accepted => report.accepted += 1,
                    Taken::Duplicate => report.duplicates += 1,
                    Taken::UnknownApplication => report.unknown_application += 1,
                }
            }
            next = page.next;
            if next.is_none() {
                break;
            }
            if report.pages as usize >= MAX_PAGES {
                report.truncated = true;
                break;
            }
        }
        if let Some(t) = newest {
            report.cursor = t.to_rfc3339();
            self.sink.set_cursor(&report.cursor).await?;
        }
        Ok(report)
    }
}

#[activities]
impl InterviewActivities {
    #[activity(definition = marker::Poll)]
    #[tracing::instrument(skip_all, fields(requested_by = %requested_by))]
    pub async fn poll(self: Arc<Self>, ctx: ActivityContext, requested_by: String) -> Result<String, ActivityError> {
        // Heartbeats each second: a worker killed mid-run is retried in seconds.
        let report = crate::hiring::beating(&ctx, self.run(requested_by)).await.map_err(failed)?;
        tracing::info!(
            since = %report.since,
            pages = report.pages,
            listed = report.listed,
            accepted = report.accepted,
            duplicates = report.duplicates,
            unknown_application = report.unknown_application,
            cursor = %report.cursor,
            "interviews polled"
        );
        Ok(serde_json::to_string(&report).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_from_the_cursor_less_the_overlap_or_a_week_back_at_first() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z").unwrap().to_utc();
        assert_eq!(since(Some("2026-12-03T11:00:00+00:00"), now), "2026-12-03T10:55:00Z");
        assert_eq!(since(None, now), "2026-11-26T12:00:00Z");
        assert_eq!(since(Some("not a time"), now), "2026-11-26T12:00:00Z");
    }
}
