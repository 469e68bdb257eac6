//! Ashby's webhooks.
//!
//! Signature: `Ashby-Signature: sha256=<hex>`, the hex HMAC-SHA256 of the
//! raw body keyed with the webhook's secret token; the part before `=` names
//! the algorithm. No timestamp.
//! <https://developers.ashbyhq.com/docs/authenticating-webhooks>,
//! <https://developers.ashbyhq.com/docs/setting-up-webhooks>.
//!
//! Body: `{"action", "data": {…}}`; for `candidateStageChange` (also sent
//! when a candidate is hired) `data.application` is the application:
//! `{"id", "createdAt", "updatedAt", "status", "candidate": {"id", "name",
//! "primaryEmailAddress": {"value", "type", "isPrimary"}, …},
//! "currentInterviewStage": {"id", "title", "type", …}, "job": {"id",
//! "title", "locationId", "departmentId"}, "hiringTeam": [{"userId",
//! "email", "firstName", "lastName", "role"}], …}`.
//! <https://developers.ashbyhq.com/reference/candidatestagechangewebhook>
//! (its schema is the `pushToHRIS` application's). Setting a webhook up
//! sends `{"action": "ping", "data": {"webhookActionType": "ping"}}`
//! (<https://developers.ashbyhq.com/reference/pingwebhook>): ignored.
//!
//! The dedup key is the body's top-level `webhookActionId` (one change may
//! arrive as several actions sharing it: the stage change, the
//! application's update, a hire). Not confirmed in Ashby's published
//! payload schemas, which do not list it; the bridge's contract names it.
//! Also not in the documented `application.job`: a location's name and a
//! requisition id. The job's `locationName` or `location.name`, and its
//! `customRequisitionId` (the Job object's field in `jobCreate`) or
//! `requisitionId`, are read when sent; otherwise they are `None`.

use super::{AtsAdapter, AtsKind, AtsMapping, MAX_SCANNED, Read, email, id_text, text, time};
use crate::intake::providers::{Alg, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{Secret, SignatureError};
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "Ashby-Signature";
/// The actions the bridge acts on: a stage change, and an interview
/// schedule created or updated (`data.interviewSchedule`: `{"id",
/// "applicationId", "candidateId"?, "status": "Scheduled" | "Cancelled" |
/// "Completed" | "Rescheduling", "interviewEvents": [{"id", "startTime",
/// "endTime", …}], "updatedAt"}`;
/// <https://developers.ashbyhq.com/reference/interviewscheduleupdatewebhook>).
pub const STAGE_CHANGE: &str = "candidateStageChange";
pub const SCHEDULE_CREATE: &str = "interviewScheduleCreate";
pub const SCHEDULE_UPDATE: &str = "interviewScheduleUpdate";

pub struct Ashby {
    secrets: Vec<Secret>,
}

impl Ashby {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Ashby { secrets }
    }
}

/// The digest of `sha256=<hex>`, or nothing.
fn digest(value: &str) -> Option<Vec<u8>> {
    let (alg, hex) = value.trim().split_once('=')?;
    alg.eq_ignore_ascii_case("sha256").then(|| hex_digest(hex, Alg::Sha256)).flatten()
}

/// The hiring team's recruiter's address (`role` "Recruiter").
fn recruiter_email(app: &Value) -> Option<super::Email> {
    let team = app.get("hiringTeam")?.as_array()?;
    team.iter()
        .take(MAX_SCANNED)
        .filter(|m| m.get("role").and_then(Value::as_str).is_some_and(|r| r.trim().eq_ignore_ascii_case("recruiter")))
        .find_map(|m| email(m.get("email")))
}

impl AtsAdapter for Ashby {
    fn kind(&self) -> AtsKind {
        AtsKind::Ashby
    }

    fn verify<'h>(&self, header: &dyn Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<(), SignatureError> {
        let value = bounded(header, &[SIGNATURE_HEADER])?;
        let candidates: Vec<Vec<u8>> = digest(value).into_iter().collect();
        if any_matches(Alg::Sha256, &self.secrets, &[body], &candidates) {
            Ok(())
        } else {
            Err(SignatureError::InvalidSignature)
        }
    }

    fn map<'h>(&self, _header: &dyn Fn(&str) -> Option<&'h str>, body: &Value) -> AtsMapping {
        let action = str_at(body, "/action").unwrap_or("");
        if action == SCHEDULE_CREATE || action == SCHEDULE_UPDATE {
            return interview(action, body);
        }
        let null = Value::Null;
        let app = body.pointer("/data/application").unwrap_or(&null);
        let job = app.get("job").unwrap_or(&null);
        Read {
            ats: AtsKind::Ashby,
            ats_event: super::event_name(action),
            used: action == STAGE_CHANGE,
            key: id_text(body.get("webhookActionId")),
            candidate_id: id_text(app.pointer("/candidate/id")),
            application_id: id_text(app.get("id")),
            stage: text(app.pointer("/currentInterviewStage/title")),
            role: text(job.get("title")),
            region: text(job.get("locationName")).or_else(|| text(job.pointer("/location/name"))),
            requisition: text(job.get("customRequisitionId")).or_else(|| text(job.get("requisitionId"))),
            email: email(app.pointer("/candidate/primaryEmailAddress/value")),
            recruiter_email: recruiter_email(app),
            applied_at: time(app.get("createdAt")),
            occurred_at: time(app.get("updatedAt")),
        }
        .settle()
    }
}

/// An interview schedule: the earliest of its events' start times (the
/// first [`MAX_SCANNED`]), cancelled when its status says so.
fn interview(action: &str, body: &Value) -> AtsMapping {
    let null = Value::Null;
    let schedule = body.pointer("/data/interviewSchedule").unwrap_or(&null);
    let starts_at = schedule
        .get("interviewEvents")
        .and_then(Value::as_array)
        .map(|events| events.iter().take(MAX_SCANNED).filter_map(|e| time(e.get("startTime"))).min())
        .unwrap_or_default();
    let status = str_at(schedule, "/status").unwrap_or("");
    super::read_interview(super::InterviewRead {
        ats: AtsKind::Ashby,
        ats_event: super::event_name(action),
        key: id_text(body.get("webhookActionId")),
        schedule_id: id_text(schedule.get("id")),
        candidate_id: id_text(schedule.get("candidateId")),
        application_id: id_text(schedule.get("applicationId")),
        starts_at,
        cancelled: status.eq_ignore_ascii_case("cancelled"),
        occurred_at: time(schedule.get("updatedAt")),
    })
}

/// The `Ashby-Signature` header's value for `body`: `"sha256=<hex>"`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    format!("sha256={}", crate::intake::providers::sign_hex(Alg::Sha256, secret, &[body]))
}
