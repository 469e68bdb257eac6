//! The queue of ATS writes: what an event or a human move writes, how a
//! later write of a check replaces a queued one, and how a write ended.

use super::state::write_idempotency_key;
use super::{BANNER_FIELD, CandidateVerification, FAILED_KEEP, SYNCED, WRITE_FAILED};
use std::collections::BTreeMap;
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions, LocalActivityOptions};
use vbridge_activity_defs::{PERMANENT_REJECTION, check_of_target, write_target, written_entry};
use vbridge_core::domain::EventType;
use vbridge_core::policy::{Policy, STATE_FIELD};
use vbridge_core::record::RecordKind;
use vbridge_proto::{AtsWriteRequest, EventSignal, PendingWrite, TimelineEntry};

impl CandidateVerification {
    /// Queue an ATS write. With [`WRITE_LOGS_PATCH`](super::WRITE_LOGS_PATCH), a write of the same
    /// check waiting behind the first owed one is replaced by this one, which
    /// carries the latest state: its fields over the replaced one's, so the
    /// ATS ends as if both had been written in order. The first owed write
    /// (in flight, deferred or about to go) is never replaced, so the ATS
    /// hears of a verification at once; but within one backlog batch (with
    /// [`BATCH_PATCH`](super::BATCH_PATCH)) a write the batch itself queued
    /// may be replaced. The machine only moves forward, so the ATS never sees
    /// a state go backwards.
    pub(super) fn queue_write(&mut self, mut req: AtsWriteRequest) {
        if self.patches().controls && !self.view.banner.is_empty() {
            req.fields.insert(BANNER_FIELD.into(), self.view.banner.clone());
        }
        let coalesce = self.patches().write_logs;
        // Paused, nothing is in flight: the first queued write may be
        // replaced too, so that a resume writes the latest state once.
        let protected = if self.view.paused && !self.ats_in_flight { 0 } else { 1 };
        // Within a backlog batch (with BATCH_PATCH), only the writes queued
        // before it are protected: the batch is one moment, and none of its
        // own writes is in flight yet.
        let protected = self.batch_floor.map_or(protected, |f| protected.min(f));
        // With LOCAL_WRITE_PATCH, a write a backlog queued or replaced runs
        // as a local activity (a write queued before it keeps its kind).
        let local = self.batch_floor.is_some() && self.patches().local_write;
        let queued = self
            .pending
            .iter_mut()
            .skip(protected)
            .find(|w| w.request.as_ref().is_some_and(|r| r.verification_check_id == req.verification_check_id));
        match queued {
            Some(w) if coalesce => {
                w.local |= local;
                let old = w.request.take().unwrap_or_default();
                let mut fields = old.fields;
                fields.append(&mut req.fields);
                req.fields = fields;
                req.superseded = old.superseded + 1;
                w.request = Some(req);
            }
            _ => self.pending.push_back(PendingWrite { request: Some(req), rounds: 0, local }),
        }
    }

    /// The ATS write an applied event causes: the policy's templated fields.
    pub(super) fn write_for(&self, policy: &Policy, workflow_id: &str, ev: &EventSignal) -> Option<AtsWriteRequest> {
        let et: EventType = ev.event_type.parse().ok()?;
        let action = policy.action(et)?;
        let fields: BTreeMap<String, String> =
            action.fields.iter().filter_map(|(k, t)| t.render(ev).map(|v| (k.clone(), v))).collect();
        debug_assert!(fields.contains_key(STATE_FIELD));
        Some(self.write_request(policy, workflow_id, (&ev.event_id, &ev.trace_id), &ev.verification_check_id, fields))
    }

    /// An ATS write of `fields` to a check, caused by `(event id, trace id)`.
    pub(super) fn write_request(
        &self,
        policy: &Policy,
        workflow_id: &str,
        (event_id, trace_id): (&str, &str),
        check_id: &str,
        fields: BTreeMap<String, String>,
    ) -> AtsWriteRequest {
        AtsWriteRequest {
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            verification_check_id: check_id.to_owned(),
            fields,
            idempotency_key: write_idempotency_key(workflow_id, event_id),
            trace_id: trace_id.to_owned(),
            event_id: event_id.to_owned(),
            timeout_ms: policy.ats_write_timeout_ms() as u32,
            backoff_initial_ms: self.tuning.ats_retry_initial_ms,
            backoff_max_ms: self.tuning.ats_retry_max_ms,
            backoff_jitter: policy.backoff() == "exponential-jitter",
            ..Default::default()
        }
    }

    /// The ATS check this verification writes to: the last event's, else a
    /// queued write's, else one a logged write named (runs from before the
    /// view kept it).
    pub(super) fn known_check_id(&self) -> Option<String> {
        Some(self.view.verification_check_id.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| {
                self.pending.iter().rev().find_map(|w| w.request.as_ref().map(|r| r.verification_check_id.clone()))
            })
            .or_else(|| self.timeline.iter().rev().find_map(|t| check_of_target(&t.target).map(str::to_owned)))
            .filter(|c| !c.is_empty())
    }

