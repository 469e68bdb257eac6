//! `CandidateVerification`: one durable workflow per (candidate, application).
//!
//! It only orchestrates. Signals are applied at once through the pure state
//! machine ([`vbridge_core::machine`]); each applied event queues one ATS write; the
//! run loop drains that queue through the ATS activity, in order. Nothing here
//! reads the clock or does I/O: time is `workflow_time`, waiting is `timer`.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};
use temporalio_common::RetryPolicy;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate, Timestamp};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, ContinueAsNewOptions, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};
use vbridge_activity_defs::{AtsActivities, AuditActivities, PERMANENT_REJECTION, ReviewActivities};
use vbridge_core::domain::{EventType, VerificationState};
use vbridge_core::machine::{self, MachineState, Outcome};
use vbridge_core::policy::{Policy, STATE_FIELD};
use vbridge_core::review::{self, Refusal};
use vbridge_proto::{
    AtsWriteRequest, DecisionBatch, DecisionRecord, EscalationRequest, EventSignal, GatingSignal, OverrideRequest,
    PauseSignal, PendingWrite, RetryWrites, ReviewDecision, ReviewItem, SeedRequest, Snapshot, StateView,
    TimelineEntry, Tuning, WorkflowInput,
};

/// Patch: timeline entries are appended to the audit log through an activity.
/// Histories recorded before it replay without those activities.
pub const AUDIT_PATCH: &str = "audit-log-v1";
/// Patch: the audit append and the ATS write run in lanes of their own, so
/// neither waits for the other (a write in a long retry round or a deferral
/// timer no longer holds decisions back from the log, and a store outage no
/// longer holds writes back); and what is carried across continue-as-new is
/// bounded ([`TIMELINE_KEEP`], [`SEEN_KEEP`]).
pub const LANES_PATCH: &str = "lanes-bounded-v1";
/// Patch: the ATS write activity logs the decisions that led to it and its
/// own `ats_write` record, so an applied event costs one activity, not three;
/// a queued write of a check is replaced by a later one (the ATS needs only
/// the latest state); search attributes are upserted once per activation and
/// only when they change. See docs/architecture.md, "Cost per event".
pub const WRITE_LOGS_PATCH: &str = "write-logs-v1";
/// Patch: a verification at rest (a final state, nothing owed, everything in
/// the audit log) completes after a quiet period (`Tuning.quiet_close_ms`),
/// so open workflows grow with active work, not with every candidate ever
/// seen. A later event starts a new run, which seeds itself from the audit
/// log (the relay marks it `reopen`). Implies [`WRITE_LOGS_PATCH`].
pub const REST_CLOSE_PATCH: &str = "rest-close-v1";
/// Patch: manual review. A `needs_review` routes the verification to the
/// policy's queue (a `review_routed` entry, `reviewer_queue_link` in the ATS
/// write, `ReviewDueAt`); a durable SLA timer escalates it every `slaHours`
/// until a reviewer decides (update `review_decide`); a webhook that would
/// move the state back is recorded as refused; the Temporal UI shows the
/// current details. Implies [`REST_CLOSE_PATCH`].
pub const REVIEW_PATCH: &str = "review-v1";

/// Patch: operations controls. The kill switch's banner (`gating` signal)
/// is written into the ATS (`verification_banner`) and carried in every
/// write while gating is off; the `VerificationPaused` search attribute and
/// the current details show a pause. Implies [`REVIEW_PATCH`]. (Pause itself,
/// holding the ATS lane, works in any run with lanes: no history before it
/// has a pause signal.)
pub const CONTROLS_PATCH: &str = "controls-v1";

/// The names of the control signals (sent one by one or as a batch).
pub const GATING_SIGNAL: &str = "gating";
pub const PAUSE_SIGNAL: &str = "pause";
pub const RETRY_WRITES_SIGNAL: &str = "retry_writes";

/// Dead letters a verification keeps to re-drive (the newest).
pub const FAILED_KEEP: usize = 20;

/// The ATS field the kill switch's banner goes to.
pub const BANNER_FIELD: &str = "verification_banner";

/// ATS fields a human move or a routing adds to the policy's (named by the seed).
pub const QUEUE_LINK_FIELD: &str = "reviewer_queue_link";
pub const OVERRIDE_ACTOR_FIELD: &str = "override_actor";
pub const OVERRIDE_REASON_FIELD: &str = "override_reason_code";
pub const OVERRIDE_TIMESTAMP_FIELD: &str = "override_timestamp";

/// Timeline entries kept in the workflow (and returned by the `timeline`
/// query) once they are in the audit log, which holds the whole timeline.
pub const TIMELINE_KEEP: usize = 100;
/// Event ids remembered for deduplication. An older re-delivery is still
/// never applied twice: its `occurred_at` is not after the last applied
/// event's, so the machine skips it as stale or as already in its state.
pub const SEEN_KEEP: usize = 1000;
/// The most records one activity carries to the audit log (the rest go with
/// the next one), so that no activity input grows past Temporal's limits
/// after a long store outage.
pub const CLAIM_MAX: usize = 200;

pub const SA_VERIFICATION_STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("VerificationState");
pub const SA_CANDIDATE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("CandidateId");
pub const SA_APPLICATION_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ApplicationId");
pub const SA_ATS_SYNC: SearchAttributeKey<String> = SearchAttributeKey::keyword("AtsSyncStatus");
pub const SA_REVIEW_DUE_AT: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("ReviewDueAt");
pub const SA_PAUSED: SearchAttributeKey<bool> = SearchAttributeKey::bool("VerificationPaused");
/// Set when a run starts, from its first event's `signals.job.region`.
pub const SA_REGION: SearchAttributeKey<String> = SearchAttributeKey::keyword("Region");

/// The search attributes the bridge registers (name, Temporal type).
pub const SEARCH_ATTRIBUTES: &[(&str, &str)] = &[
    ("VerificationState", "Keyword"),
    ("CandidateId", "Keyword"),
    ("ApplicationId", "Keyword"),
    ("AtsSyncStatus", "Keyword"),
    ("ReviewDueAt", "Datetime"),
    ("VerificationPaused", "Bool"),
    ("Region", "Keyword"),
];

pub const SYNCED: &str = "synced";
pub const WRITE_FAILED: &str = "failed";

/// Defaults of the operational knobs (see `Tuning` in the proto).
pub fn default_tuning() -> Tuning {
    Tuning {
        ats_retry_initial_ms: 1_000,
        ats_retry_max_ms: 300_000,
        deferral_ms: 3_600_000,
        continue_as_new_after: 2_000,
        audit_hold_ms: 5_000,
        quiet_close_ms: 86_400_000,
    }
}

