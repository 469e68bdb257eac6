//! The hiring loop (with [`HIRING_PATCH`](super::HIRING_PATCH), docs/contract.md
//! §8): an ATS's stage change into a trigger stage arrives as a
//! `verification.requested` event carrying the tier the intake picked. The
//! workflow keeps one start per tier (`StateView.starts`, carried across
//! continue-as-new), which the hiring lane creates at the provider and then
//! invites the candidate to, each step by an activity idempotent by the
//! start's key. The state machine is untouched: a request is not a move,
//! and the provider's own webhooks move the state as before.
//!
//! Pure: the decision is [`request_effect`], tested row by row; the rest
//! records what the activities answered.

use super::CandidateVerification;
use super::writes::failure_message;
use sha2::{Digest, Sha256};
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions};
use vbridge_activity_defs::{MAIL_REJECTED, START_REJECTED};
use vbridge_core::policy::Policy;
use vbridge_core::record::RecordKind;
use vbridge_proto::{EventSignal, HiringStart, MailRequest, MailResult, StartRequest, StartResult, TimelineEntry};

/// The most starts one application keeps (a trigger per tier, step-ups).
pub const STARTS_KEEP: usize = 8;

/// The mail kind of the first message of a start.
pub const MAIL_INVITE: &str = "invite";

/// What one `verification.requested` does, decided from the state alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEffect {
    /// Seen before: skipped, as a duplicate event is.
    Duplicate,
    /// The verification is decided: nothing is started.
    Decided,
    /// The pinned policy has no such tier (or no `verification` extension).
    UnknownTier,
    /// The tier verifies nobody (`verify: false`).
    NoVerification,
    /// A start at this tier exists (it may be in flight): nothing new.
    AlreadyStarted { key: String },
    /// As many starts as an application keeps exist already.
    TooMany,
    /// Start a verification at the tier.
    Start,
}

/// The effect of a request for `tier` given what the workflow holds.
pub fn request_effect(
    seen: bool,
    decided: bool,
    tier: Option<bool>,
    existing: Option<&HiringStart>,
    starts: usize,
) -> RequestEffect {
    match (seen, decided, tier, existing) {
        (true, ..) => RequestEffect::Duplicate,
        (_, true, ..) => RequestEffect::Decided,
        (_, _, None, _) => RequestEffect::UnknownTier,
        (_, _, Some(false), _) => RequestEffect::NoVerification,
        (_, _, _, Some(s)) => RequestEffect::AlreadyStarted { key: s.key.clone() },
        _ if starts >= STARTS_KEEP => RequestEffect::TooMany,
        _ => RequestEffect::Start,
    }
}

/// A start's key: the provider call's and its messages' idempotency key,
/// from the business keys (the workflow, the tier, its place among the
/// application's starts): the same on every retry and replay.
pub fn start_key(workflow_id: &str, tier: &str, n: usize) -> String {
    let h = Sha256::digest(format!("{workflow_id}\nstart\n{tier}\n{n}").as_bytes());
    format!("st-{}", &hex::encode(h)[..32])
}

/// The dedup key of one message of a start: (start, reason).
pub fn mail_key(start_key: &str, kind: &str) -> String {
    format!("{start_key}:{kind}")
}

/// The next step the hiring lane owes.
#[derive(Debug, Clone, PartialEq)]
pub enum HiringJob {
    Start(StartRequest),
    Mail(MailRequest),
}

