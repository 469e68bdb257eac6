//! The activities as the workflows see them: each one's Temporal type name,
//! input and output (declared with the SDK's `#[activity_definitions]`), the
//! failure types a workflow's retry policy names, and the records that the
//! workflow and the activity both build. The implementations, and all the
//! I/O, are in `vbridge-activities`, which implements these definitions
//! (`#[activity(definition = ...)]`); the workflows depend on this crate
//! only, so they build without an HTTP client or a metrics library.
//!
//! The type names are pinned (`name = ...`): they are in every saved
//! history, and a run replays only if its activities keep them.

mod records;

pub use records::{check_of_target, entry_record, write_target, written_entry};

use temporalio_macros::activity_definitions;
use vbridge_proto::{
    AtsWriteRequest, AtsWriteResult, DecisionBatch, EscalationRequest, EscalationResult, MailRequest, MailResult,
    ReconcilePage, ReconcilePageRequest, ReconcileProgress, SeedRequest, Snapshot, StartRequest, StartResult,
};

/// Failure type of a write the ATS refused for good (a 4xx other than 408/429).
/// Listed in the write's retry policy as non-retryable.
pub const PERMANENT_REJECTION: &str = "AtsPermanentRejection";
/// Failure type of a write worth retrying (5xx, 408, 429, timeout, network).
pub const TRANSIENT_FAILURE: &str = "AtsTransientFailure";
/// Failure type of an escalation the receiver refused for good (a 4xx other
/// than 408/429): not retried.
pub const ESCALATION_REJECTED: &str = "EscalationRejected";
/// Failure type of an audit append the store did not take (retried).
pub const AUDIT_APPEND_FAILED: &str = "AuditAppendFailed";
/// Failure type of a seed the audit log could not be read for (retried).
pub const SEED_READ_FAILED: &str = "SeedReadFailed";
/// Failure type of a reconciliation page the store could not be read for.
pub const RECONCILE_READ_FAILED: &str = "ReconcileReadFailed";
/// Failure type of a reconciliation report the store did not keep.
pub const RECONCILE_REPORT_FAILED: &str = "ReconcileReportFailed";
/// Failure type of a retention the floor refused (not retried: the same
/// request is refused again).
pub const RETENTION_REFUSED: &str = "RetentionRefused";
/// Failure type of a retention the store could not run (retried).
pub const RETENTION_FAILED: &str = "RetentionFailed";
/// Failure type of an interview poll that could not read the ATS or keep
/// what it read (retried; the next run starts from the same cursor).
pub const INTERVIEW_POLL_FAILED: &str = "InterviewPollFailed";

/// Failure type of a start the provider refused for good (a 4xx other than
/// 408/429, or no provider configured): not retried; recorded as
/// `verification_start_failed`.
pub const START_REJECTED: &str = "ProviderStartRejected";
/// Failure type of a start worth retrying (5xx, 408, 429, timeout, network,
/// the store unavailable).
pub const START_FAILED: &str = "ProviderStartFailed";
/// Failure type of a message the mail server refused for good (a permanent
/// SMTP answer, an address it cannot take): not retried.
pub const MAIL_REJECTED: &str = "MailRejected";
/// Failure type of a message worth retrying (the server unreachable, a
/// transient SMTP answer, the store unavailable).
pub const MAIL_FAILED: &str = "MailFailed";

/// The kinds of message the hiring loop mails (`MailRequest.kind`): the
/// candidate's invite, re-invite (a new session after an expiry) and
/// reminder, and the recruiter's notice of a gate bypass.
pub mod mail_kind {
    pub const INVITE: &str = "invite";
    pub const REINVITE: &str = "reinvite";
    pub const REMINDER: &str = "reminder";
    pub const BYPASS: &str = "bypass_notice";
    /// The recruiter's notice that the verification is still open at its
    /// deadline (the interview is near).
    pub const PENDING: &str = "pending_notice";
    /// A fresh link after the provider asked the candidate to retake.
    pub const RETAKE: &str = "retake";

    /// Whether a kind goes to the recruiter (else to the candidate).
    pub fn to_recruiter(kind: &str) -> bool {
        kind == BYPASS || kind == PENDING
    }
}

/// The hiring loop (docs/contract.md §8): starting a verification at the
/// provider, and mailing the candidate.
pub struct HiringActivities;

#[activity_definitions]
impl HiringActivities {
    /// Create the provider's session for a start key, or find the one a
    /// retry already created; fails with [`START_REJECTED`] or [`START_FAILED`].
    #[activity(name = "HiringActivities::start_verification")]
    pub fn start_verification(req: StartRequest) -> StartResult {
        unimplemented!()
    }

    /// Send one message at most once per key; fails with [`MAIL_REJECTED`]
    /// or [`MAIL_FAILED`].
    #[activity(name = "HiringActivities::send_mail")]
    pub fn send_mail(req: MailRequest) -> MailResult {
        unimplemented!()
    }
}

/// The audit log: appending decision records, and reading a closed
/// verification's back as the seed of its next run.
pub struct AuditActivities;

