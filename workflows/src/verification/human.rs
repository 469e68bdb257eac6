//! Human moves and review: routing to a review queue, a reviewer's decision
//! or an admin's override (checked by the core's rules), and the SLA's
//! escalations.

use super::CandidateVerification;
use super::writes::failure_message;
use super::{OVERRIDE_ACTOR_FIELD, OVERRIDE_REASON_FIELD, OVERRIDE_TIMESTAMP_FIELD, QUEUE_LINK_FIELD};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions};
use vbridge_activity_defs::ESCALATION_REJECTED;
use vbridge_core::domain::VerificationState;
use vbridge_core::policy::{Policy, STATE_FIELD};
use vbridge_core::record::RecordKind;
use vbridge_core::review::{self, Refusal};
use vbridge_proto::{EscalationRequest, OverrideRequest, ReviewDecision, ReviewItem, StateView, TimelineEntry};

impl CandidateVerification {
    /// Open or close the review item as the state moves to `to` (with
    /// [`REVIEW_PATCH`](super::REVIEW_PATCH)): a state the policy routes opens an item, due
    /// `slaHours` from now; leaving it closes the item (the entry that moved
    /// the state says so). The console link when an item was opened.
    /// `codes` are the provider's (flagged when unlisted) unless `by_human`:
    /// an admin's override code is checked against its own list.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn follow_review(
        &mut self,
        policy: &Policy,
        now: &str,
        to: VerificationState,
        codes: &[String],
        by_human: bool,
        evidence: &str,
        (event_id, trace_id): (&str, &str),
    ) -> Option<String> {
        let Some(route) = policy.review_route(to) else {
            self.view.review = None;
            return None;
        };
        let due = add_hours(now, route.sla_hours);
        let item = ReviewItem {
            queue: route.queue.clone(),
            reason_codes: codes.to_vec(),
            evidence_pack_url: evidence.to_owned(),
            routed_at: now.to_owned(),
            due_at: due.clone(),
            escalations: 0,
            flags: if by_human { vec![] } else { review::flags(&route.required_reason_codes, codes) },
            event_id: event_id.to_owned(),
            trace_id: trace_id.to_owned(),
        };
        let mut reason = format!("routed to {} (SLA {} h), due {due}", route.queue, route.sla_hours);
        if !item.flags.is_empty() {
            let given = if codes.is_empty() { "none".to_owned() } else { codes.join(", ") };
            reason.push_str(&format!("; flagged {}: reason codes given: {given}", item.flags.join(", ")));
        }
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: RecordKind::ReviewRouted.into(),
            event_id: event_id.to_owned(),
            state_before: to.as_str().into(),
            state_after: to.as_str().into(),
            reason,
            trace_id: trace_id.to_owned(),
            detail: serde_json::to_string(&item).unwrap_or_default(),
            ..Default::default()
        });
        self.view.review = Some(item);
        Some(review::queue_link(&self.public_url, &self.candidate_id, &self.application_id))
    }

    /// A reviewer's decision or an admin's override, already checked: record
    /// it with its actor, reason code and note, move the state, follow the
    /// review, and queue the ATS write that carries the override fields.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn human_move(
        &mut self,
        now: &str,
        workflow_id: &str,
        kind: RecordKind,
        to: VerificationState,
        actor: &str,
        code: &str,
        note: &str,
        (event_id, trace_id): (&str, &str),
    ) -> StateView {
        let Ok(policy) = self.policy.clone() else { return self.view.clone() };
        let before = self.machine.state;
        let held = self.reversal_held();
        let mut reason = match kind {
            RecordKind::ReviewDecided => format!("reviewer {actor} decided {to} ({code})"),
            _ if before == to => format!("{actor} confirmed {to} ({code})"),
            _ => format!("{actor} overrode {before} -> {to} ({code})"),
        };
        if held {
            reason.push_str("; closes the provider_reversal item");
        }
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: kind.into(),
            event_id: event_id.to_owned(),
            state_before: before.as_str().into(),
            state_after: to.as_str().into(),
            reason,
            trace_id: trace_id.to_owned(),
            override_actor: actor.to_owned(),
            override_reason_code: code.to_owned(),
            override_timestamp: now.to_owned(),
            detail: serde_json::json!({ "note": note }).to_string(),
            ..Default::default()
        });
        self.machine.state = to;
        self.view.state = to.as_str().into();
        let evidence = self.view.review.as_ref().map(|r| r.evidence_pack_url.clone()).unwrap_or_default();
        let mut fields = BTreeMap::from([
            (STATE_FIELD.to_owned(), to.as_str().to_owned()),
            (OVERRIDE_ACTOR_FIELD.to_owned(), actor.to_owned()),
            (OVERRIDE_REASON_FIELD.to_owned(), code.to_owned()),
            (OVERRIDE_TIMESTAMP_FIELD.to_owned(), now.to_owned()),
        ]);
        if let Some(link) =
            self.follow_review(&policy, now, to, &[code.to_owned()], true, &evidence, (event_id, trace_id))
        {
            fields.insert(QUEUE_LINK_FIELD.into(), link);
        }
        self.clear_action(&mut fields);
        match self.known_check_id() {
            Some(check) => {
                let req = self.write_request(&policy, workflow_id, (event_id, trace_id), &check, fields);
                self.queue_write(req);
                self.view.pending_writes = self.pending.len() as u32;
                self.view.ats_sync = policy.pending_sync_status().to_owned();
            }
            None => self.timeline.push_back(TimelineEntry {
                at: now.to_owned(),
                kind: RecordKind::AtsFailed.into(),
                event_id: event_id.to_owned(),
                state_after: to.as_str().into(),
                reason: "no verification check of this verification is known: the ATS cannot be written".into(),
                trace_id: trace_id.to_owned(),
                ..Default::default()
            }),
        }
        self.view.clone()
    }

    /// The SLA passed with no decision: record the escalation, push the due
    /// time one more SLA out, and name the webhook to send.
    pub(super) fn escalate(&mut self, now: &str, workflow_id: &str) -> Option<EscalationRequest> {
        let hours = self.policy.as_ref().ok()?.review_route(VerificationState::NeedsReview)?.sla_hours;
        let item = self.view.review.as_mut()?;
        let passed = item.due_at.clone();
        item.escalations += 1;
        item.due_at = add_hours(&passed, hours);
        let req = EscalationRequest {
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            queue: item.queue.clone(),
            due_at: passed.clone(),
            escalation: item.escalations,
            idempotency_key: escalation_key(workflow_id, &item.routed_at, item.escalations),
            trace_id: item.trace_id.clone(),
        };
        let entry = TimelineEntry {
            at: now.to_owned(),
            kind: RecordKind::Escalated.into(),
            event_id: item.event_id.clone(),
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            reason: format!(
                "no decision by {passed} (SLA {hours} h): escalation {} of {}; due again {}",
                item.escalations, item.queue, item.due_at
            ),
            trace_id: item.trace_id.clone(),
            attempt: item.escalations,
            detail: serde_json::to_string(&*item).unwrap_or_default(),
            ..Default::default()
        };
        self.timeline.push_back(entry);
        Some(req)
    }

    /// How the escalation webhook went, in the timeline.
    pub(super) fn escalation_done(
        &mut self,
        now: String,
        req: &EscalationRequest,
        result: Result<vbridge_proto::EscalationResult, ActivityExecutionError>,
    ) {
        let (kind, reason) = match result {
            Ok(r) if r.http_status == 0 => (
                RecordKind::EscalationSent,
                "not sent: no escalation URL is configured (VBRIDGE_ESCALATION_URL)".to_owned(),
            ),
            Ok(r) => (RecordKind::EscalationSent, format!("POSTed to {} with HTTP {}", r.url, r.http_status)),
            Err(e) => (RecordKind::EscalationFailed, failure_message(&e)),
        };
        self.timeline.push_back(TimelineEntry {
            at: now,
            kind: kind.into(),
            event_id: self.view.review.as_ref().map(|r| r.event_id.clone()).unwrap_or_default(),
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            reason,
            trace_id: req.trace_id.clone(),
            attempt: req.escalation,
            target: req.idempotency_key.clone(),
            ..Default::default()
        });
    }

    pub(super) fn escalation_options(&self) -> ActivityOptions {
        let attempts = self.policy.as_ref().map(|p| p.max_retry_attempts()).unwrap_or(1);
        let retry = RetryPolicy::builder()
            .initial_interval(Duration::from_millis(self.tuning.ats_retry_initial_ms.max(1) as u64))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .maximum_attempts(attempts)
            .non_retryable_error_types([ESCALATION_REJECTED])
            .build();
        let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(10));
        opts.retry_policy = Some(retry);
        opts
    }

    /// The validator's view of a reviewer's decision.
    pub(super) fn check_decision(&self, d: &ReviewDecision) -> Result<VerificationState, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .map_err(|e| Refusal::new(review::CONFLICT, format!("the pinned policy is invalid: {e}")))?;
        // A reopened run that has not read its seed yet cannot judge the
        // state: the handler checks again once it has.
        let (state, in_review) = if self.seeding {
            (VerificationState::NeedsReview, true)
        } else {
            (self.machine.state, self.view.review.is_some() || !self.patches().review)
        };
        review::check_decision(policy, state, in_review, &d.decision, &d.reason_code, &d.actor, &d.note)
    }

    pub(super) fn check_override(&self, o: &OverrideRequest) -> Result<VerificationState, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .map_err(|e| Refusal::new(review::CONFLICT, format!("the pinned policy is invalid: {e}")))?;
        let state = if self.seeding { VerificationState::Unverified } else { self.machine.state };
        review::check_override(policy, state, self.reversal_held(), &o.to, &o.reason_code, &o.actor, &o.note)
    }
}

/// `at` (RFC 3339) plus `hours`, as RFC 3339 UTC with milliseconds.
pub(in crate::verification) fn add_hours(at: &str, hours: f64) -> String {
    let t = DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
    let later = t + chrono::Duration::from_std(vbridge_core::policy::sla_duration(hours)).unwrap_or_default();
    later.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How long from `now` until `at` (RFC 3339); at least a millisecond.
pub(super) fn until(at: &str, now: Option<SystemTime>) -> Duration {
    let (Ok(at), Some(now)) = (DateTime::parse_from_rfc3339(at), now) else { return Duration::from_millis(1) };
    let at: SystemTime = at.with_timezone(&Utc).into();
    at.duration_since(now).unwrap_or_default().max(Duration::from_millis(1))
}

/// The idempotency key of the `n`-th escalation of the review item routed at
/// `routed_at`: the same on every retry and replay.
pub fn escalation_key(workflow_id: &str, routed_at: &str, n: u32) -> String {
    let h = Sha256::digest(format!("{workflow_id}\nescalation\n{routed_at}\n{n}").as_bytes());
    format!("esc-{}", &hex::encode(h)[..40])
}