#[workflow]
pub struct CandidateVerification {
    candidate_id: String,
    application_id: String,
    policy_yaml: String,
    policy: Result<Policy, String>,
    tuning: Tuning,
    machine: MachineState,
    seen: BTreeSet<String>,
    /// `seen` in the order it was filled, to forget the oldest first.
    seen_order: VecDeque<String>,
    view: StateView,
    timeline: VecDeque<TimelineEntry>,
    /// The absolute index of `timeline[0]` (entries before it were dropped
    /// once in the audit log).
    timeline_base: u64,
    pending: VecDeque<PendingWrite>,
    /// Bumped by every signal, so the run loop wakes up to check history size.
    signals: u64,
    /// Timeline entries already appended to the audit log (an absolute count).
    recorded: u32,
    /// Set when the history is full: the lanes stop at their next safe point.
    stopping: bool,
    /// Whether this run has [`WRITE_LOGS_PATCH`]: decided by the first of the
    /// run loop or a signal handler to ask, and kept for the whole run.
    write_logs: Option<bool>,
    /// Absolute timeline indices handed to an activity in flight to log.
    claimed: BTreeSet<u64>,
    /// An ATS write activity is in flight.
    ats_in_flight: bool,
    /// The (state, ATS sync) last upserted as search attributes in this run.
    upserted: Option<(String, String)>,
    /// Whether this run has [`REST_CLOSE_PATCH`] (decided with `write_logs`).
    rest_close: bool,
    /// A reopened run that has not read its seed yet: events wait in `inbox`.
    seeding: bool,
    inbox: VecDeque<EventSignal>,
    /// See `Snapshot.record_salt`.
    record_salt: String,
    /// Set by the rest lane: the run completes instead of continuing as new.
    closing: bool,
    /// Whether this run has [`REVIEW_PATCH`] (decided with `write_logs`).
    review_flow: bool,
    /// See `WorkflowInput.public_url`.
    public_url: String,
    /// The review due time last upserted as `ReviewDueAt` in this run.
    upserted_due: String,
    /// What the Temporal UI shows as current details, as last set.
    details_set: String,
    /// Whether this run has [`CONTROLS_PATCH`] (decided with `write_logs`).
    controls_flow: bool,
    /// The pause last upserted as `VerificationPaused` in this run.
    upserted_paused: Option<bool>,
    /// Writes the ATS refused for good, to re-drive (with [`CONTROLS_PATCH`]).
    failed: VecDeque<AtsWriteRequest>,
}

fn rfc3339(t: Option<SystemTime>) -> String {
    t.map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
}

/// The idempotency key of the ATS write caused by one event: stable across
/// retries, replays and continue-as-new.
pub fn write_idempotency_key(workflow_id: &str, event_id: &str) -> String {
    let h = Sha256::digest(format!("{workflow_id}\n{event_id}").as_bytes());
    format!("vb1-{}", &hex::encode(h)[..40])
}

impl CandidateVerification {
    fn entry(&self, at: &str, kind: &str, ev: &EventSignal) -> TimelineEntry {
        TimelineEntry {
            at: at.to_owned(),
            kind: kind.to_owned(),
            event_id: ev.event_id.clone(),
            state_before: self.machine.state.as_str().to_owned(),
            trace_id: ev.trace_id.clone(),
            event_type: ev.event_type.clone(),
            occurred_at: ev.occurred_at.clone(),
            received_at: ev.received_at.clone(),
            idempotency_key: ev.idempotency_key.clone(),
            delivery_attempt: ev.delivery_attempt,
            ..Default::default()
        }
    }

    /// The audit record id of the entry at absolute index `index`: its own
    /// when it has one, else its place in this workflow's timeline, so that a
    /// retried append (or a replay) names the same records.
    fn record_id(&self, workflow_id: &str, index: u64, t: &TimelineEntry) -> String {
        if !t.record_id.is_empty() {
            t.record_id.clone()
        } else if self.record_salt.is_empty() {
            decision_record_id(workflow_id, index as usize)
        } else {
            decision_record_id(&format!("{workflow_id}\n{}", self.record_salt), index as usize)
        }
    }

    /// Decide, once per run, which patches it has. The newest is asked first:
    /// a run that has it behaves as if it had the older ones, without their
    /// markers (each marker also costs an upsert of `TemporalChangeVersion`).
    /// Older histories answer no to it, and then to the ones they have.
    fn decide_patches(&mut self, patched: impl Fn(&str) -> bool) {
        if self.write_logs.is_some() {
            return;
        }
        let controls = patched(CONTROLS_PATCH);
        self.controls_flow = controls;
        let review = controls || patched(REVIEW_PATCH);
        self.review_flow = review;
        let rest = review || patched(REST_CLOSE_PATCH);
        self.rest_close = rest;
        self.seeding &= rest;
        self.write_logs = Some(rest || patched(WRITE_LOGS_PATCH));
    }

    /// A final state, nothing owed, everything in the audit log.
    fn at_rest(&self) -> bool {
        let final_state = match (&self.policy, self.view.state.parse::<VerificationState>()) {
            (Ok(p), Ok(s)) => p.successors(s).next().is_none(),
            _ => false,
        };
        // A write in flight is still in `pending`; an append in flight holds claims.
        final_state
            && self.pending.is_empty()
            && self.claimed.is_empty()
            && !self.has_unclaimed()
            && !self.seeding
            && self.inbox.is_empty()
    }

    /// Start from what the audit log says the closed runs held.
    fn seed(&mut self, seed: Snapshot, salt: String) {
        let mut view = seed.view.unwrap_or_default();
        view.candidate_id = self.view.candidate_id.clone();
        view.application_id = self.view.application_id.clone();
        view.policy_sha256 = self.view.policy_sha256.clone();
        view.policy_version = self.view.policy_version.clone();
        view.ats_sync = self.view.ats_sync.clone();
        if view.state.is_empty() {
            view.state = VerificationState::Unverified.as_str().into();
        }
        self.machine = MachineState {
            state: view.state.parse().unwrap_or(VerificationState::Unverified),
            last_occurred_at: DateTime::parse_from_rfc3339(&view.last_occurred_at).ok(),
        };
        self.view = view;
        self.seen = seed.seen_event_ids.iter().cloned().collect();
        self.seen_order = seed.seen_event_ids.into_iter().collect();
        self.record_salt = salt;
        self.seeding = false;
    }

    /// Claim the timeline entries not in the audit log and not claimed by an
    /// activity in flight: their absolute indices and their records.
    fn claim(&mut self, workflow_id: &str) -> (Vec<u64>, Vec<DecisionRecord>) {
        let skip = (self.recorded as u64).saturating_sub(self.timeline_base) as usize;
        let mut indices = vec![];
        let mut records = vec![];
        for (i, t) in self.timeline.iter().enumerate().skip(skip) {
            let index = self.timeline_base + i as u64;
            if t.logged || self.claimed.contains(&index) {
                continue;
            }
            // Runs before WRITE_LOGS_PATCH appended everything at once.
            if self.write_logs() && indices.len() == CLAIM_MAX {
                break;
            }
            indices.push(index);
            records.push(vbridge_activity_defs::entry_record(
                t,
                self.record_id(workflow_id, index, t),
                &self.candidate_id,
                &self.application_id,
            ));
        }
        self.claimed.extend(indices.iter().copied());
        (indices, records)
    }

    /// The activity that claimed `indices` ended: they are in the log when
    /// `logged`, else they are free to be claimed again.
    fn release(&mut self, indices: &[u64], logged: bool) {
        for index in indices {
            self.claimed.remove(index);
            if logged
                && let Some(t) = index.checked_sub(self.timeline_base).and_then(|i| self.timeline.get_mut(i as usize))
            {
                t.logged = true;
            }
        }
        self.advance_recorded();
    }

    /// Count the logged prefix of the timeline as recorded, and trim.
    fn advance_recorded(&mut self) {
        while let Some(t) =
            (self.recorded as u64).checked_sub(self.timeline_base).and_then(|i| self.timeline.get(i as usize))
            && t.logged
        {
            self.recorded += 1;
        }
        self.trim();
    }

    fn has_unclaimed(&self) -> bool {
        let skip = (self.recorded as u64).saturating_sub(self.timeline_base) as usize;
        self.timeline
            .iter()
            .enumerate()
            .skip(skip)
            .any(|(i, t)| !t.logged && !self.claimed.contains(&(self.timeline_base + i as u64)))
    }

