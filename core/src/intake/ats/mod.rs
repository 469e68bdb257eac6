//! The ATSs' own webhooks (Greenhouse, Ashby), pure: one adapter per ATS
//! behind [`AtsAdapter`]. An adapter checks the ATS's signature on the raw
//! bytes (constant time, any of several secrets, its header bounded before
//! any MAC), then maps the ATS's body onto a [`StageChange`], the one event
//! the hiring loop starts from, or says why it is not one ([`AtsIgnored`]).
//!
//! | route | signature | dedup key |
//! |---|---|---|
//! | `POST /webhooks/ats/greenhouse` | `Signature: sha256 <hex>` | the `Greenhouse-Event-ID` header |
//! | `POST /webhooks/ats/ashby` | `Ashby-Signature: sha256=<hex>` | the body's `webhookActionId` |
//!
//! Neither scheme signs a time, so there is no replay window here: the dedup
//! key is what keeps a replayed delivery from acting twice.
//!
//! Only ids, the stage, the job's title, region and requisition, two email
//! addresses and two times leave the adapter; names, phone numbers,
//! addresses, resumes and custom fields in an ATS's body are never copied.
//! The addresses are [`Email`]s, whose `Debug` is redacted, because the
//! bridge logs mappings.

pub mod ashby;
pub mod greenhouse;

#[cfg(test)]
mod tests;

pub use ashby::Ashby;
pub use greenhouse::Greenhouse;

use super::providers::key_part;
use super::signature::SignatureError;
use crate::domain::{ApplicationId, CandidateId};
use crate::hiring::Job;
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use std::fmt;

/// The ATSs whose webhooks the bridge reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtsKind {
    Greenhouse,
    Ashby,
}

impl AtsKind {
    pub const ALL: [AtsKind; 2] = [AtsKind::Greenhouse, AtsKind::Ashby];

    /// The name in routes, metrics, event keys and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AtsKind::Greenhouse => "greenhouse",
            AtsKind::Ashby => "ashby",
        }
    }

    pub fn parse(s: &str) -> Option<AtsKind> {
        AtsKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The longest email address kept (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

/// An email address as the ATS gave it, checked only for shape: trimmed, at
/// most [`MAX_EMAIL_BYTES`], exactly one `@` with something on each side, no
/// whitespace, control or text-direction characters. It is never checked
/// for delivery; the ATS owns that. Its `Debug` shows only the domain, so
/// that a logged mapping never carries a candidate's address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Option<Email> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_EMAIL_BYTES || s.chars().any(|c| c.is_whitespace() || unsafe_char(c)) {
            return None;
        }
        let (local, domain) = s.split_once('@')?;
        // RFC 5321's dot-atom on both sides (non-ASCII letters allowed, as
        // SMTPUTF8 does): no quoted local parts, comments or literals, which
        // no ATS sends for a candidate and a mail server may read otherwise.
        let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_atom =
            |part: &str, ok: &dyn Fn(char) -> bool| part.split('.').all(|a| !a.is_empty() && a.chars().all(ok));
        let label = |c: char| c.is_alphanumeric() || c == '-';
        (dot_atom(local, &atext) && dot_atom(domain, &label)).then(|| Email(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email(***@{})", self.domain())
    }
}

/// A candidate moved to a stage of an application, as the ATS tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub ats: AtsKind,
    /// The ATS's dedup key, without the ATS's prefix ([`key_part`]-checked).
    pub event_key: String,
    /// The ATS's own name for the event (`candidate_stage_change`, `candidateStageChange`).
    pub ats_event: String,
    /// The ATS's candidate id (Greenhouse's numbers as decimal strings).
    pub candidate_id: CandidateId,
    pub application_id: ApplicationId,
    /// The stage moved into, by name ([`MAX_TEXT_CHARS`], control characters dropped).
    pub stage: String,
    /// The job's title, its location and its requisition, bounded likewise.
    pub role: Option<String>,
    pub region: Option<String>,
    pub requisition: Option<String>,
    /// The candidate's primary address; `None` when absent or malformed.
    pub email: Option<Email>,
    /// The application's recruiter, when the body names one with an address.
    pub recruiter_email: Option<Email>,
    /// When the application was made.
    pub applied_at: Option<DateTime<FixedOffset>>,
    /// When the change happened; `None`: the receipt time stands in.
    pub occurred_at: Option<DateTime<FixedOffset>>,
}

