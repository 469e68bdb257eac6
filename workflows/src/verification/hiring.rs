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

use super::writes::failure_message;
use super::{CandidateVerification, QUEUE_LINK_FIELD};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions};
use vbridge_activity_defs::{MAIL_REJECTED, START_REJECTED};
use vbridge_core::domain::VerificationState;
use vbridge_core::machine;
use vbridge_core::policy::Policy;
use vbridge_core::policy::STATE_FIELD;
use vbridge_core::record::RecordKind;
use vbridge_proto::{EventSignal, HiringStart, MailRequest, MailResult, StartRequest, StartResult, TimelineEntry};

/// The most starts one application keeps (a trigger per tier, step-ups).
pub const STARTS_KEEP: usize = 8;

/// The mail kind of the first message of a start.
pub const MAIL_INVITE: &str = vbridge_activity_defs::mail_kind::INVITE;
/// The mail kind of the first message of a start that replaces an expired session.
pub const MAIL_REINVITE: &str = vbridge_activity_defs::mail_kind::REINVITE;
/// The mail kind of a fresh link after the provider asked for a retake.
pub const MAIL_RETAKE: &str = vbridge_activity_defs::mail_kind::RETAKE;
/// Fresh links mailed per start at most: a provider that asks again and
/// again must not become a flood in the candidate's inbox.
pub const RETAKES_MAILED: u32 = 3;