    /// A write is in flight or queued: it will log what it finds unclaimed.
    fn write_owed(&self) -> bool {
        self.ats_in_flight || !self.pending.is_empty()
    }

    fn write_logs(&self) -> bool {
        self.write_logs == Some(true)
    }

    /// Forget what the audit log already holds past [`TIMELINE_KEEP`], and the
    /// oldest event ids past [`SEEN_KEEP`]. Never an entry not yet recorded.
    fn trim(&mut self) {
        while self.timeline.len() > TIMELINE_KEEP && self.timeline_base < self.recorded as u64 {
            self.timeline.pop_front();
            self.timeline_base += 1;
        }
        while self.seen_order.len() > SEEN_KEEP {
            if let Some(id) = self.seen_order.pop_front() {
                self.seen.remove(&id);
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            view: Some(self.view.clone()),
            seen_event_ids: self.seen_order.iter().cloned().collect(),
            timeline: self.timeline.iter().cloned().collect(),
            pending: self.pending.iter().cloned().collect(),
            recorded: self.recorded,
            timeline_base: self.timeline_base,
            record_salt: self.record_salt.clone(),
            failed: self.failed.iter().cloned().collect(),
        }
    }

    /// The input of the next run, when this one continues as new.
    fn next_input(&self) -> WorkflowInput {
        let mut view = self.view.clone();
        view.continued_as_new += 1;
        let mut snap = self.snapshot();
        snap.view = Some(view);
        WorkflowInput {
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            policy_yaml: self.policy_yaml.clone(),
            policy_sha256: self.view.policy_sha256.clone(),
            carried: Some(snap),
            tuning: Some(self.tuning),
            reopen: false,
            public_url: self.public_url.clone(),
            banner: self.view.banner.clone(),
        }
    }

    /// Queue an ATS write. With [`WRITE_LOGS_PATCH`], a write of the same
    /// check waiting behind the first owed one is replaced by this one, which
    /// carries the latest state: its fields over the replaced one's, so the
    /// ATS ends as if both had been written in order. The first owed write
    /// (in flight, deferred or about to go) is never replaced, so the ATS
    /// hears of a verification at once. The machine only moves forward, so
    /// the ATS never sees a state go backwards.
    fn queue_write(&mut self, mut req: AtsWriteRequest) {
        if self.controls_flow && !self.view.banner.is_empty() {
            req.fields.insert(BANNER_FIELD.into(), self.view.banner.clone());
        }
        let coalesce = self.write_logs();
        // Paused, nothing is in flight: the first queued write may be
        // replaced too, so that a resume writes the latest state once.
        let protected = if self.view.paused && !self.ats_in_flight { 0 } else { 1 };
        let queued = self
            .pending
            .iter_mut()
            .skip(protected)
            .find(|w| w.request.as_ref().is_some_and(|r| r.verification_check_id == req.verification_check_id));
        match queued {
            Some(w) if coalesce => {
                let old = w.request.take().unwrap_or_default();
                let mut fields = old.fields;
                fields.append(&mut req.fields);
                req.fields = fields;
                req.superseded = old.superseded + 1;
                w.request = Some(req);
            }
            _ => self.pending.push_back(PendingWrite { request: Some(req), rounds: 0 }),
        }
    }

    /// The search attributes that changed since the last upsert of this run
    /// (all of them on its first).
    fn changed_attributes(&mut self) -> Vec<SearchAttributeUpdate> {
        let now = (self.view.state.clone(), self.view.ats_sync.clone());
        let mut updates = vec![];
        match &self.upserted {
            Some((state, sync)) => {
                if *state != now.0 {
                    updates.push(SA_VERIFICATION_STATE.value_set(now.0.clone()));
                }
                if *sync != now.1 {
                    updates.push(SA_ATS_SYNC.value_set(now.1.clone()));
                }
            }
            None => {
                updates = self.sync_attributes();
                updates.push(SA_CANDIDATE_ID.value_set(self.candidate_id.clone()));
                updates.push(SA_APPLICATION_ID.value_set(self.application_id.clone()));
            }
        }
        self.upserted = Some(now);
        if let Some(paused) = self.paused_changed() {
            updates.push(SA_PAUSED.value_set(paused));
            self.upserted_paused = Some(paused);
        }
        if let Some(due) = self.review_due_changed() {
            if let Some(t) = rfc3339_timestamp(&due) {
                updates.push(SA_REVIEW_DUE_AT.value_set(t));
            }
            self.upserted_due = due;
        }
        updates
    }

    /// The pause, when it differs from the one last upserted (a run with
    /// [`CONTROLS_PATCH`] upserts it once, then on change).
    fn paused_changed(&self) -> Option<bool> {
        (self.controls_flow && self.upserted_paused != Some(self.view.paused)).then_some(self.view.paused)
    }

    /// The review due time, when it differs from the one last upserted.
    /// (Leaving review does not unset `ReviewDueAt`: this SDK sends an empty
    /// payload for an unset that the server refuses. Queries pair it with
    /// `VerificationState = 'needs_review'`.)
    fn review_due_changed(&self) -> Option<String> {
        let due = self.view.review.as_ref().map(|r| r.due_at.clone()).filter(|d| !d.is_empty())?;
        (self.review_flow && due != self.upserted_due).then_some(due)
    }

    fn attributes_changed(&self) -> bool {
        self.upserted.as_ref().is_none_or(|(state, sync)| *state != self.view.state || *sync != self.view.ats_sync)
            || self.review_due_changed().is_some()
            || self.paused_changed().is_some()
            || (self.review_flow && self.details() != self.details_set)
    }

    /// One line for the Temporal UI's current details: state, ATS sync, the
    /// review's due time, the last event.
    fn details(&self) -> String {
        let mut d = format!("state: {} · ATS: {}", self.view.state, self.view.ats_sync);
        if self.view.pending_writes > 0 {
            d.push_str(&format!(" ({} write(s) owed)", self.view.pending_writes));
        }
        if let Some(r) = &self.view.review {
            d.push_str(&format!(" · review in {} due {}", r.queue, r.due_at));
            if r.escalations > 0 {
                d.push_str(&format!(" (escalated {}x)", r.escalations));
            }
        }
        if self.view.paused {
            d.push_str(" · PAUSED: ATS writes held");
        }
        if !self.view.banner.is_empty() {
            d.push_str(&format!(" · banner \"{}\"", self.view.banner));
        }
        if !self.view.last_event_id.is_empty() {
            d.push_str(&format!(" · last event {}", self.view.last_event_id));
        }
        d
    }

    fn sync_attributes(&self) -> Vec<SearchAttributeUpdate> {
        vec![
            SA_VERIFICATION_STATE.value_set(self.view.state.clone()),
            SA_ATS_SYNC.value_set(self.view.ats_sync.clone()),
        ]
    }

    /// Apply one event through the state machine and queue its ATS write.
    fn apply(
        &mut self,
        now: &str,
        workflow_id: &str,
        now_time: Option<SystemTime>,
        ev: EventSignal,
    ) -> Vec<SearchAttributeUpdate> {
        let policy = match &self.policy {
            Ok(p) => p.clone(),
            Err(e) => {
                let mut t = self.entry(now, "refused", &ev);
                t.reason = format!("policy pinned in this workflow is invalid: {e}");
                self.timeline.push_back(t);
                return vec![];
            }
        };
        let outcome = machine::decide(&policy, &self.machine, &self.seen, &ev);
        let mut entry = self.entry(now, "", &ev);
        entry.reason = outcome.reason();
        if self.seen.insert(ev.event_id.clone()) {
            self.seen_order.push_back(ev.event_id.clone());
        }
        let mut updates = vec![];
        match outcome {
            Outcome::Applied { after, .. } => {
                entry.kind = "applied".into();
                entry.state_after = after.as_str().into();
                self.machine.state = after;
                self.machine.last_occurred_at = DateTime::<FixedOffset>::parse_from_rfc3339(&ev.occurred_at).ok();
                self.view.state = after.as_str().into();
                self.view.last_event_id = ev.event_id.clone();
                self.view.last_occurred_at = ev.occurred_at.clone();
                if !ev.verification_check_id.is_empty() {
                    self.view.verification_check_id = ev.verification_check_id.clone();
                }
                self.view.applied_events += 1;
                self.timeline.push_back(entry);
                let mut write = self.write_for(&policy, workflow_id, &ev);
                if self.review_flow {
                    let link = self.follow_review(
                        &policy,
                        now,
                        after,
                        &ev.reason_codes,
                        false,
                        &ev.evidence_pack_url,
                        (&ev.event_id, &ev.trace_id),
                    );
                    if let (Some(w), Some(link)) = (write.as_mut(), link) {
                        w.fields.insert(QUEUE_LINK_FIELD.into(), link);
                    }
                }
                if let Some(req) = write {
                    self.queue_write(req);
                    self.view.pending_writes = self.pending.len() as u32;
                    self.view.ats_sync = policy.pending_sync_status().to_owned();
                }
                if !self.write_logs() {
                    updates = self.sync_attributes();
                }
                if let Some(route) = policy.review_route(after).filter(|_| !self.review_flow)
                    && let Some(due) = now_time.map(|t| t + Duration::from_secs(route.sla_hours as u64 * 3600))
                {
                    let d = due.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                    updates
                        .push(SA_REVIEW_DUE_AT.value_set(Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)));
                }
            }
            ref o if self.review_flow && review::is_downgrade(o) => {
                // A webhook can never downgrade: the attempt is refused, and says so.
                entry.kind = "refused".into();
                entry.reason.push_str("; a webhook cannot downgrade (an admin's override can)");
                self.timeline.push_back(entry);
            }
            Outcome::Skipped(_) => {
                entry.kind = "skipped".into();
                self.timeline.push_back(entry);
            }
            Outcome::Refused(_) => {
                entry.kind = "refused".into();
                self.timeline.push_back(entry);
            }
        }
        updates
    }