impl StageChange {
    /// What the tier choice reads ([`crate::hiring::HiringPolicy::tier_for`]).
    /// An ATS's webhook carries no signals.
    pub fn job(&self) -> Job<'_> {
        Job {
            role: self.role.as_deref(),
            region: self.region.as_deref(),
            requisition: self.requisition.as_deref(),
            signals: &[],
        }
    }

    /// The key as stored: `"{ats}:{event key}"`.
    pub fn stored_key(&self) -> String {
        stored_key(self.ats, &self.event_key)
    }
}

/// Why a verified delivery is recorded and answered `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtsIgnoreReason {
    /// An action the bridge does not act on (every one but the stage change,
    /// Greenhouse's and Ashby's `ping` among them).
    NotUsed,
    /// The candidate's or the application's id is missing or not a valid id.
    NoIds,
    /// No usable dedup key (header or body, per ATS).
    NoEventKey,
    /// A stage change without the stage's name.
    NoStage,
}

impl AtsIgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AtsIgnoreReason::NotUsed => "event_not_used",
            AtsIgnoreReason::NoIds => "no_ids",
            AtsIgnoreReason::NoEventKey => "no_event_key",
            AtsIgnoreReason::NoStage => "no_stage",
        }
    }
}

/// A verified delivery that is not a stage change the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct AtsIgnored {
    pub reason: AtsIgnoreReason,
    pub ats_event: String,
    /// Without the ATS's prefix; `None` when the delivery has none.
    pub event_key: Option<String>,
    pub candidate_id: Option<CandidateId>,
    pub application_id: Option<ApplicationId>,
}

impl AtsIgnored {
    /// What the store keeps of an ignored delivery: the ATS's event name,
    /// the reason, the ids; nothing else of the body.
    pub fn to_record(&self, ats: AtsKind) -> Value {
        json!({
            "ats": ats.as_str(),
            "ats_event": self.ats_event,
            "ignored": self.reason.as_str(),
            "event_key": self.event_key.as_deref().map(|k| stored_key(ats, k)),
            "candidate_id": self.candidate_id.as_ref().map(CandidateId::as_str),
            "application_id": self.application_id.as_ref().map(ApplicationId::as_str),
        })
    }
}

/// An interview schedule booked, moved or cancelled, as the ATS tells it
/// (Ashby `interviewScheduleCreate` / `interviewScheduleUpdate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Interview {
    pub ats: AtsKind,
    /// The ATS's dedup key, without the ATS's prefix.
    pub event_key: String,
    pub ats_event: String,
    /// The ATS's id of the schedule (bounded printable ASCII).
    pub schedule_id: String,
    /// When the body names it; else the bridge finds it by the application.
    pub candidate_id: Option<CandidateId>,
    pub application_id: ApplicationId,
    /// The earliest event's start; `None` when the schedule has no time yet.
    pub starts_at: Option<DateTime<FixedOffset>>,
    /// The schedule was cancelled (its reminders are cancelled too).
    pub cancelled: bool,
    pub occurred_at: Option<DateTime<FixedOffset>>,
}

impl Interview {
    /// The key as stored: `"{ats}:{event key}"`.
    pub fn stored_key(&self) -> String {
        stored_key(self.ats, &self.event_key)
    }
}

/// The ATS anonymized a candidate (Greenhouse `candidate_anonymized`): the
/// bridge erases the candidate too (docs/privacy.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymized {
    pub ats: AtsKind,
    /// The ATS's dedup key, without the ATS's prefix.
    pub event_key: String,
    pub ats_event: String,
    pub candidate_id: CandidateId,
}

