//! The ATSs' webhooks as `vbridge dev`, `simulate` and the tests send them
//! (docs/contract.md §8): each body in its vendor's documented shape (cited
//! in the core's adapters, `vbridge_core::intake::ats`), signed as the ATS
//! signs it.

use super::client::Reply;
use crate::intake::signature::Secret;
use serde_json::{Value, json};
use vbridge_core::intake::ats::{AtsKind, ashby, greenhouse};

/// `vbridge dev`'s secret for an ATS's webhooks.
pub fn dev_secret(kind: AtsKind) -> &'static str {
    match kind {
        AtsKind::Greenhouse => "dev-greenhouse-webhook-secret",
        AtsKind::Ashby => "dev-ashby-webhook-secret",
    }
}

/// The adapter `vbridge dev` gives an unconfigured ATS route.
pub fn dev_adapter(kind: AtsKind) -> Box<dyn vbridge_core::intake::ats::AtsAdapter> {
    let secret = Secret::raw(dev_secret(kind), 1).expect("the dev secret is valid");
    match kind {
        AtsKind::Greenhouse => Box::new(vbridge_core::intake::ats::Greenhouse::new(vec![secret])),
        AtsKind::Ashby => Box::new(vbridge_core::intake::ats::Ashby::new(vec![secret])),
    }
}

/// The setting that holds an ATS's webhook secret.
pub fn secret_var(kind: AtsKind) -> &'static str {
    match kind {
        AtsKind::Greenhouse => "VBRIDGE_GREENHOUSE_WEBHOOK_SECRET",
        AtsKind::Ashby => "VBRIDGE_ASHBY_WEBHOOK_SECRET",
    }
}

/// A candidate moved to a stage, as one ATS says it.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub candidate_id: &'a str,
    pub application_id: &'a str,
    pub stage: &'a str,
    pub role: &'a str,
    pub region: &'a str,
    pub email: &'a str,
    /// The delivery's key: Ashby's `webhookActionId`, Greenhouse's `Greenhouse-Event-ID`.
    pub key: &'a str,
    /// RFC 3339.
    pub at: &'a str,
}

/// The stage change's body. Greenhouse's ids are numbers when they are
/// digits, as Greenhouse sends them.
pub fn stage_change(kind: AtsKind, m: &Move) -> Value {
    match kind {
        AtsKind::Ashby => json!({
            "action": "candidateStageChange",
            "webhookActionId": m.key,
            "data": {"application": {
                "id": m.application_id,
                "createdAt": "2026-01-05T09:00:00.000Z",
                "updatedAt": m.at,
                "status": "Active",
                "candidate": {"id": m.candidate_id, "name": "Sam Candidate",
                    "primaryEmailAddress": {"value": m.email, "type": "Personal", "isPrimary": true}},
                "currentInterviewStage": {"id": "stage-1", "title": m.stage, "type": "Active", "orderInInterviewPlan": 2},
                "job": {"id": "job-1", "title": m.role, "locationName": m.region, "locationId": "loc-1"},
                "hiringTeam": [{"userId": "u-1", "email": "recruiter@example.org", "role": "Recruiter",
                    "firstName": "Rae", "lastName": "Cruiter"}],
            }},
        }),
        AtsKind::Greenhouse => {
            let id = |s: &str| s.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(s));
            json!({
                "action": "candidate_stage_change",
                "payload": {"application": {
                    "id": id(m.application_id),
                    "applied_at": "2026-01-05T09:00:00.000Z",
                    "status": "active",
                    "current_stage": {"id": 767358, "name": m.stage, "interviews": []},
                    "candidate": {"id": id(m.candidate_id), "first_name": "Sam", "last_name": "Candidate",
                        "email_addresses": [{"value": m.email, "type": "personal"}],
                        "recruiter": {"id": 92120, "email": "recruiter@example.org", "name": "Rae Cruiter"}},
                    "jobs": [{"id": 371417, "name": m.role, "requisition_id": "REQ-1",
                        "offices": [{"id": 1, "name": m.region}]}],
                }},
            })
        }
    }
}

/// Ashby's interview schedule, created (or, `update`, updated; `cancelled`:
/// its status is Cancelled), with one event at `starts_at` (RFC 3339).
pub fn ashby_interview(
    key: &str,
    schedule_id: &str,
    application_id: &str,
    candidate_id: Option<&str>,
    starts_at: &str,
    update: bool,
    cancelled: bool,
) -> Value {
    let mut schedule = json!({
        "id": schedule_id,
        "applicationId": application_id,
        "interviewStageId": "stage-2",
        "status": if cancelled { "Cancelled" } else { "Scheduled" },
        "updatedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "interviewEvents": [{"id": format!("{schedule_id}-e1"), "startTime": starts_at,
            "endTime": starts_at, "interviewerUserIds": ["u-3"]}],
    });
    if let Some(c) = candidate_id {
        schedule["candidateId"] = c.into();
    }
    let action = if update { "interviewScheduleUpdate" } else { "interviewScheduleCreate" };
    json!({"action": action, "webhookActionId": key, "data": {"interviewSchedule": schedule}})
}

/// Sign `body` as `kind` signs it with `secret`, and POST it to the
/// bridge's route; `key` is Greenhouse's `Greenhouse-Event-ID` (Ashby's is
/// in the body).
pub async fn send(
    http: &reqwest::Client,
    base_url: &str,
    kind: AtsKind,
    secret: &str,
    key: &str,
    body: &Value,
) -> anyhow::Result<Reply> {
    let bytes = serde_json::to_vec(body)?;
    let secret = Secret::raw(secret, 1)?;
    let url = format!("{}/webhooks/ats/{}", base_url.trim_end_matches('/'), kind.as_str());
    let mut req = http.post(url).header("content-type", "application/json");
    req = match kind {
        AtsKind::Greenhouse => req
            .header(greenhouse::SIGNATURE_HEADER, greenhouse::sign(&secret, &bytes))
            .header(greenhouse::EVENT_ID_HEADER, key),
        AtsKind::Ashby => req.header(ashby::SIGNATURE_HEADER, ashby::sign(&secret, &bytes)),
    };
    let resp = req.body(bytes).send().await?;
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (trace_id, retry_after) = (header("x-trace-id"), header("retry-after"));
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok(Reply { status, body, trace_id, retry_after })
}