/// Whether a `needs_review` on `check` with these codes steps up, given
/// the starts so far: the policy names a tier for one of the codes, the
/// check is not itself a step-up's, and it was not stepped up before
/// (once per check).
pub fn steps_up(starts: &[HiringStart], check: &str, listed: bool) -> bool {
    let is_step_up = starts.iter().any(|s| !s.step_up_of.is_empty() && s.session_id == check);
    let stepped = starts.iter().any(|s| s.step_up_of == check);
    listed && !check.is_empty() && !is_step_up && !stepped && starts.len() < STARTS_KEEP
}

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

    /// A `needs_review` whose reason codes the policy steps up (with the
    /// hiring patch): a new start at the step-up tier, instead of the review
    /// queue. Whether it stepped up.
    pub(super) fn step_up(&mut self, policy: &Policy, now: &str, workflow_id: &str, ev: &EventSignal) -> bool {
        let Some(tier) = policy.hiring().and_then(|h| h.step_up(&ev.reason_codes)) else { return false };
        if !steps_up(&self.view.starts, &ev.verification_check_id, true) {
            return false;
        }
        let key = start_key(workflow_id, &tier.name, self.view.starts.len());
        let mut entry = self.entry(now, RecordKind::VerificationRequested, ev);
        entry.event_id = format!("step-up:{}", ev.event_id);
        entry.state_before = self.view.state.clone();
        entry.state_after = self.view.state.clone();
        entry.reason = format!(
            "step-up: needs_review on check {} with {}; a verification at tier {} is started instead of the review queue",
            ev.verification_check_id,
            ev.reason_codes.join(", "),
            tier.name
        );
        entry.detail =
            serde_json::json!({"tier": tier.name, "key": key, "step_up_of": ev.verification_check_id}).to_string();
        self.timeline.push_back(entry);
        self.view.starts.push(HiringStart {
            key,
            tier: tier.name.clone(),
            template: tier.template.clone().unwrap_or_default(),
            level: tier.level.clone().unwrap_or_default(),
            trace_id: ev.trace_id.clone(),
            requested_at: now.to_owned(),
            event_id: ev.event_id.clone(),
            step_up_of: ev.verification_check_id.clone(),
            reason_codes: ev.reason_codes.clone(),
            ..Default::default()
        });
        true
    }

    /// A step-up's own check says needs_review again (the state already is):
    /// once per check means it goes to the review queue now, as any other
    /// needs_review does.
    pub(super) fn queue_step_up_review(&mut self, policy: &Policy, now: &str, workflow_id: &str, ev: &EventSignal) {
        let check = &ev.verification_check_id;
        let step_up_check = self.view.starts.iter().any(|s| !s.step_up_of.is_empty() && s.session_id == *check);
        let again = machine::target_state(policy, ev).ok() == Some(VerificationState::NeedsReview);
        if step_up_check && again {
            let ids = (ev.event_id.as_str(), ev.trace_id.as_str());
            self.queue_review(policy, now, workflow_id, check, &ev.reason_codes, &ev.evidence_pack_url, ids);
        }
    }

    /// Route the verification, in needs_review without an item, to the
    /// review queue (what a step-up held back): the item, and the ATS write
    /// with its link to `check`.
    #[allow(clippy::too_many_arguments)]
    fn queue_review(
        &mut self,
        policy: &Policy,
        now: &str,
        workflow_id: &str,
        check: &str,
        codes: &[String],
        evidence: &str,
        ids: (&str, &str),
    ) {
        let waiting = self.machine.state == VerificationState::NeedsReview && self.view.review.is_none();
        if !(waiting && self.patches().review) {
            return;
        }
        let Some(link) = self.follow_review(policy, now, VerificationState::NeedsReview, codes, false, evidence, ids)
        else {
            return;
        };
        let fields = BTreeMap::from([
            (STATE_FIELD.to_owned(), VerificationState::NeedsReview.as_str().to_owned()),
            (QUEUE_LINK_FIELD.to_owned(), link),
        ]);
        let req = self.write_request(policy, workflow_id, ids, check, fields);
        self.queue_write(req);
        self.view.pending_writes = self.pending.len() as u32;
        self.view.ats_sync = policy.pending_sync_status().to_owned();
    }

    /// The provider said a session the bridge started expired (with the
    /// hiring patch, while undecided): a new session at the same tier, its
    /// link mailed as a re-invite. Once per session.
    pub(super) fn restart_expired(&mut self, now: &str, workflow_id: &str, ev: &EventSignal) {
        let check = &ev.verification_check_id;
        let Some(i) = self.view.starts.iter().position(|s| !s.session_id.is_empty() && s.session_id == *check) else {
            return;
        };
        if self.view.starts[i].expired {
            return;
        }
        self.view.starts[i].expired = true;
        let old = self.view.starts[i].clone();
        let mut entry = self.entry(now, RecordKind::VerificationRequested, ev);
        entry.event_id = format!("restart:{}", ev.event_id);
        entry.state_before = self.view.state.clone();
        entry.state_after = self.view.state.clone();
        if self.view.starts.len() >= STARTS_KEEP {
            entry.kind = RecordKind::Refused.into();
            entry.reason = format!("session {check} expired; {STARTS_KEEP} verifications were started already");
            self.timeline.push_back(entry);
            return;
        }
        let key = start_key(workflow_id, &old.tier, self.view.starts.len());
        entry.reason =
            format!("session {check} expired; a new verification at tier {} is started and its link mailed", old.tier);
        entry.detail = serde_json::json!({"tier": old.tier, "key": key, "replaces": check}).to_string();
        self.timeline.push_back(entry);
        self.view.starts.push(HiringStart {
            key,
            tier: old.tier,
            template: old.template,
            level: old.level,
            trace_id: ev.trace_id.clone(),
            requested_at: now.to_owned(),
            event_id: ev.event_id.clone(),
            mail_kind: MAIL_REINVITE.into(),
            replaces: check.clone(),
            step_up_of: old.step_up_of,
            ..Default::default()
        });
    }

    /// The provider asked the candidate to retake a check the bridge started
    /// and mailed (with [`RETAKE_PATCH`](super::RETAKE_PATCH), while
    /// undecided): a fresh link is mailed (`retake`), once per notice, at
    /// most [`RETAKES_MAILED`] per start. The notice itself is recorded by
    /// the caller; this records why nothing is mailed when nothing is.
    pub(super) fn mail_retake(&mut self, now: &str, ev: &EventSignal) {
        let check = &ev.verification_check_id;
        let found = self.view.starts.iter().position(|s| {
            !s.session_id.is_empty() && s.session_id == *check && s.failed.is_empty() && !s.expired && s.invited
        });
        let Some(i) = found else { return };
        let s = self.view.starts[i].clone();
        if s.retakes >= RETAKES_MAILED {
            let mut entry =
                self.hiring_entry(now, RecordKind::Skipped, &ev.trace_id, format!("retake:{}", ev.event_id));
            entry.reason = format!("retake of {check}: {RETAKES_MAILED} fresh links were mailed already; none more");
            self.timeline.push_back(entry);
            return;
        }
        self.view.starts[i].retakes += 1;
        let reason = format!("{MAIL_RETAKE}-{}", s.retakes + 1);
        self.outbox_push(MailRequest {
            key: mail_key(&s.key, &reason),
            kind: MAIL_RETAKE.into(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            start_key: s.key.clone(),
            trace_id: ev.trace_id.clone(),
            tier: s.tier.clone(),
            ..Default::default()
        });
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
        let Some(s) = self.view.starts.iter().filter(open).find(|s| !s.invited && !s.expired) else {
            return self.view.outbox.first().cloned().map(HiringJob::Mail);
        };
        let kind = if s.mail_kind.is_empty() { MAIL_INVITE } else { s.mail_kind.as_str() };
        Some(HiringJob::Mail(MailRequest {
            key: mail_key(&s.key, kind),
            kind: kind.into(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            start_key: s.key.clone(),
            trace_id: s.trace_id.clone(),
            tier: s.tier.clone(),
            ..Default::default()
        }))
    }

    pub(super) fn hiring_entry(&self, now: &str, kind: RecordKind, trace_id: &str, event_id: String) -> TimelineEntry {
        TimelineEntry {
            at: now.to_owned(),
            kind: kind.into(),
            event_id,
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            trace_id: trace_id.to_owned(),
            ..Default::default()
        }
    }

    /// The start activity ended.
    pub(super) fn start_done(
        &mut self,
        now: &str,
        workflow_id: &str,
        key: &str,
        result: Result<StartResult, ActivityExecutionError>,
    ) {
        let Some(i) = self.view.starts.iter().position(|s| s.key == key) else { return };
        let s = self.view.starts[i].clone();
        let mut entry;
        match result {
            Ok(r) => {
                entry = self.hiring_entry(now, RecordKind::VerificationStarted, &s.trace_id, format!("start:{key}"));
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
                entry =
                    self.hiring_entry(now, RecordKind::VerificationStartFailed, &s.trace_id, format!("start:{key}"));
                let why = failure_message(&e);
                entry.reason = format!("the start at tier {} failed for good: {why}", s.tier);
                self.view.starts[i].failed = if why.is_empty() { "failed".into() } else { why };
            }
        }
        self.timeline.push_back(entry);
        // A step-up that cannot start leaves the needs_review to a reviewer.
        if !s.step_up_of.is_empty()
            && !self.view.starts[i].failed.is_empty()
            && let Ok(policy) = self.policy.clone()
        {
            let ids = (s.event_id.as_str(), s.trace_id.as_str());
            self.queue_review(&policy, now, workflow_id, &s.step_up_of, &s.reason_codes, "", ids);
        }
    }

    /// The mail activity ended: a start's first message, or the outbox's next.
    pub(super) fn mail_done(
        &mut self,
        now: &str,
        req: &MailRequest,
        result: Result<MailResult, ActivityExecutionError>,
    ) {
        if self.view.outbox.first().is_some_and(|m| m.key == req.key) {
            self.view.outbox.remove(0);
        } else if let Some(s) = self.view.starts.iter_mut().find(|s| s.key == req.start_key) {
            s.invited = true;
        } else {
            return;
        }
        let whom =
            if vbridge_activity_defs::mail_kind::to_recruiter(&req.kind) { "the recruiter" } else { "the candidate" };
        let mut e = self.hiring_entry(now, RecordKind::MailSent, &req.trace_id, format!("mail:{}", req.key));
        match result {
            Ok(r) if r.skipped.is_empty() => {
                let again = if r.sent { "" } else { " (found sent by an earlier attempt)" };
                e.reason = format!(
                    "{} mailed to {whom} (recipient sha256 {}, Message-ID {}){again}",
                    req.kind, r.recipient_hash, r.message_id
                );
                e.detail = serde_json::json!({
                    "kind": req.kind, "recipient_sha256": r.recipient_hash, "message_id": r.message_id,
                    "start": req.start_key,
                })
                .to_string();
            }
            Ok(r) => {
                e.kind = RecordKind::Skipped.into();
                e.reason = format!("{} not mailed to {whom}: {}", req.kind, r.skipped);
            }
            Err(err) => {
                e.kind = RecordKind::Skipped.into();
                e.reason = format!(
                    "{} not mailed to {whom}: the mail server refused it for good: {}",
                    req.kind,
                    failure_message(&err)
                );
            }
        }
        self.timeline.push_back(e);
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
        type Row<'a> = (bool, bool, Option<bool>, Option<&'a HiringStart>, usize, RequestEffect);
        let table: Vec<Row> = vec![
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
    fn a_check_steps_up_once_and_a_step_ups_own_check_never() {
        let trigger = HiringStart { key: "st-1".into(), session_id: "chk-1".into(), ..Default::default() };
        let stepped = HiringStart {
            key: "st-2".into(),
            session_id: "chk-2".into(),
            step_up_of: "chk-1".into(),
            ..Default::default()
        };
        let none: &[HiringStart] = &[];
        // (starts, check, a listed code, steps up)
        let table: &[(&[HiringStart], &str, bool, bool)] = &[
            (std::slice::from_ref(&trigger), "chk-1", true, true),
            (std::slice::from_ref(&trigger), "chk-1", false, false),
            (none, "chk-x", true, true),
            (none, "", true, false),
            (&[trigger.clone(), stepped.clone()], "chk-1", true, false),
            (&[trigger.clone(), stepped.clone()], "chk-2", true, false),
        ];
        for (starts, check, listed, want) in table {
            assert_eq!(steps_up(starts, check, *listed), *want, "{check} {listed} among {}", starts.len());
        }
        let full = vec![HiringStart::default(); STARTS_KEEP];
        assert!(!steps_up(&full, "chk-9", true), "bounded");
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