#[activity_definitions]
impl AuditActivities {
    /// Append records; one whose `record_id` is stored already is a no-op.
    #[activity(name = "AuditActivities::append_decisions")]
    pub fn append_decisions(batch: DecisionBatch) {
        unimplemented!()
    }

    /// The state a reopened verification starts from, from its audit log.
    #[activity(name = "AuditActivities::seed")]
    pub fn seed(req: SeedRequest) -> Snapshot {
        unimplemented!()
    }
}

/// The ATS write (the generic REST connector of docs/contract.md §4, or the
/// configured ATS's own).
pub struct AtsActivities;

#[activity_definitions]
impl AtsActivities {
    /// Write the templated fields into the ATS, idempotently; fails with
    /// [`PERMANENT_REJECTION`] or [`TRANSIENT_FAILURE`].
    #[activity(name = "AtsActivities::write_verification")]
    pub fn write_verification(req: AtsWriteRequest) -> AtsWriteResult {
        unimplemented!()
    }
}

/// Reconciliation's reads of the ATS and its report.
pub struct ReconcileActivities;

#[activity_definitions]
impl ReconcileActivities {
    /// One page of checks read back from the ATS and diffed.
    #[activity(name = "ReconcileActivities::diff_page")]
    pub fn diff_page(req: ReconcilePageRequest) -> ReconcilePage {
        unimplemented!()
    }

    /// Keep a finished run's report.
    #[activity(name = "ReconcileActivities::record_report")]
    pub fn record_report(report: ReconcileProgress) {
        unimplemented!()
    }
}

/// Audit retention under the policy's floor (`eventLog.retentionDays`).
pub struct RetentionActivities;

#[activity_definitions]
impl RetentionActivities {
    /// Cut every chain's records older than the floor; the report as JSON.
    /// Fails with [`RETENTION_REFUSED`] for good.
    #[activity(name = "RetentionActivities::retain")]
    pub fn retain(requested_by: String) -> String {
        unimplemented!()
    }
}

/// The ATS's interviews, polled where the ATS pushes none (Greenhouse).
pub struct InterviewActivities;

#[activity_definitions]
impl InterviewActivities {
    /// Read the interviews changed since the stored cursor and take each
    /// booking like a pushed one; the report as JSON. Fails with
    /// [`INTERVIEW_POLL_FAILED`].
    #[activity(name = "InterviewActivities::poll")]
    pub fn poll(requested_by: String) -> String {
        unimplemented!()
    }
}

/// The signed `review.escalated` webhook.
pub struct ReviewActivities;

#[activity_definitions]
impl ReviewActivities {
    /// POST one escalation; fails with [`ESCALATION_REJECTED`] for good.
    #[activity(name = "ReviewActivities::escalate")]
    pub fn escalate(req: EscalationRequest) -> EscalationResult {
        unimplemented!()
    }
}

/// The declarations' marker types, which an implementation names in
/// `#[activity(definition = ...)]`. (The macro puts them in private modules.)
pub mod marker {
    pub use super::ats_activities::WriteVerification;
    pub use super::audit_activities::{AppendDecisions, Seed};
    pub use super::hiring_activities::{SendMail, StartVerification};
    pub use super::interview_activities::Poll;
    pub use super::reconcile_activities::{DiffPage, RecordReport};
    pub use super::retention_activities::Retain;
    pub use super::review_activities::Escalate;
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::ActivityDefinition;

    /// Every activity type name the declarations register.
    fn declared() -> Vec<String> {
        vec![
            AuditActivities::append_decisions.name().to_owned(),
            AuditActivities::seed.name().to_owned(),
            AtsActivities::write_verification.name().to_owned(),
            ReconcileActivities::diff_page.name().to_owned(),
            ReconcileActivities::record_report.name().to_owned(),
            RetentionActivities::retain.name().to_owned(),
            ReviewActivities::escalate.name().to_owned(),
            HiringActivities::start_verification.name().to_owned(),
            HiringActivities::send_mail.name().to_owned(),
            InterviewActivities::poll.name().to_owned(),
        ]
    }

    /// The `activity_type` names scheduled anywhere in a JSON history.
    fn scheduled(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.get("name").and_then(|n| n.as_str())) {
                        ("activity_type" | "activityType", Some(name)) => {
                            out.insert(name.to_owned());
                        }
                        _ => scheduled(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| scheduled(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_activity_type_in_the_saved_histories_is_declared_by_that_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/histories");
        let mut names = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("the saved histories") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                scheduled(&serde_json::from_str(&text).unwrap(), &mut names);
            }
        }
        let declared = declared();
        assert!(names.len() >= 5, "the histories schedule the activities: {names:?}");
        for name in &names {
            assert!(declared.contains(name), "{name} is in a saved history but no activity has that name");
        }
    }

    #[test]
    fn the_names_are_the_implementations_type_and_method() {
        assert_eq!(
            declared(),
            [
                "AuditActivities::append_decisions",
                "AuditActivities::seed",
                "AtsActivities::write_verification",
                "ReconcileActivities::diff_page",
                "ReconcileActivities::record_report",
                "RetentionActivities::retain",
                "ReviewActivities::escalate",
                "HiringActivities::start_verification",
                "HiringActivities::send_mail",
                "InterviewActivities::poll",
            ]
        );
    }
}