impl CandidateVerification {
    /// Take a `verification.requested` event: record it and, when it starts
    /// something, queue the start for the hiring lane.
    pub(super) fn request(&mut self, policy: &Policy, now: &str, workflow_id: &str, ev: &EventSignal) {
        let seen = self.seen.contains(&ev.event_id);
        if !seen {
            self.seen.insert(ev.event_id.clone());
            self.seen_order.push_back(ev.event_id.clone());
        }
        let decided = policy.successors(self.machine.state).next().is_none();
        let tier = policy.hiring().and_then(|h| h.tiers().iter().find(|t| t.name == ev.tier));
        let existing = self.view.starts.iter().find(|s| s.tier == ev.tier && s.failed.is_empty());
        let effect = request_effect(seen, decided, tier.map(|t| t.verify), existing, self.view.starts.len());
        let state = self.machine.state;
        let (kind, reason) = match &effect {
            RequestEffect::Duplicate => (RecordKind::Skipped, "duplicate event".to_owned()),
            RequestEffect::Decided => (
                RecordKind::Skipped,
                format!("verification requested at tier {}; {state} is decided, nothing is started", ev.tier),
            ),
            RequestEffect::UnknownTier => (
                RecordKind::Refused,
                format!("verification requested at tier {:?}, which the pinned policy does not have", ev.tier),
            ),
            RequestEffect::NoVerification => {
                (RecordKind::Skipped, format!("tier {} requires no verification; nothing is started", ev.tier))
            }
            RequestEffect::AlreadyStarted { key } => (
                RecordKind::Skipped,
                format!("a verification at tier {} was already started (key {key}); nothing new is started", ev.tier),
            ),
            RequestEffect::TooMany => {
                (RecordKind::Refused, format!("this application has {STARTS_KEEP} verifications started already"))
            }
            RequestEffect::Start => (
                RecordKind::VerificationRequested,
                format!("verification requested at tier {}: the start at the provider is owed", ev.tier),
            ),
        };
        let mut entry = self.entry(now, kind, ev);
        entry.state_after = state.as_str().into();
        entry.reason = reason;
        if effect == RequestEffect::Start
            && let Some(t) = tier
        {
            let key = start_key(workflow_id, &t.name, self.view.starts.len());
            entry.detail = serde_json::json!({"tier": t.name, "key": key}).to_string();
            self.view.starts.push(HiringStart {
                key,
                tier: t.name.clone(),
                template: t.template.clone().unwrap_or_default(),
                level: t.level.clone().unwrap_or_default(),
                trace_id: ev.trace_id.clone(),
                requested_at: now.to_owned(),
                event_id: ev.event_id.clone(),
                ..Default::default()
            });
        }
        self.timeline.push_back(entry);
    }

    /// The next step owed: a start not created yet, else an invite not sent.
    pub(super) fn hiring_job(&self) -> Option<HiringJob> {
        let open = |s: &&HiringStart| s.failed.is_empty();
        if let Some(s) = self.view.starts.iter().filter(open).find(|s| s.session_id.is_empty()) {
            return Some(HiringJob::Start(StartRequest {
                key: s.key.clone(),
                candidate_id: self.candidate_id.clone(),
                application_id: self.application_id.clone(),
                tier: s.tier.clone(),
                template: s.template.clone(),
                level: s.level.clone(),
                trace_id: s.trace_id.clone(),
            }));
        }
        let s = self.view.starts.iter().filter(open).find(|s| !s.invited)?;
        Some(HiringJob::Mail(MailRequest {
            key: mail_key(&s.key, MAIL_INVITE),
            kind: MAIL_INVITE.into(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            start_key: s.key.clone(),
            trace_id: s.trace_id.clone(),
            tier: s.tier.clone(),
        }))
    }

    fn hiring_entry(&self, now: &str, kind: RecordKind, s: &HiringStart, event_id: String) -> TimelineEntry {
        TimelineEntry {
            at: now.to_owned(),
            kind: kind.into(),
            event_id,
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            trace_id: s.trace_id.clone(),
            ..Default::default()
        }
    }

    /// The start activity ended.
    pub(super) fn start_done(&mut self, now: &str, key: &str, result: Result<StartResult, ActivityExecutionError>) {
        let Some(i) = self.view.starts.iter().position(|s| s.key == key) else { return };
        let s = self.view.starts[i].clone();
        let mut entry;
        match result {
            Ok(r) => {
                entry = self.hiring_entry(now, RecordKind::VerificationStarted, &s, format!("start:{key}"));
                let how = if r.created { "created" } else { "found (a retry)" };
                entry.reason = format!("{} session {} {how} for tier {}", r.provider, r.session_id, s.tier);
                entry.detail = serde_json::json!({
                    "tier": s.tier, "key": key, "provider": r.provider, "session_id": r.session_id, "created": r.created,
                })
                .to_string();
                let started = &mut self.view.starts[i];
                started.provider = r.provider;
                started.session_id = r.session_id.clone();
                // The provider's session is the check its webhooks name.
                self.view.verification_check_id = r.session_id;
            }
            Err(e) => {
                entry = self.hiring_entry(now, RecordKind::VerificationStartFailed, &s, format!("start:{key}"));
                let why = failure_message(&e);
                entry.reason = format!("the start at tier {} failed for good: {why}", s.tier);
                self.view.starts[i].failed = if why.is_empty() { "failed".into() } else { why };
            }
        }
        self.timeline.push_back(entry);
    }

    /// The mail activity ended.
    pub(super) fn mail_done(
        &mut self,
        now: &str,
        req: &MailRequest,
        result: Result<MailResult, ActivityExecutionError>,
    ) {
        let Some(i) = self.view.starts.iter().position(|s| s.key == req.start_key) else { return };
        let s = self.view.starts[i].clone();
        let event_id = format!("mail:{}", req.key);
        let entry = match result {
            Ok(r) if r.skipped.is_empty() => {
                let mut e = self.hiring_entry(now, RecordKind::MailSent, &s, event_id);
                let again = if r.sent { "" } else { " (found sent by an earlier attempt)" };
                e.reason = format!(
                    "{} mailed to the candidate (recipient sha256 {}, Message-ID {}){again}",
                    req.kind, r.recipient_hash, r.message_id
                );
                e.detail = serde_json::json!({
                    "kind": req.kind, "recipient_sha256": r.recipient_hash, "message_id": r.message_id, "start": s.key,
                })
                .to_string();
                e
            }
            Ok(r) => {
                let mut e = self.hiring_entry(now, RecordKind::Skipped, &s, event_id);
                e.reason = format!("{} not mailed: {}", req.kind, r.skipped);
                e
            }
            Err(err) => {
                let mut e = self.hiring_entry(now, RecordKind::Skipped, &s, event_id);
                e.reason =
                    format!("{} not mailed: the mail server refused it for good: {}", req.kind, failure_message(&err));
                e
            }
        };
        self.view.starts[i].invited = true;
        self.timeline.push_back(entry);
    }

    /// Whether the hiring lane owes a step (a run with one is not at rest).
    pub(super) fn hiring_owed(&self) -> bool {
        self.hiring_job().is_some()
    }

    /// Retries of a start or a message (each attempt at most a minute,
    /// heartbeating): transient failures again and again
    /// (a provider or mail outage must not lose an invite), capped at a
    /// minute apart; a refusal for good is not retried.
    pub(super) fn hiring_options(&self, non_retryable: &'static str) -> ActivityOptions {
        let retry = RetryPolicy::builder()
            .initial_interval(Duration::from_millis(self.tuning.ats_retry_initial_ms.max(1) as u64))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .non_retryable_error_types([non_retryable])
            .build();
        let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(60));
        // The activities heartbeat every second: a worker that died mid-call
        // is noticed in seconds.
        opts.heartbeat_timeout = Some(Duration::from_secs(5));
        opts.retry_policy = Some(retry);
        opts
    }
}