    /// The ATS write an applied event causes: the policy's templated fields.
    fn write_for(&self, policy: &Policy, workflow_id: &str, ev: &EventSignal) -> Option<AtsWriteRequest> {
        let et: EventType = ev.event_type.parse().ok()?;
        let action = policy.action(et)?;
        let fields: BTreeMap<String, String> =
            action.fields.iter().filter_map(|(k, t)| t.render(ev).map(|v| (k.clone(), v))).collect();
        debug_assert!(fields.contains_key(STATE_FIELD));
        Some(self.write_request(policy, workflow_id, (&ev.event_id, &ev.trace_id), &ev.verification_check_id, fields))
    }

    /// An ATS write of `fields` to a check, caused by `(event id, trace id)`.
    fn write_request(
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

    /// Open or close the review item as the state moves to `to` (with
    /// [`REVIEW_PATCH`]): a state the policy routes opens an item, due
    /// `slaHours` from now; leaving it closes the item (the entry that moved
    /// the state says so). The console link when an item was opened.
    /// `codes` are the provider's (flagged when unlisted) unless `by_human`:
    /// an admin's override code is checked against its own list.
    #[allow(clippy::too_many_arguments)]
    fn follow_review(
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
            kind: "review_routed".into(),
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
    fn human_move(
        &mut self,
        now: &str,
        workflow_id: &str,
        kind: &str,
        to: VerificationState,
        actor: &str,
        code: &str,
        note: &str,
        (event_id, trace_id): (&str, &str),
    ) -> StateView {
        let Ok(policy) = self.policy.clone() else { return self.view.clone() };
        let before = self.machine.state;
        let reason = match kind {
            "review_decided" => format!("reviewer {actor} decided {to} ({code})"),
            _ => format!("{actor} overrode {before} -> {to} ({code})"),
        };
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: kind.to_owned(),
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
        match self.known_check_id() {
            Some(check) => {
                let req = self.write_request(&policy, workflow_id, (event_id, trace_id), &check, fields);
                self.queue_write(req);
                self.view.pending_writes = self.pending.len() as u32;
                self.view.ats_sync = policy.pending_sync_status().to_owned();
            }
            None => self.timeline.push_back(TimelineEntry {
                at: now.to_owned(),
                kind: "ats_failed".into(),
                event_id: event_id.to_owned(),
                state_after: to.as_str().into(),
                reason: "no verification check of this verification is known: the ATS cannot be written".into(),
                trace_id: trace_id.to_owned(),
                ..Default::default()
            }),
        }
        self.view.clone()
    }

    /// The ATS check this verification writes to: the last event's, else a
    /// queued write's, else one a logged write named (runs from before the
    /// view kept it).
    fn known_check_id(&self) -> Option<String> {
        Some(self.view.verification_check_id.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| {
                self.pending.iter().rev().find_map(|w| w.request.as_ref().map(|r| r.verification_check_id.clone()))
            })
            .or_else(|| {
                self.timeline
                    .iter()
                    .rev()
                    .find_map(|t| vbridge_activity_defs::check_of_target(&t.target).map(str::to_owned))
            })
            .filter(|c| !c.is_empty())
    }

    /// A human move's request id, or (an update sent without one, say from
    /// the Temporal CLI) its place in the timeline, so that two such moves
    /// never share an event id or an ATS idempotency key.
    fn request_id_or_place(&self, request_id: &str) -> String {
        if request_id.is_empty() {
            format!("t{}", self.timeline_base + self.timeline.len() as u64)
        } else {
            request_id.to_owned()
        }
    }

    /// A timeline entry of an operations control (banner, pause, resume).
    fn control_entry(&mut self, now: &str, kind: &str, actor: &str, reason: String, trace_id: &str) {
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: kind.to_owned(),
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            reason,
            trace_id: trace_id.to_owned(),
            override_actor: actor.to_owned(),
            override_timestamp: now.to_owned(),
            ..Default::default()
        });
    }

