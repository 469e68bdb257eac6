//! Greenhouse Recruiting's web hooks.
//!
//! Signature: `Signature: sha256 <hex>`, the algorithm, one space, then the
//! hex HMAC-SHA256 of the whole raw body (not only `payload`) keyed with the
//! web hook's secret key; no timestamp. Greenhouse escapes Unicode before
//! signing, so the MAC is taken over the bytes as received, never a
//! re-serialisation. Each delivery carries a `Greenhouse-Event-ID` header,
//! unique per delivery: the dedup key.
//! <https://developers.greenhouse.io/webhooks.html> ("Introduction",
//! "Authentication"; source: grnhse/greenhouse-api-docs,
//! `source/includes/webhooks/_introduction.md`).
//!
//! Body of a stage change (`action = "candidate_stage_change"`):
//! `{"action", "payload": {"application": {"id": 265277, "applied_at",
//! "status", "current_stage": {"id", "name"}, "candidate": {"id": 265772,
//! "email_addresses": [{"value", "type"}], "recruiter": {"id", "email",
//! "name"}, …}, "jobs": [{"id", "name", "requisition_id", "offices": [{"id",
//! "name", "location"}], …}], …}}}`; ids are JSON numbers.
//! <https://developers.greenhouse.io/webhooks.html#candidate-stage-change>
//! (`_candidate_events.md`). The body names no time of the change, so
//! `occurred_at` is `None`. Saving a web hook sends a ping first, with
//! another action: ignored like every action but the stage change.
//!
//! Not confirmed in the docs: which address is the candidate's primary
//! (the web hook's `email_addresses` has `type` personal/work/other and no
//! primary flag; the first well-formed one is taken), and the ping's exact
//! body.

use super::{AtsAdapter, AtsKind, AtsMapping, Interview, InterviewRead, MAX_SCANNED, Read, email, id_text, text, time};
use crate::intake::providers::{Alg, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{Secret, SignatureError};
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "Signature";
pub const EVENT_ID_HEADER: &str = "Greenhouse-Event-ID";
/// The one action the bridge acts on.
pub const STAGE_CHANGE: &str = "candidate_stage_change";
/// The GDPR anonymization of a candidate (docs/privacy.md): erases it here too.
pub const ANONYMIZED: &str = "candidate_anonymized";

pub struct Greenhouse {
    secrets: Vec<Secret>,
}

impl Greenhouse {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Greenhouse { secrets }
    }
}

/// The digest of `sha256 <hex>`, or nothing (another algorithm, no space,
/// not a digest's worth of hex).
fn digest(value: &str) -> Option<Vec<u8>> {
    let (alg, hex) = value.trim().split_once(' ')?;
    alg.eq_ignore_ascii_case("sha256").then(|| hex_digest(hex, Alg::Sha256)).flatten()
}

/// The candidate's first well-formed address (see the module's note).
fn candidate_email(app: &Value) -> Option<super::Email> {
    let list = app.pointer("/candidate/email_addresses")?.as_array()?;
    list.iter().take(MAX_SCANNED).find_map(|e| email(e.get("value")))
}

impl AtsAdapter for Greenhouse {
    fn kind(&self) -> AtsKind {
        AtsKind::Greenhouse
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

    fn map<'h>(&self, header: &dyn Fn(&str) -> Option<&'h str>, body: &Value) -> AtsMapping {
        let action = str_at(body, "/action").unwrap_or("");
        if action == ANONYMIZED {
            // `{"action": "candidate_anonymized", "payload": {"candidate_id":
            // 37031511, "anonymized_fields": [...]}}` (Greenhouse's web hooks,
            // "Candidate anonymized"): no application is named.
            let key = header(EVENT_ID_HEADER).map(str::trim);
            return super::read_anonymized(
                AtsKind::Greenhouse,
                action,
                key,
                id_text(body.pointer("/payload/candidate_id")),
            );
        }
        let null = Value::Null;
        let app = body.pointer("/payload/application").unwrap_or(&null);
        let job = app.pointer("/jobs/0").unwrap_or(&null);
        let office = job.pointer("/offices/0").unwrap_or(&null);
        // The office's name ("New York"); else its location, a string in
        // the web hook ("New York, NY") or an object with a name.
        let region = text(office.get("name"))
            .or_else(|| text(office.get("location")))
            .or_else(|| text(office.pointer("/location/name")));
        Read {
            ats: AtsKind::Greenhouse,
            ats_event: super::event_name(action),
            used: action == STAGE_CHANGE,
            key: header(EVENT_ID_HEADER).map(|k| k.trim().to_owned()),
            candidate_id: id_text(app.pointer("/candidate/id")),
            application_id: id_text(app.get("id")),
            stage: text(app.pointer("/current_stage/name")),
            role: text(job.get("name")),
            region,
            requisition: text(job.get("requisition_id")),
            email: candidate_email(app),
            recruiter_email: email(app.pointer("/candidate/recruiter/email")),
            applied_at: time(app.get("applied_at")),
            occurred_at: None,
        }
        .settle()
    }
}

/// The event name of an interview read from Harvest's listing (Greenhouse
/// sends no web hook for interviews: the bridge polls them).
pub const POLLED_INTERVIEW: &str = "scheduled_interview";

/// An interview of Harvest's listing, as a booking the gate judges, or
/// `None` when it is not one (no time booked yet: `to_be_scheduled`, an
/// availability request; or no ids):
/// - v3 `GET /v3/interviews` (the `interview` schema: `id`,
///   `application_id`, `starts_at`, `status`, `updated_at`);
/// - v1 `GET /v1/scheduled_interviews` (legacy: `start.date_time`).
///
/// Status `skipped` is a cancellation. The key names the interview and its
/// start, so a listing read again, or an interview updated without being
/// moved (feedback in, say), is a duplicate; a moved interview is a new
/// event. No application names its candidate here: the bridge finds the
/// candidate by the application.
pub fn polled_interview(item: &Value) -> Option<Interview> {
    let status = str_at(item, "/status").unwrap_or("");
    let cancelled = status.eq_ignore_ascii_case("skipped");
    let starts_at = time(item.get("starts_at")).or_else(|| time(item.pointer("/start/date_time")));
    let id = id_text(item.get("id"))?;
    let key = match (cancelled, starts_at) {
        (true, _) => format!("interview-{id}-skipped"),
        (false, Some(t)) => format!("interview-{id}-{}", t.timestamp()),
        (false, None) => return None,
    };
    let read = super::read_interview(InterviewRead {
        ats: AtsKind::Greenhouse,
        ats_event: super::event_name(POLLED_INTERVIEW),
        key: Some(key),
        schedule_id: Some(id),
        candidate_id: None,
        application_id: id_text(item.get("application_id")),
        starts_at,
        cancelled,
        occurred_at: time(item.get("updated_at")),
    });
    match read {
        AtsMapping::Interview(i) => Some(i),
        _ => None,
    }
}

/// When a listed interview last changed (`updated_at`): the poll's cursor.
pub fn polled_updated_at(item: &Value) -> Option<DateTime<FixedOffset>> {
    time(item.get("updated_at"))
}

/// The `Signature` header's value for `body`: `"sha256 <hex>"`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    format!("sha256 {}", crate::intake::providers::sign_hex(Alg::Sha256, secret, &[body]))
}