/// The non-retryable failure type of each job.
pub(super) fn rejected_type(job: &HiringJob) -> &'static str {
    match job {
        HiringJob::Start(_) => START_REJECTED,
        HiringJob::Mail(_) => MAIL_REJECTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_starts_once_per_tier_and_never_for_a_decided_or_unverified_tier() {
        let started = HiringStart { key: "st-1".into(), tier: "standard".into(), ..Default::default() };
        use RequestEffect::*;
        // (seen, decided, tier verifies?, existing, starts, effect)
        let table: Vec<(bool, bool, Option<bool>, Option<&HiringStart>, usize, RequestEffect)> = vec![
            (false, false, Some(true), None, 0, Start),
            (true, false, Some(true), None, 0, Duplicate),
            (true, true, None, Some(&started), 9, Duplicate),
            (false, true, Some(true), None, 0, Decided),
            (false, false, None, None, 0, UnknownTier),
            (false, false, Some(false), None, 0, NoVerification),
            (false, false, Some(true), Some(&started), 1, AlreadyStarted { key: "st-1".into() }),
            (false, false, Some(true), None, STARTS_KEEP, TooMany),
            (false, false, Some(true), None, STARTS_KEEP - 1, Start),
        ];
        for (seen, decided, tier, existing, n, want) in table {
            assert_eq!(request_effect(seen, decided, tier, existing, n), want, "{seen} {decided} {tier:?} {n}");
        }
    }

    #[test]
    fn keys_come_from_the_business_keys_and_differ_per_tier_and_place() {
        let a = start_key("cv-c1-a1", "standard", 0);
        assert_eq!(a, start_key("cv-c1-a1", "standard", 0), "stable");
        assert_ne!(a, start_key("cv-c1-a1", "enhanced", 0));
        assert_ne!(a, start_key("cv-c1-a1", "standard", 1));
        assert_ne!(a, start_key("cv-c2-a1", "standard", 0));
        assert!(a.starts_with("st-") && a.len() == 35);
        assert_eq!(mail_key(&a, MAIL_INVITE), format!("{a}:invite"));
    }
}