    /// The SLA passed with no decision: record the escalation, push the due
    /// time one more SLA out, and name the webhook to send.
    fn escalate(&mut self, now: &str, workflow_id: &str) -> Option<EscalationRequest> {
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
            kind: "escalated".into(),
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
    fn escalation_done(
        &mut self,
        now: String,
        req: &EscalationRequest,
        result: Result<vbridge_proto::EscalationResult, ActivityExecutionError>,
    ) {
        let (kind, reason) = match result {
            Ok(r) if r.http_status == 0 => {
                ("escalation_sent", "not sent: no escalation URL is configured (VBRIDGE_ESCALATION_URL)".to_owned())
            }
            Ok(r) => ("escalation_sent", format!("POSTed to {} with HTTP {}", r.url, r.http_status)),
            Err(e) => ("escalation_failed", failure_message(&e)),
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

    fn escalation_options(&self) -> ActivityOptions {
        let attempts = self.policy.as_ref().map(|p| p.max_retry_attempts()).unwrap_or(1);
        let retry = RetryPolicy::builder()
            .initial_interval(Duration::from_millis(self.tuning.ats_retry_initial_ms.max(1) as u64))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .maximum_attempts(attempts)
            .non_retryable_error_types([vbridge_activity_defs::ESCALATION_REJECTED])
            .build();
        let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(10));
        opts.retry_policy = Some(retry);
        opts
    }

    /// The validator's view of a reviewer's decision.
    fn check_decision(&self, d: &ReviewDecision) -> Result<VerificationState, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .map_err(|e| Refusal::new(review::CONFLICT, format!("the pinned policy is invalid: {e}")))?;
        // A reopened run that has not read its seed yet cannot judge the
        // state: the handler checks again once it has.
        let (state, in_review) = if self.seeding {
            (VerificationState::NeedsReview, true)
        } else {
            (self.machine.state, self.view.review.is_some() || !self.review_flow)
        };
        review::check_decision(policy, state, in_review, &d.decision, &d.reason_code, &d.actor, &d.note)
    }

    fn check_override(&self, o: &OverrideRequest) -> Result<VerificationState, Refusal> {
        let policy = self
            .policy
            .as_ref()
            .map_err(|e| Refusal::new(review::CONFLICT, format!("the pinned policy is invalid: {e}")))?;
        let state = if self.seeding { VerificationState::Unverified } else { self.machine.state };
        review::check_override(policy, state, &o.to, &o.reason_code, &o.actor, &o.note)
    }

    fn activity_options(&self) -> ActivityOptions {
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
        let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_millis(timeout_ms + 2_000));
        opts.retry_policy = Some(retry);
        opts
    }
}

/// What an update handler fails with (the SDK's form): a [`Refusal`]'s
/// `"{code}: {message}"`.
type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// `at` (RFC 3339) plus `hours`, as RFC 3339 UTC with milliseconds.
fn add_hours(at: &str, hours: f64) -> String {
    let t = DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
    let later = t + chrono::Duration::from_std(vbridge_core::policy::sla_duration(hours)).unwrap_or_default();
    later.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How long from `now` until `at` (RFC 3339); at least a millisecond.
fn until(at: &str, now: Option<SystemTime>) -> Duration {
    let (Ok(at), Some(now)) = (DateTime::parse_from_rfc3339(at), now) else { return Duration::from_millis(1) };
    let at: SystemTime = at.with_timezone(&Utc).into();
    at.duration_since(now).unwrap_or_default().max(Duration::from_millis(1))
}

fn rfc3339_timestamp(at: &str) -> Option<Timestamp> {
    let t = DateTime::parse_from_rfc3339(at).ok()?;
    Some(Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32))
}

/// The idempotency key of the `n`-th escalation of the review item routed at
/// `routed_at`: the same on every retry and replay.
pub fn escalation_key(workflow_id: &str, routed_at: &str, n: u32) -> String {
    let h = Sha256::digest(format!("{workflow_id}\nescalation\n{routed_at}\n{n}").as_bytes());
    format!("esc-{}", &hex::encode(h)[..40])
}

/// Options of the audit append: `maximum_attempts` 0 retries for ever.
fn audit_append_options(maximum_interval: Duration, maximum_attempts: u32) -> ActivityOptions {
    let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(30));
    opts.retry_policy = Some(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(200))
            .maximum_interval(maximum_interval)
            .maximum_attempts(maximum_attempts)
            .build(),
    );
    opts
}

/// The audit record id of the `ats_write` entry of one write, logged by the
/// write activity itself (with [`WRITE_LOGS_PATCH`]).
pub fn write_record_id(workflow_id: &str, idempotency_key: &str) -> String {
    let h = Sha256::digest(format!("{workflow_id}\nwritten\n{idempotency_key}").as_bytes());
    format!("dec-{}", &hex::encode(h)[..40])
}

/// The audit record id of the `index`-th timeline entry of a workflow.
pub fn decision_record_id(workflow_id: &str, index: usize) -> String {
    let h = Sha256::digest(format!("{workflow_id}\ntimeline\n{index}").as_bytes());
    format!("dec-{}", &hex::encode(h)[..40])
}