impl Anonymized {
    /// The key as stored: `"{ats}:{event key}"`.
    pub fn stored_key(&self) -> String {
        stored_key(self.ats, &self.event_key)
    }
}

/// Read an anonymization: the key, then the candidate's id.
pub(crate) fn read_anonymized(
    ats: AtsKind,
    ats_event: &str,
    key: Option<&str>,
    candidate_id: Option<String>,
) -> AtsMapping {
    let event_key = key.and_then(key_part).map(str::to_owned);
    let candidate_id = candidate_id.as_deref().and_then(|s| CandidateId::parse(s).ok());
    let ignored = |reason| {
        AtsMapping::Ignored(AtsIgnored {
            reason,
            ats_event: event_name(ats_event),
            event_key: event_key.clone(),
            candidate_id: candidate_id.clone(),
            application_id: None,
        })
    };
    let Some(event_key) = event_key.clone() else { return ignored(AtsIgnoreReason::NoEventKey) };
    let Some(candidate_id) = candidate_id.clone() else { return ignored(AtsIgnoreReason::NoIds) };
    AtsMapping::Anonymized(Anonymized { ats, event_key, ats_event: event_name(ats_event), candidate_id })
}

#[derive(Debug, Clone, PartialEq)]
pub enum AtsMapping {
    StageChange(StageChange),
    Interview(Interview),
    Anonymized(Anonymized),
    Ignored(AtsIgnored),
}

/// The key as stored (`"{ats}:{event key}"`): the idempotency key and the event id.
pub fn stored_key(ats: AtsKind, event_key: &str) -> String {
    format!("{}:{event_key}", ats.as_str())
}

/// One ATS: its signature and its body.
pub trait AtsAdapter: Send + Sync {
    fn kind(&self) -> AtsKind;
    /// Check the signature on the raw bytes; `header` looks a request
    /// header up by name, case-insensitively.
    fn verify<'h>(&self, header: &dyn Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<(), SignatureError>;
    /// Map a verified body (a JSON value). `header` is passed because
    /// Greenhouse's event key is a header.
    fn map<'h>(&self, header: &dyn Fn(&str) -> Option<&'h str>, body: &Value) -> AtsMapping;
}

// ---- Shared pieces of the adapters -------------------------------------

/// The longest stage, role, region or requisition kept, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The longest ATS event name kept, in characters.
pub const MAX_EVENT_CHARS: usize = 64;
/// At most this many entries of a list (emails, hiring team) are looked at.
pub(crate) const MAX_SCANNED: usize = 16;

/// Characters that could forge a log line or reorder displayed text.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name as given, bounded: trimmed, unsafe characters dropped, at most
/// `max` characters; nothing when nothing is left. The whole string is never
/// copied before it is cut.
pub(crate) fn bounded_text(s: &str, max: usize) -> Option<String> {
    let out: String = s.chars().filter(|c| !unsafe_char(*c)).skip_while(|c| c.is_whitespace()).take(max).collect();
    let out = out.trim_end();
    (!out.is_empty()).then(|| out.to_owned())
}

/// A string (or a number, as some ATSs send requisitions) at `v`, bounded.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => bounded_text(s, MAX_TEXT_CHARS),
        Value::Number(n) => bounded_text(&n.to_string(), MAX_TEXT_CHARS),
        _ => None,
    }
}

/// An ATS id: a string, or a non-negative integer written in decimal
/// (Greenhouse's ids are JSON numbers).
pub(crate) fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// The event's name as kept: bounded, unsafe characters dropped.
pub(crate) fn event_name(s: &str) -> String {
    bounded_text(s, MAX_EVENT_CHARS).unwrap_or_default()
}

/// An email address at `v`, or nothing.
pub(crate) fn email(v: Option<&Value>) -> Option<Email> {
    Email::parse(v?.as_str()?)
}

/// An RFC 3339 time at `v`, or nothing.
pub(crate) fn time(v: Option<&Value>) -> Option<DateTime<FixedOffset>> {
    super::providers::rfc3339(v?.as_str())
}

