//! Greenhouse's interviews, polled (docs/hiring.md, contract §8):
//! Greenhouse sends no web hook when an interview is booked, so a Temporal
//! Schedule starts `InterviewPoll` every `VBRIDGE_INTERVIEW_POLL_SECONDS`,
//! whose activity reads Harvest's interview listing and hands each booking
//! here: the same gate reading, commit and relay as Ashby's pushed
//! interviews ([`Intake::take_polled_interview`]). The poll's cursor is a
//! hiring row.

use super::Intake;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use vbridge_activities::interviews::{InterviewSink, Taken};
use vbridge_core::intake::ats::{AtsKind, Interview};

/// The intake as the interview poll's sink.
pub struct PolledInterviews {
    pub intake: Arc<Intake>,
    pub cursors: Arc<crate::store::outreach::OutreachStore>,
}

#[async_trait::async_trait]
impl InterviewSink for PolledInterviews {
    async fn cursor(&self) -> Result<Option<String>, String> {
        self.cursors.poll_cursor(AtsKind::Greenhouse.as_str()).await
    }

    async fn set_cursor(&self, cursor: &str) -> Result<(), String> {
        self.cursors.set_poll_cursor(AtsKind::Greenhouse.as_str(), cursor).await
    }

    async fn take(&self, interview: Interview, raw: &Value) -> Result<Taken, String> {
        self.intake.take_polled_interview(interview, raw).await.map_err(|e| e.to_string())
    }
}

/// The id of the interview poll's schedule on a task queue.
pub fn schedule_id(task_queue: &str) -> String {
    format!("vbridge-interview-poll-{task_queue}")
}

/// Create the poll's schedule, every `every`, unless it exists (to change
/// the period of an existing one: `temporal schedule delete` it, and the
/// next worker to start makes it again). A run still going when the next
/// is due makes that one skip (the overlap policy `Skip`).
pub async fn ensure_schedule(
    client: &temporalio_client::Client,
    task_queue: &str,
    every: Duration,
) -> Result<(), String> {
    use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleOverlapPolicy, ScheduleSpec};
    use vbridge_workflows::interview_poll::InterviewPoll;
    let id = schedule_id(task_queue);
    let opts = CreateScheduleOptions::builder()
        .action(ScheduleAction::start_workflow(
            InterviewPoll::run,
            "schedule".to_owned(),
            task_queue.to_owned(),
            format!("interview-poll-{task_queue}"),
        ))
        .spec(ScheduleSpec::from_interval(every))
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note("Greenhouse's interviews, polled from Harvest (docs/hiring.md)".to_owned())
        .build();
    match client.create_schedule(id.clone(), opts).await {
        Ok(_) => {
            tracing::info!(schedule = %id, every_s = every.as_secs(), "interview poll schedule created");
            Ok(())
        }
        Err(e) if e.to_string().to_lowercase().contains("already") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