/// The application failure type carried anywhere in an activity failure chain.
fn failure_type(e: &ActivityExecutionError) -> Option<String> {
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

fn failure_message(e: &ActivityExecutionError) -> String {
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

#[workflow_methods]
impl CandidateVerification {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: WorkflowInput) -> Self {
        let policy = Policy::parse(&input.policy_yaml).map_err(|e| e.to_string());
        let seeding = input.reopen && input.carried.is_none();
        let carried = input.carried.unwrap_or_default();
        let mut view = carried.view.unwrap_or_default();
        view.candidate_id = input.candidate_id.clone();
        view.application_id = input.application_id.clone();
        view.policy_sha256 = input.policy_sha256.clone();
        if let Ok(p) = &policy {
            view.policy_version = p.version().to_owned();
        }
        if view.state.is_empty() {
            view.state = VerificationState::Unverified.as_str().into();
        }
        if view.ats_sync.is_empty() {
            view.ats_sync = SYNCED.into();
        }
        let machine = MachineState {
            state: view.state.parse().unwrap_or(VerificationState::Unverified),
            last_occurred_at: DateTime::parse_from_rfc3339(&view.last_occurred_at).ok(),
        };
        let mut tuning = input.tuning.unwrap_or_else(default_tuning);
        if tuning.continue_as_new_after == 0 {
            tuning.continue_as_new_after = default_tuning().continue_as_new_after;
        }
        if tuning.audit_hold_ms == 0 {
            tuning.audit_hold_ms = default_tuning().audit_hold_ms;
        }
        let pending: VecDeque<PendingWrite> = carried.pending.into_iter().collect();
        if view.banner.is_empty() && view.continued_as_new == 0 {
            view.banner = input.banner.clone();
        }
        let recorded = carried.recorded;
        view.pending_writes = pending.len() as u32;
        CandidateVerification {
            candidate_id: input.candidate_id,
            application_id: input.application_id,
            policy_yaml: input.policy_yaml,
            policy,
            tuning,
            machine,
            seen: carried.seen_event_ids.iter().cloned().collect(),
            seen_order: carried.seen_event_ids.into_iter().collect(),
            view,
            timeline: carried.timeline.into_iter().collect(),
            timeline_base: carried.timeline_base,
            pending,
            signals: 0,
            recorded,
            stopping: false,
            write_logs: None,
            claimed: BTreeSet::new(),
            ats_in_flight: false,
            upserted: None,
            rest_close: false,
            seeding,
            inbox: VecDeque::new(),
            record_salt: carried.record_salt,
            closing: false,
            review_flow: false,
            public_url: input.public_url,
            upserted_due: String::new(),
            details_set: String::new(),
            controls_flow: false,
            upserted_paused: None,
            failed: carried.failed.into_iter().collect(),
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        // The newest patch is asked first: a run that has it has the older
        // ones' behaviour too, without their markers (each patch marker also
        // costs an upsert of `TemporalChangeVersion`). Older histories answer
        // no to it and then to the ones they have, as they always did.
        ctx.state_mut(|s| s.decide_patches(|p| ctx.patched(p)));
        let write_logs = ctx.state(|s| s.write_logs());
        if ctx.state(|s| s.seeding) {
            Self::reopen(ctx).await?;
        }
        let (audit, lanes) =
            if write_logs { (true, true) } else { (ctx.patched(AUDIT_PATCH), ctx.patched(LANES_PATCH)) };
        let workflow_id = ctx.workflow_id().to_owned();
        if !write_logs {
            let initial = ctx.state(|s| {
                let mut u = s.sync_attributes();
                u.push(SA_CANDIDATE_ID.value_set(s.candidate_id.clone()));
                u.push(SA_APPLICATION_ID.value_set(s.application_id.clone()));
                u
            });
            ctx.upsert_search_attributes(initial);
        }
        if lanes {
            let ctx: &WorkflowContext<Self> = ctx;
            let (a, w) = if write_logs {
                // The ATS lane goes first in each activation, so that a write
                // claims the new entries before the audit lane looks at them.
                let (w, a, (), (), (), r) = temporalio_sdk::workflows::join!(
                    Self::ats_lane(ctx, &workflow_id),
                    Self::audit_lane(ctx, &workflow_id),
                    Self::history_watch(ctx),
                    Self::attributes_lane(ctx),
                    Self::rest_lane(ctx),
                    Self::review_lane(ctx, &workflow_id)
                );
                r?;
                (a, w)
            } else {
                let (a, w, ()) = temporalio_sdk::workflows::join!(
                    Self::audit_lane(ctx, &workflow_id),
                    Self::ats_lane(ctx, &workflow_id),
                    Self::history_watch(ctx)
                );
                (a, w)
            };
            a?;
            w?;
            // An update in the closing activation may have queued work: then
            // the run continues as new instead.
            if ctx.state(|s| s.closing && s.at_rest()) {
                return Ok(());
            }
            let next = ctx.state(|s| s.next_input());
            ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            return Ok(());
        }
        Self::run_legacy(ctx, audit, &workflow_id).await
    }

    /// A committed webhook event, forwarded by the relay. While a reopened run
    /// reads its seed, events wait in the inbox.
    #[signal]
    pub fn on_event(&mut self, ctx: &mut SyncWorkflowContext<Self>, ev: EventSignal) {
        let now_time = ctx.workflow_time();
        let now = rfc3339(now_time);
        let workflow_id = ctx.workflow_id().to_owned();
        // The first activation may run this before the run loop decides.
        self.decide_patches(|p| ctx.patched(p));
        self.signals += 1;
        if self.seeding {
            self.inbox.push_back(ev);
            return;
        }
        let updates = self.apply(&now, &workflow_id, now_time, ev);
        if !updates.is_empty() {
            ctx.upsert_search_attributes(updates);
        }
    }

    /// A reviewer's decision on the open review item (CONTRACT §5). The
    /// validator refuses, leaving no history event: a verification not in
    /// review, a decision other than verified or failed, a reason code
    /// outside the policy's list, a missing actor. Of two decisions at once,
    /// the second finds the item decided and fails with `conflict`.
    #[update_validator(review_decide)]
    fn validate_review_decide(
        &self,
        _ctx: &WorkflowContextView,
        d: &ReviewDecision,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_decision(d).map(|_| ()).map_err(Into::into)
    }

    #[update]
    pub async fn review_decide(ctx: &mut WorkflowContext<Self>, d: ReviewDecision) -> Result<StateView, HandlerError> {
        ctx.state_mut(|s| s.decide_patches(|p| ctx.patched(p)));
        let _ = ctx.wait_condition(|s| !s.seeding).await;
        let now = rfc3339(ctx.workflow_time());
        let workflow_id = ctx.workflow_id().to_owned();
        ctx.state_mut(|s| {
            let to = s.check_decision(&d).map_err(HandlerError::from)?;
            let event_id = format!("review:{}", s.request_id_or_place(&d.request_id));
            Ok(s.human_move(
                &now,
                &workflow_id,
                "review_decided",
                to,
                &d.actor,
                &d.reason_code,
                &d.note,
                (&event_id, &d.trace_id),
            ))
        })
    }

    /// An admin's override: any move the state machine does not make
    /// forward (`verified -> needs_review | failed`, `failed -> verified`,
    /// back to `pending` for a new check), with an actor, a reason code from
    /// `overrides.reasonCodes` (or the review list) and a note.
    #[update_validator(override_state)]
    fn validate_override(
        &self,
        _ctx: &WorkflowContextView,
        o: &OverrideRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_override(o).map(|_| ()).map_err(Into::into)
    }

    #[update(name = "override")]
    pub async fn override_state(
        ctx: &mut WorkflowContext<Self>,
        o: OverrideRequest,
    ) -> Result<StateView, HandlerError> {
        ctx.state_mut(|s| s.decide_patches(|p| ctx.patched(p)));
        let _ = ctx.wait_condition(|s| !s.seeding).await;
        let now = rfc3339(ctx.workflow_time());
        let workflow_id = ctx.workflow_id().to_owned();
        ctx.state_mut(|s| {
            let to = s.check_override(&o).map_err(HandlerError::from)?;
            let event_id = format!("override:{}", s.request_id_or_place(&o.request_id));
            Ok(s.human_move(
                &now,
                &workflow_id,
                "override",
                to,
                &o.actor,
                &o.reason_code,
                &o.note,
                (&event_id, &o.trace_id),
            ))
        })
    }

    /// The kill switch changed: with [`CONTROLS_PATCH`], write the banner
    /// into the ATS (or clear it) and carry it in every later write.
    #[signal(name = "gating")]
    pub fn on_gating(&mut self, ctx: &mut SyncWorkflowContext<Self>, g: GatingSignal) {
        self.decide_patches(|p| ctx.patched(p));
        if !self.controls_flow {
            return;
        }
        let banner = if g.enabled { String::new() } else { g.banner };
        if banner == self.view.banner {
            return;
        }
        let now = rfc3339(ctx.workflow_time());
        let workflow_id = ctx.workflow_id().to_owned();
        self.view.banner = banner.clone();
        let (switched, what) = if g.enabled { ("enabled", "removed") } else { ("disabled", "written") };
        let reason = format!("verification gating {switched} by {}: {}; ATS banner {what}", g.actor, g.reason);
        self.control_entry(&now, "banner", &g.actor, reason, "");
        let Ok(policy) = self.policy.clone() else { return };
        if let Some(check) = self.known_check_id() {
            let event_id = format!("banner:{}", self.timeline_base + self.timeline.len() as u64);
            let fields = BTreeMap::from([(BANNER_FIELD.to_owned(), banner)]);
            let req = self.write_request(&policy, &workflow_id, (&event_id, ""), &check, fields);
            self.queue_write(req);
            self.view.pending_writes = self.pending.len() as u32;
            self.view.ats_sync = policy.pending_sync_status().to_owned();
        }
    }

    /// Pause or resume the verification's ATS writes. Events are still taken,
    /// recorded and queued; queued writes of a check coalesce while paused,
    /// so a resume writes the latest state once.
    #[signal(name = "pause")]
    pub fn on_pause(&mut self, ctx: &mut SyncWorkflowContext<Self>, p: PauseSignal) {
        self.decide_patches(|patch| ctx.patched(patch));
        if p.paused == self.view.paused {
            return;
        }
        let now = rfc3339(ctx.workflow_time());
        self.view.paused = p.paused;
        if p.paused {
            // Merge what is queued now into one write per check.
            let queued: Vec<PendingWrite> = self.pending.drain(..).collect();
            for w in queued {
                match w.request {
                    Some(r) => self.queue_write(r),
                    None => self.pending.push_back(w),
                }
            }
            self.view.pending_writes = self.pending.len() as u32;
        }
        let kind = if p.paused { "paused" } else { "resumed" };
        self.control_entry(&now, kind, &p.actor, format!("{kind} by {}: {}", p.actor, p.reason), &p.trace_id);
    }

    /// Re-drive dead letters (one by its idempotency key, or all): each goes
    /// again as it was, with its own key, after the mapping or the ATS was
    /// fixed. One not held (superseded by a later write, or from a run
    /// before [`CONTROLS_PATCH`]) is recorded as not re-driven.
    #[signal(name = "retry_writes")]
    pub fn on_retry_writes(&mut self, ctx: &mut SyncWorkflowContext<Self>, r: RetryWrites) {
        self.decide_patches(|p| ctx.patched(p));
        let now = rfc3339(ctx.workflow_time());
        let (take, keep): (Vec<_>, Vec<_>) =
            self.failed.drain(..).partition(|f| r.idempotency_key.is_empty() || f.idempotency_key == r.idempotency_key);
        self.failed = keep.into_iter().collect();
        if take.is_empty() {
            let reason = format!("retry by {} ({}): no such dead letter held", r.actor, r.reason);
            self.control_entry(&now, "ats_retry", &r.actor, reason, "");
            return;
        }
        for w in take {
            let reason = format!("re-driven by {} ({}) with key {}", r.actor, r.reason, w.idempotency_key);
            self.control_entry(&now, "ats_retry", &r.actor, reason, &w.trace_id);
            if let Some(t) = self.timeline.back_mut() {
                t.event_id = w.event_id.clone();
                t.idempotency_key = w.idempotency_key.clone();
                t.target = vbridge_activity_defs::write_target(&w);
            }
            // As it was: not merged into another write, so its key stays its own.
            self.pending.push_back(PendingWrite { request: Some(w), rounds: 0 });
        }
        self.view.pending_writes = self.pending.len() as u32;
        if let Ok(p) = &self.policy {
            self.view.ats_sync = p.pending_sync_status().to_owned();
        }
    }

    #[query]
    pub fn state(&self, _ctx: &WorkflowContextView) -> StateView {
        self.view.clone()
    }

    #[query]
    pub fn timeline(&self, _ctx: &WorkflowContextView) -> Vec<TimelineEntry> {
        self.timeline.iter().cloned().collect()
    }
}

/// The lanes of a run (behind [`LANES_PATCH`]). Each stops at its next safe
/// point once `stopping` is set; the run then continues as new with what is
/// left, so nothing owed is lost.
impl CandidateVerification {
    fn history_full(ctx: &WorkflowContext<Self>) -> bool {
        ctx.history_length() >= ctx.state(|s| s.tuning.continue_as_new_after) || ctx.continue_as_new_suggested()
    }

    /// Watches the history grow with signals; asks the lanes to stop when full.
    async fn history_watch(ctx: &WorkflowContext<Self>) {
        let mut checked = 0u64;
        loop {
            let _ = ctx.wait_condition(|s| s.signals != checked || s.stopping).await;
            if ctx.state(|s| s.stopping) {
                return;
            }
            checked = ctx.state(|s| s.signals);
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
                return;
            }
        }
    }

    /// Appends the timeline to the audit log as it grows. Never waits for an
    /// ATS write for long (see the hold below). An append that keeps failing (the store is down) is
    /// retried in rounds, so that a continue-as-new is never held up for long.
    async fn audit_lane(ctx: &WorkflowContext<Self>, workflow_id: &str) -> WorkflowResult<()> {
        loop {
            ctx.wait_condition(|s| s.has_unclaimed() || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            // Entries that come while a write is owed are left to it (it logs
            // what it finds unclaimed) for up to `audit_hold_ms`; past that the
            // lane logs them itself, so an ATS in a long retry round never
            // keeps decisions out of the log for longer.
            let hold_ms = ctx.state(|s| s.tuning.audit_hold_ms);
            if ctx.state(|s| s.write_logs() && s.write_owed()) {
                let held_long = temporalio_sdk::workflows::select! {
                    _ = ctx.wait_condition(|s: &Self| !s.write_owed() || !s.has_unclaimed() || s.stopping) => false,
                    _ = ctx.timer(Duration::from_millis(hold_ms as u64)) => true,
                };
                if !held_long {
                    continue;
                }
            }
            let (claimed, records) = ctx.state_mut(|s| s.claim(workflow_id));
            if records.is_empty() {
                continue;
            }
            // Rounds of 10 attempts: see the Err arm below.
            let opts = audit_append_options(Duration::from_secs(10), 10);
            let appended =
                ctx.execute_activity(AuditActivities::append_decisions, DecisionBatch { records }, opts).await;
            ctx.state_mut(|s| s.release(&claimed, appended.is_ok()));
            // The log must not lose a decision: the entries stay, and are
            // carried over a continue-as-new, until they are stored.
            if appended.is_err() {
                temporalio_sdk::workflows::select! {
                    _ = ctx.timer(Duration::from_secs(30)) => {}
                    _ = ctx.wait_condition(|s: &Self| s.stopping) => {}
                }
            }
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
            }
        }
    }

    /// A reopened verification (a new run after one closed at rest): read the
    /// seed from the audit log, then apply the events that came meanwhile.
    /// Its records get the run id in their ids, so none reuses an old one.
    async fn reopen(ctx: &WorkflowContext<Self>) -> WorkflowResult<()> {
        let req = ctx
            .state(|s| SeedRequest { candidate_id: s.candidate_id.clone(), application_id: s.application_id.clone() });
        let seed =
            ctx.execute_activity(AuditActivities::seed, req, audit_append_options(Duration::from_secs(30), 0)).await?;
        let salt = ctx.run_id().to_owned();
        let workflow_id = ctx.workflow_id().to_owned();
        let now_time = ctx.workflow_time();
        let now = rfc3339(now_time);
        let updates = ctx.state_mut(|s| {
            s.seed(seed, salt);
            let mut updates = vec![];
            while let Some(ev) = s.inbox.pop_front() {
                updates.extend(s.apply(&now, &workflow_id, now_time, ev));
            }
            updates
        });
        if !updates.is_empty() {
            ctx.upsert_search_attributes(updates);
        }
        Ok(())
    }

    /// Closes a verification that stays at rest for `quiet_close_ms` (with
    /// [`REST_CLOSE_PATCH`]): the lanes stop and the run completes. An event
    /// in the same activation as the timer wins, and the run goes on.
    async fn rest_lane(ctx: &WorkflowContext<Self>) {
        let quiet = ctx.state(|s| s.tuning.quiet_close_ms);
        if !ctx.state(|s| s.rest_close) || quiet == 0 {
            return;
        }
        loop {
            let _ = ctx.wait_condition(|s| s.at_rest() || s.stopping).await;
            if ctx.state(|s| s.stopping) {
                return;
            }
            let signals = ctx.state(|s| s.signals);
            let quiet_done = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.signals != signals || !s.at_rest() || s.stopping) => false,
                _ = ctx.timer(Duration::from_millis(quiet as u64)) => true,
            };
            if quiet_done {
                ctx.state_mut(|s| {
                    s.closing = true;
                    s.stopping = true;
                });
                return;
            }
        }
    }

    /// The SLA timer of the open review item (with [`REVIEW_PATCH`]): when
    /// it fires with no decision, the item is escalated (an `escalated`
    /// entry, a signed webhook) and the timer set one more SLA out. A
    /// decision, an override or a new routing cancels it.
    async fn review_lane(ctx: &WorkflowContext<Self>, workflow_id: &str) -> WorkflowResult<()> {
        if !ctx.state(|s| s.review_flow) {
            return Ok(());
        }
        let key = |s: &Self| s.view.review.as_ref().map(|r| (r.routed_at.clone(), r.escalations));
        loop {
            ctx.wait_condition(|s| s.view.review.is_some() || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let (item, due) = ctx.state(|s| (key(s), s.view.review.as_ref().map(|r| r.due_at.clone())));
            let wait = until(&due.unwrap_or_default(), ctx.workflow_time());
            let mut timer = ctx.timer(wait);
            let fired = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s: &Self| s.stopping || key(s) != item) => false,
                _ = &mut timer => true,
            };
            if !fired {
                // Decided, overridden or re-routed: the SLA timer is cancelled
                // (a dropped timer would still fire, to no one).
                timer.cancel();
                continue;
            }
            let now = rfc3339(ctx.workflow_time());
            let Some(req) = ctx.state_mut(|s| s.escalate(&now, workflow_id)) else { continue };
            let opts = ctx.state(|s| s.escalation_options());
            let result = ctx.execute_activity(ReviewActivities::escalate, req.clone(), opts).await;
            let now = rfc3339(ctx.workflow_time());
            ctx.state_mut(|s| s.escalation_done(now, &req, result));
        }
    }

    /// Upserts the search attributes that changed, once per activation
    /// (with [`WRITE_LOGS_PATCH`]; before it, each change upserted its own).
    async fn attributes_lane(ctx: &WorkflowContext<Self>) {
        if !ctx.state(|s| s.write_logs()) {
            return;
        }
        loop {
            let _ = ctx.wait_condition(|s| s.attributes_changed() || s.stopping).await;
            let updates = ctx.state_mut(|s| s.changed_attributes());
            if !updates.is_empty() {
                ctx.upsert_search_attributes(updates);
            }
            if let Some(details) = ctx.state_mut(|s| {
                let d = s.details();
                (s.review_flow && d != s.details_set).then(|| {
                    s.details_set = d.clone();
                    d
                })
            }) {
                ctx.set_current_details(details);
            }
            if ctx.state(|s| s.stopping) {
                return;
            }
        }
    }

    /// Drains the queue of ATS writes in order. Never waits for the audit log.
    async fn ats_lane(ctx: &WorkflowContext<Self>, workflow_id: &str) -> WorkflowResult<()> {
        loop {
            ctx.wait_condition(|s| (!s.pending.is_empty() && !s.view.paused) || s.stopping).await?;
            if ctx.state(|s| s.stopping) {
                return Ok(());
            }
            let mut request = match ctx.state(|s| s.pending.front().cloned()) {
                Some(PendingWrite { request: Some(r), .. }) => r,
                _ => {
                    ctx.state_mut(|s| s.pending.pop_front());
                    continue;
                }
            };
            let write_logs = ctx.state(|s| s.write_logs());
            let mut claimed = vec![];
            if write_logs {
                let (indices, records) = ctx.state_mut(|s| {
                    s.ats_in_flight = true;
                    s.claim(workflow_id)
                });
                claimed = indices;
                request.records = records;
                request.write_record_id = write_record_id(workflow_id, &request.idempotency_key);
            }
            let opts = ctx.state(|s| s.activity_options());
            let result = ctx.execute_activity(AtsActivities::write_verification, request.clone(), opts).await;
            let now = rfc3339(ctx.workflow_time());
            let deferral = ctx.state_mut(|s| {
                s.ats_in_flight = false;
                s.release(&claimed, result.as_ref().is_ok_and(|r| r.records_logged));
                s.settle_write(now, &request, result)
            });
            if !write_logs {
                let attrs = ctx.state(|s| s.sync_attributes());
                ctx.upsert_search_attributes(attrs);
            }
            if Self::history_full(ctx) {
                ctx.state_mut(|s| s.stopping = true);
            }
            if let Some(wait) = deferral {
                temporalio_sdk::workflows::select! {
                    _ = ctx.timer(wait) => {}
                    _ = ctx.wait_condition(|s: &Self| s.stopping) => {}
                }
            }
        }
    }

    /// Record how a write ended; the wait before a new round when every
    /// attempt of this one was spent.
    fn settle_write(
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
                let mut entry = vbridge_activity_defs::written_entry(request, &done, now);
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
                    kind: "ats_failed".into(),
                    event_id: request.event_id.clone(),
                    reason: failure_message(&e),
                    trace_id: request.trace_id.clone(),
                    target: vbridge_activity_defs::write_target(request),
                    idempotency_key: request.idempotency_key.clone(),
                    state_after: request.fields.get(STATE_FIELD).cloned().unwrap_or_default(),
                    ..Default::default()
                });
                if self.controls_flow {
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
                    kind: "ats_deferred".into(),
                    event_id: request.event_id.clone(),
                    reason: format!(
                        "retry round {rounds} spent ({}); next round in {} s",
                        failure_message(&e),
                        wait_ms / 1000
                    ),
                    trace_id: request.trace_id.clone(),
                    target: vbridge_activity_defs::write_target(request),
                    ..Default::default()
                });
                Some(Duration::from_millis(wait_ms.max(1)))
            }
        }
    }

    /// The loop of runs recorded before [`LANES_PATCH`]: kept so that their
    /// histories replay. The audit append and the ATS write run side by side
    /// but each round waits for both.
    async fn run_legacy(ctx: &mut WorkflowContext<Self>, audit: bool, workflow_id: &str) -> WorkflowResult<()> {
        let mut signals_checked = 0u64;
        loop {
            ctx.wait_condition(|s| {
                !s.pending.is_empty() || s.signals != signals_checked || (audit && s.has_unclaimed())
            })
            .await?;
            signals_checked = ctx.state(|s| s.signals);
            if Self::history_full(ctx) {
                let next = ctx.state(|s| s.next_input());
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            }
            let (claimed, records) = if audit { ctx.state_mut(|s| s.claim(workflow_id)) } else { (vec![], vec![]) };
            let request = match ctx.state(|s| s.pending.front().cloned()) {
                Some(PendingWrite { request: None, .. }) => {
                    ctx.state_mut(|s| s.pending.pop_front());
                    None
                }
                Some(PendingWrite { request: Some(r), .. }) => Some(r),
                None => None,
            };
            let append = async {
                if records.is_empty() {
                    return Ok(());
                }
                // The log must not lose a decision: retry until it is stored.
                let opts = audit_append_options(Duration::from_secs(30), 0);
                ctx.execute_activity(AuditActivities::append_decisions, DecisionBatch { records }, opts).await
            };
            let write = async {
                match &request {
                    Some(r) => {
                        let opts = ctx.state(|s| s.activity_options());
                        Some(ctx.execute_activity(AtsActivities::write_verification, r.clone(), opts).await)
                    }
                    None => None,
                }
            };
            let (appended, written) = temporalio_sdk::workflows::join!(append, write);
            appended?;
            ctx.state_mut(|s| s.release(&claimed, true));
            let (Some(request), Some(result)) = (request, written) else { continue };
            let now = rfc3339(ctx.workflow_time());
            let deferral = ctx.state_mut(|s| s.settle_write(now, &request, result));
            let attrs = ctx.state(|s| s.sync_attributes());
            ctx.upsert_search_attributes(attrs);
            if let Some(wait) = deferral {
                ctx.timer(wait).await;
            }
        }
    }
}