/// The fields an adapter read; [`Read::settle`] decides between a stage
/// change and an ignored delivery in the same order for every ATS: the
/// action, the key, the ids, the stage.
pub(crate) struct Read {
    pub ats: AtsKind,
    pub ats_event: String,
    pub used: bool,
    /// The dedup key as sent (checked here with [`key_part`]).
    pub key: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
    pub stage: Option<String>,
    pub role: Option<String>,
    pub region: Option<String>,
    pub requisition: Option<String>,
    pub email: Option<Email>,
    pub recruiter_email: Option<Email>,
    pub applied_at: Option<DateTime<FixedOffset>>,
    pub occurred_at: Option<DateTime<FixedOffset>>,
}

impl Read {
    pub(crate) fn settle(self) -> AtsMapping {
        let event_key = self.key.as_deref().and_then(key_part).map(str::to_owned);
        let candidate_id = self.candidate_id.as_deref().and_then(|s| CandidateId::parse(s).ok());
        let application_id = self.application_id.as_deref().and_then(|s| ApplicationId::parse(s).ok());
        let ignored = |reason| {
            AtsMapping::Ignored(AtsIgnored {
                reason,
                ats_event: self.ats_event.clone(),
                event_key: event_key.clone(),
                candidate_id: candidate_id.clone(),
                application_id: application_id.clone(),
            })
        };
        if !self.used {
            return ignored(AtsIgnoreReason::NotUsed);
        }
        let Some(key) = event_key.clone() else { return ignored(AtsIgnoreReason::NoEventKey) };
        let (Some(c), Some(a)) = (candidate_id.clone(), application_id.clone()) else {
            return ignored(AtsIgnoreReason::NoIds);
        };
        let Some(stage) = self.stage else { return ignored(AtsIgnoreReason::NoStage) };
        AtsMapping::StageChange(StageChange {
            ats: self.ats,
            event_key: key,
            ats_event: self.ats_event,
            candidate_id: c,
            application_id: a,
            stage,
            role: self.role,
            region: self.region,
            requisition: self.requisition,
            email: self.email,
            recruiter_email: self.recruiter_email,
            applied_at: self.applied_at,
            occurred_at: self.occurred_at,
        })
    }
}

/// The fields an interview's adapter read; [`read_interview`] settles them
/// in the order stage changes are: the key, the ids.
pub(crate) struct InterviewRead {
    pub ats: AtsKind,
    pub ats_event: String,
    pub key: Option<String>,
    pub schedule_id: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
    pub starts_at: Option<DateTime<FixedOffset>>,
    pub cancelled: bool,
    pub occurred_at: Option<DateTime<FixedOffset>>,
}

pub(crate) fn read_interview(r: InterviewRead) -> AtsMapping {
    let event_key = r.key.as_deref().and_then(key_part).map(str::to_owned);
    let candidate_id = r.candidate_id.as_deref().and_then(|s| CandidateId::parse(s).ok());
    let application_id = r.application_id.as_deref().and_then(|s| ApplicationId::parse(s).ok());
    let schedule_id = r.schedule_id.as_deref().and_then(key_part).map(str::to_owned);
    let ignored = |reason| {
        AtsMapping::Ignored(AtsIgnored {
            reason,
            ats_event: r.ats_event.clone(),
            event_key: event_key.clone(),
            candidate_id: candidate_id.clone(),
            application_id: application_id.clone(),
        })
    };
    let Some(key) = event_key.clone() else { return ignored(AtsIgnoreReason::NoEventKey) };
    let (Some(a), Some(schedule_id)) = (application_id.clone(), schedule_id) else {
        return ignored(AtsIgnoreReason::NoIds);
    };
    AtsMapping::Interview(Interview {
        ats: r.ats,
        event_key: key,
        ats_event: r.ats_event,
        schedule_id,
        candidate_id,
        application_id: a,
        starts_at: r.starts_at,
        cancelled: r.cancelled,
        occurred_at: r.occurred_at,
    })
}
