//! The kinds of audit records (`DecisionRecord::kind`, a timeline entry's
//! `kind`). The strings are stored, hashed into the audit chains and shown
//! to operators, so each variant's string never changes; the unit test below
//! pins them.

use serde::{Deserialize, Serialize};

/// What an audit record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An event moved the verification (the state machine applied it).
    Applied,
    /// An event the state machine refused (or a webhook's downgrade).
    Refused,
    /// An event the state machine skipped (seen before, or stale).
    Skipped,
    /// The verification was routed to manual review (the item in `detail`).
    ReviewRouted,
    /// A reviewer decided.
    ReviewDecided,
    /// An operator overrode the state.
    Override,
    /// A review item passed its SLA (the item in `detail`).
    Escalated,
    /// The escalation webhook was sent.
    EscalationSent,
    /// The escalation webhook failed for good.
    EscalationFailed,
    /// One attempt of an ATS write.
    AtsAttempt,
    /// An ATS write went through (its fields in `detail`).
    AtsWrite,
    /// An ATS write is owed again (the ATS was down).
    AtsDeferred,
    /// An ATS write refused for good (a dead letter).
    AtsFailed,
    /// Dead letters re-driven by an operator.
    AtsRetry,
    /// The kill switch's ATS banner was written or removed.
    Banner,
    /// A verification's ATS writes were paused.
    Paused,
    /// A verification's ATS writes were resumed.
    Resumed,
    /// An operator API request was refused (401/403), in the `access` chain.
    AccessDenied,
    /// An operations control changed, in the `controls` chain.
    ControlChanged,
    /// A reconciliation run's report, in the `reconciliation` chain.
    Reconciled,
    /// Retention cut the chain before this record (the checkpoint it left in
    /// `write_targets`).
    Retention,
    /// Unauthenticated webhook deliveries refused in one window, aggregated
    /// (the count and window in `detail`; the ids are the deliveries' own,
    /// unverified claims), in the `rejected` chain.
    DeliveriesRefused,
    /// A provider moved a decided verification backwards (or reversed it):
    /// the state is kept, a review item flagged `provider_reversal` is opened
    /// and the gate holds until an admin closes it (the provider's state in
    /// `detail`).
    ProviderReversal,
    /// A provider asked the candidate to retake the check: the state is
    /// kept; while it is undecided the ATS shows
    /// `verification_action_required: retake`.
    RetakeRequested,
    /// A provider's session expired or was abandoned: the state is kept;
    /// while it is undecided the ATS shows `verification_action_required: restart`.
    VerificationExpired,
    /// An ATS's stage change asked for a verification at a tier (the hiring
    /// loop, docs/contract.md §8): the start is owed (tier and key in `detail`).
    VerificationRequested,
    /// The provider's session was created (or found) for a requested start
    /// (tier, provider and session id in `detail`).
    VerificationStarted,
    /// A requested start failed for good (the provider refused it).
    VerificationStartFailed,
    /// A message was mailed: its kind, the recipient's SHA-256 and its
    /// Message-ID in `detail`; never the address, never the link.
    MailSent,
    /// The ATS booked (or moved) an interview while the gate was open.
    InterviewScheduled,
    /// The ATS booked an interview while the application's gate was closed:
    /// flagged in the ATS, the recruiter told (the gate's reason in the record).
    GateBypass,
    /// The ATS cancelled the interview: its reminders are cancelled.
    InterviewCancelled,
    /// The interview's time came: whether the verification was verified by
    /// then (`state_after`) feeds `verified_before_interview_ratio`.
    InterviewReached,
    /// The candidate's personal data was erased (crypto-shredding:
    /// docs/privacy.md): who, why, which trigger; in the `erasure` chain,
    /// which holds no personal data and is never cut nor erased.
    Erased,
}

impl RecordKind {
    /// Every kind, in declaration order.
    pub const ALL: &[RecordKind] = &[
        RecordKind::Applied,
        RecordKind::Refused,
        RecordKind::Skipped,
        RecordKind::ReviewRouted,
        RecordKind::ReviewDecided,
        RecordKind::Override,
        RecordKind::Escalated,
        RecordKind::EscalationSent,
        RecordKind::EscalationFailed,
        RecordKind::AtsAttempt,
        RecordKind::AtsWrite,
        RecordKind::AtsDeferred,
        RecordKind::AtsFailed,
        RecordKind::AtsRetry,
        RecordKind::Banner,
        RecordKind::Paused,
        RecordKind::Resumed,
        RecordKind::AccessDenied,
        RecordKind::ControlChanged,
        RecordKind::Reconciled,
        RecordKind::Retention,
        RecordKind::DeliveriesRefused,
        RecordKind::ProviderReversal,
        RecordKind::RetakeRequested,
        RecordKind::VerificationExpired,
        RecordKind::VerificationRequested,
        RecordKind::VerificationStarted,
        RecordKind::VerificationStartFailed,
        RecordKind::MailSent,
        RecordKind::InterviewScheduled,
        RecordKind::GateBypass,
        RecordKind::InterviewCancelled,
        RecordKind::InterviewReached,
        RecordKind::Erased,
    ];