    /// Record how a write ended; the wait before a new round when every
    /// attempt of this one was spent.
    pub(super) fn settle_write(
        &mut self,
        now: String,
        request: &AtsWriteRequest,
        result: Result<vbridge_proto::AtsWriteResult, ActivityExecutionError>,
    ) -> Option<Duration> {
        match result {
            Ok(done) => {
                self.pending.pop_front();
                // The ATS holds a newer write of the check: older dead letters are moot.
                self.failed.retain(|f| f.verification_check_id != request.verification_check_id);
                let mut entry = written_entry(request, &done, now);
                entry.logged = done.write_logged;
                self.timeline.push_back(entry);
                self.advance_recorded();
                self.view.pending_writes = self.pending.len() as u32;
                if self.pending.is_empty() {
                    self.view.ats_sync = SYNCED.into();
                }
                None
            }
            Err(e) if failure_type(&e).as_deref() == Some(PERMANENT_REJECTION) => {
                self.pending.pop_front();
                self.timeline.push_back(TimelineEntry {
                    at: now,
                    kind: RecordKind::AtsFailed.into(),
                    event_id: request.event_id.clone(),
                    reason: failure_message(&e),
                    trace_id: request.trace_id.clone(),
                    target: write_target(request),
                    idempotency_key: request.idempotency_key.clone(),
                    state_after: request.fields.get(STATE_FIELD).cloned().unwrap_or_default(),
                    ..Default::default()
                });
                if self.patches().controls {
                    let mut dead = request.clone();
                    dead.records.clear();
                    dead.write_record_id.clear();
                    self.failed.push_back(dead);
                    while self.failed.len() > FAILED_KEEP {
                        self.failed.pop_front();
                    }
                }
                self.view.pending_writes = self.pending.len() as u32;
                self.view.ats_sync = WRITE_FAILED.into();
                None
            }
            Err(e) => {
                // Every attempt of this round is spent: keep the write, wait, try again.
                let rounds = self.pending.front().map(|w| w.rounds).unwrap_or(0) + 1;
                if let Some(front) = self.pending.front_mut() {
                    front.rounds = rounds;
                }
                let wait_ms = (self.tuning.deferral_ms as u64).saturating_mul(1u64 << (rounds - 1).min(3));
                self.timeline.push_back(TimelineEntry {
                    at: now,
                    kind: RecordKind::AtsDeferred.into(),
                    event_id: request.event_id.clone(),
                    reason: format!(
                        "retry round {rounds} spent ({}); next round in {} s",
                        failure_message(&e),
                        wait_ms / 1000
                    ),
                    trace_id: request.trace_id.clone(),
                    target: write_target(request),
                    ..Default::default()
                });
                Some(Duration::from_millis(wait_ms.max(1)))
            }
        }
    }

    pub(super) fn activity_options(&self) -> ActivityOptions {
        let (retry, timeout) = self.write_retry_and_timeout();
        let mut opts = ActivityOptions::start_to_close_timeout(timeout);
        opts.retry_policy = Some(retry);
        opts
    }

    /// A backlog's write as a local activity (with
    /// [`LOCAL_WRITE_PATCH`](super::LOCAL_WRITE_PATCH)): the activity's
    /// retry policy and timeout; a retry delay over
    /// [`LOCAL_WRITE_TIMER_AFTER`](super::LOCAL_WRITE_TIMER_AFTER) waits on
    /// a workflow timer.
    pub(super) fn local_activity_options(&self) -> LocalActivityOptions {
        let (retry, timeout) = self.write_retry_and_timeout();
        let mut opts = LocalActivityOptions::default();
        opts.retry_policy = retry;
        opts.start_to_close_timeout = Some(timeout);
        opts.timer_backoff_threshold = Some(super::LOCAL_WRITE_TIMER_AFTER);
        opts
    }

    /// An ATS write's retry policy (the policy's attempts and backoff, the
    /// tuning's intervals) and its timeout (the policy's, plus 2 s).
    fn write_retry_and_timeout(&self) -> (RetryPolicy, Duration) {
        let (timeout_ms, attempts, backoff) = match &self.policy {
            Ok(p) => (p.ats_write_timeout_ms(), p.max_retry_attempts(), p.backoff().to_owned()),
            Err(_) => (4_000, 1, "fixed".to_owned()),
        };
        let coefficient = if backoff == "fixed" { 1.0 } else { 2.0 };
        let retry = RetryPolicy::builder()
            .initial_interval(Duration::from_millis(self.tuning.ats_retry_initial_ms.max(1) as u64))
            .backoff_coefficient(coefficient)
            .maximum_interval(Duration::from_millis(self.tuning.ats_retry_max_ms.max(1) as u64))
            .maximum_attempts(attempts)
            .non_retryable_error_types([PERMANENT_REJECTION])
            .build();
        (retry, Duration::from_millis(timeout_ms + 2_000))
    }
}

/// The application failure type carried anywhere in an activity failure chain.
pub(super) fn failure_type(e: &ActivityExecutionError) -> Option<String> {
    let mut f = e.failure();
    while let Some(failure) = f {
        if let Some(app) = failure.maybe_application_failure()
            && !app.r#type.is_empty()
        {
            return Some(app.r#type.clone());
        }
        f = failure.cause.as_deref();
    }
    None
}

pub(super) fn failure_message(e: &ActivityExecutionError) -> String {
    let mut f = e.failure();
    let mut last = e.to_string();
    while let Some(failure) = f {
        if !failure.message.is_empty() {
            last = failure.message.clone();
        }
        f = failure.cause.as_deref();
    }
    last
}