    /// The stored string (the same as its serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Applied => "applied",
            RecordKind::Refused => "refused",
            RecordKind::Skipped => "skipped",
            RecordKind::ReviewRouted => "review_routed",
            RecordKind::ReviewDecided => "review_decided",
            RecordKind::Override => "override",
            RecordKind::Escalated => "escalated",
            RecordKind::EscalationSent => "escalation_sent",
            RecordKind::EscalationFailed => "escalation_failed",
            RecordKind::AtsAttempt => "ats_attempt",
            RecordKind::AtsWrite => "ats_write",
            RecordKind::AtsDeferred => "ats_deferred",
            RecordKind::AtsFailed => "ats_failed",
            RecordKind::AtsRetry => "ats_retry",
            RecordKind::Banner => "banner",
            RecordKind::Paused => "paused",
            RecordKind::Resumed => "resumed",
            RecordKind::AccessDenied => "access_denied",
            RecordKind::ControlChanged => "control_changed",
            RecordKind::Reconciled => "reconciled",
            RecordKind::Retention => "retention",
            RecordKind::DeliveriesRefused => "deliveries_refused",
            RecordKind::ProviderReversal => "provider_reversal",
            RecordKind::RetakeRequested => "retake_requested",
            RecordKind::VerificationExpired => "verification_expired",
            RecordKind::VerificationRequested => "verification_requested",
            RecordKind::VerificationStarted => "verification_started",
            RecordKind::VerificationStartFailed => "verification_start_failed",
            RecordKind::MailSent => "mail_sent",
            RecordKind::InterviewScheduled => "interview_scheduled",
            RecordKind::GateBypass => "gate_bypass",
            RecordKind::InterviewCancelled => "interview_cancelled",
            RecordKind::InterviewReached => "interview_reached",
            RecordKind::Erased => "erased",
        }
    }

    /// The kind a stored string names (`None`: a kind this build does not know).
    pub fn of(s: &str) -> Option<RecordKind> {
        s.parse().ok()
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record kind {0:?}")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for RecordKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<RecordKind, UnknownKind> {
        RecordKind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

impl From<RecordKind> for String {
    fn from(k: RecordKind) -> String {
        k.as_str().to_owned()
    }
}

impl PartialEq<RecordKind> for String {
    fn eq(&self, k: &RecordKind) -> bool {
        self == k.as_str()
    }
}

impl PartialEq<RecordKind> for str {
    fn eq(&self, k: &RecordKind) -> bool {
        self == k.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::RecordKind::{self, *};

    /// Stored and hashed: changing one breaks every chain that holds it.
    #[test]
    fn the_strings_are_unchanged() {
        let expected = [
            (Applied, "applied"),
            (Refused, "refused"),
            (Skipped, "skipped"),
            (ReviewRouted, "review_routed"),
            (ReviewDecided, "review_decided"),
            (Override, "override"),
            (Escalated, "escalated"),
            (EscalationSent, "escalation_sent"),
            (EscalationFailed, "escalation_failed"),
            (AtsAttempt, "ats_attempt"),
            (AtsWrite, "ats_write"),
            (AtsDeferred, "ats_deferred"),
            (AtsFailed, "ats_failed"),
            (AtsRetry, "ats_retry"),
            (Banner, "banner"),
            (Paused, "paused"),
            (Resumed, "resumed"),
            (AccessDenied, "access_denied"),
            (ControlChanged, "control_changed"),
            (Reconciled, "reconciled"),
            (Retention, "retention"),
            (DeliveriesRefused, "deliveries_refused"),
            (ProviderReversal, "provider_reversal"),
            (RetakeRequested, "retake_requested"),
            (VerificationExpired, "verification_expired"),
            (VerificationRequested, "verification_requested"),
            (VerificationStarted, "verification_started"),
            (VerificationStartFailed, "verification_start_failed"),
            (MailSent, "mail_sent"),
            (InterviewScheduled, "interview_scheduled"),
            (GateBypass, "gate_bypass"),
            (InterviewCancelled, "interview_cancelled"),
            (InterviewReached, "interview_reached"),
            (Erased, "erased"),
        ];
        assert_eq!(expected.len(), RecordKind::ALL.len(), "every kind is pinned");
        for (kind, s) in expected {
            assert_eq!(kind.as_str(), s);
            assert_eq!(kind.to_string(), s);
            assert_eq!(s.parse::<RecordKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<RecordKind>(&format!("\"{s}\"")).unwrap(), kind);
            let stored: String = s.into();
            assert!(*s == kind && stored == kind);
        }
        assert_eq!(RecordKind::of("no_such_kind"), None);
    }
}
