//! The pure state of a verification: applying events through the state
//! machine, the timeline and what of it the audit log holds (claims, trims),
//! and what a run carries across continue-as-new. No context here: the
//! handlers and lanes pass in the time and the workflow id.

use super::attributes::SA_REVIEW_DUE_AT;
use super::patches::Patches;
use super::{
    CLAIM_MAX, CLAIM_MAX_BATCHED, CandidateVerification, QUEUE_LINK_FIELD, SEEN_KEEP, SYNCED, TIMELINE_KEEP,
    default_tuning,
};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};
use temporalio_common::search_attributes::{SearchAttributeUpdate, Timestamp};
use vbridge_activity_defs::entry_record;
use vbridge_core::domain::{EventType, VerificationState};
use vbridge_core::machine::{self, MachineState, Outcome};
use vbridge_core::policy::Policy;
use vbridge_core::record::RecordKind;
use vbridge_core::review;
use vbridge_proto::{DecisionRecord, EventSignal, PendingWrite, Snapshot, TimelineEntry, WorkflowInput};

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod reversal_tests;
#[cfg(test)]
mod tests;

pub(super) fn rfc3339(t: Option<SystemTime>) -> String {
    t.map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
}

/// The idempotency key of the ATS write caused by one event: stable across
/// retries, replays and continue-as-new.
pub fn write_idempotency_key(workflow_id: &str, event_id: &str) -> String {
    let h = Sha256::digest(format!("{workflow_id}\n{event_id}").as_bytes());
    format!("vb1-{}", &hex::encode(h)[..40])
}

/// The audit record id of the `ats_write` entry of one write, logged by the
/// write activity itself (with [`WRITE_LOGS_PATCH`](super::WRITE_LOGS_PATCH)).
pub fn write_record_id(workflow_id: &str, idempotency_key: &str) -> String {
    let h = Sha256::digest(format!("{workflow_id}\nwritten\n{idempotency_key}").as_bytes());
    format!("dec-{}", &hex::encode(h)[..40])
}

/// The audit record id of the `index`-th timeline entry of a workflow.
pub fn decision_record_id(workflow_id: &str, index: usize) -> String {
    let h = Sha256::digest(format!("{workflow_id}\ntimeline\n{index}").as_bytes());
    format!("dec-{}", &hex::encode(h)[..40])
}

impl CandidateVerification {
    /// A run's state from its input: a new verification's, or what the run
    /// before it carried across continue-as-new (see [`Self::next_input`]).
    pub(super) fn from_input(input: WorkflowInput) -> Self {
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
            patches: None,
            claimed: BTreeSet::new(),
            ats_in_flight: false,
            upserted: None,
            seeding,
            inbox: VecDeque::new(),
            record_salt: carried.record_salt,
            closing: false,
            public_url: input.public_url,
            upserted_due: String::new(),
            details_set: String::new(),
            upserted_paused: None,
            failed: carried.failed.into_iter().collect(),
            batch_floor: None,
            batched_extra: 0,
        }
    }

    /// Decide, once per run, which patches it has (see [`Patches::ask`]).
    /// A reopened run without [`REST_CLOSE_PATCH`](super::REST_CLOSE_PATCH) never seeds.
    pub(super) fn decide_patches(&mut self, patched: impl Fn(&str) -> bool) {
        if self.patches.is_none() {
            let patches = Patches::ask(patched);
            self.seeding &= patches.rest_close;
            self.patches = Some(patches);
        }
    }

    /// The patches this run has; none until decided.
    pub(super) fn patches(&self) -> Patches {
        self.patches.unwrap_or_default()
    }

    pub(super) fn entry(&self, at: &str, kind: RecordKind, ev: &EventSignal) -> TimelineEntry {
        TimelineEntry {
            at: at.to_owned(),
            kind: kind.into(),
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
    pub(super) fn record_id(&self, workflow_id: &str, index: u64, t: &TimelineEntry) -> String {
        if !t.record_id.is_empty() {
            t.record_id.clone()
        } else if self.record_salt.is_empty() {
            decision_record_id(workflow_id, index as usize)
        } else {
            decision_record_id(&format!("{workflow_id}\n{}", self.record_salt), index as usize)
        }
    }

    /// A final state, nothing owed, everything in the audit log.
    pub(super) fn at_rest(&self) -> bool {
        let final_state = match (&self.policy, self.view.state.parse::<VerificationState>()) {
            (Ok(p), Ok(s)) => p.successors(s).next().is_none(),
            _ => false,
        };
        // A write in flight is still in `pending`; an append in flight holds claims.
        // A held reversal keeps the run open: its SLA timer runs.
        final_state
            && !self.reversal_held()
            && self.pending.is_empty()
            && self.claimed.is_empty()
            && !self.has_unclaimed()
            && !self.seeding
            && self.inbox.is_empty()
            && !self.hiring_owed()
    }

    /// Start from what the audit log says the closed runs held.
    pub(super) fn seed(&mut self, seed: Snapshot, salt: String) {
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
    pub(super) fn claim(&mut self, workflow_id: &str) -> (Vec<u64>, Vec<DecisionRecord>) {
        let skip = (self.recorded as u64).saturating_sub(self.timeline_base) as usize;
        let mut indices = vec![];
        let mut records = vec![];
        for (i, t) in self.timeline.iter().enumerate().skip(skip) {
            let index = self.timeline_base + i as u64;
            if t.logged || self.claimed.contains(&index) {
                continue;
            }
            // Runs before WRITE_LOGS_PATCH appended everything at once.
            // A run that took batches claims more at once (none before had any).
            let max = if self.batched_extra > 0 { CLAIM_MAX_BATCHED } else { CLAIM_MAX };
            if self.patches().write_logs && indices.len() == max {
                break;
            }
            indices.push(index);
            records.push(entry_record(
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
    pub(super) fn release(&mut self, indices: &[u64], logged: bool) {
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
    pub(super) fn advance_recorded(&mut self) {
        while let Some(t) =
            (self.recorded as u64).checked_sub(self.timeline_base).and_then(|i| self.timeline.get(i as usize))
            && t.logged
        {
            self.recorded += 1;
        }
        self.trim();
    }

    pub(super) fn has_unclaimed(&self) -> bool {
        let skip = (self.recorded as u64).saturating_sub(self.timeline_base) as usize;
        self.timeline
            .iter()
            .enumerate()
            .skip(skip)
            .any(|(i, t)| !t.logged && !self.claimed.contains(&(self.timeline_base + i as u64)))
    }

    /// A write is in flight or queued: it will log what it finds unclaimed.
    pub(super) fn write_owed(&self) -> bool {
        self.ats_in_flight || !self.pending.is_empty()
    }

    /// Forget what the audit log already holds past [`TIMELINE_KEEP`](super::TIMELINE_KEEP), and
    /// the oldest event ids past [`SEEN_KEEP`](super::SEEN_KEEP). Never an entry not yet recorded.
    pub(super) fn trim(&mut self) {
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

    pub(super) fn snapshot(&self) -> Snapshot {
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
    pub(super) fn next_input(&self) -> WorkflowInput {
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

    /// Apply a batch of events in order, each through [`Self::apply`]. With
    /// [`BATCH_PATCH`](super::BATCH_PATCH), the writes a `backlog` queues may
    /// replace each other, the first too (see [`Self::queue_write`]); those
    /// queued before it keep their place. Any other batch queues its writes
    /// as that many signals would.
    pub(super) fn apply_batch(
        &mut self,
        now: &str,
        workflow_id: &str,
        now_time: Option<SystemTime>,
        events: Vec<EventSignal>,
        backlog: bool,
    ) -> Vec<SearchAttributeUpdate> {
        if self.patches().batch && backlog {
            self.batch_floor = Some(self.pending.len());
        }
        let mut updates = vec![];
        for ev in events {
            updates.extend(self.apply(now, workflow_id, now_time, ev));
        }
        self.batch_floor = None;
        updates
    }

    /// Apply one event through the state machine and queue its ATS write.
    pub(super) fn apply(
        &mut self,
        now: &str,
        workflow_id: &str,
        now_time: Option<SystemTime>,
        ev: EventSignal,
    ) -> Vec<SearchAttributeUpdate> {
        let policy = match &self.policy {
            Ok(p) => p.clone(),
            Err(e) => {
                let mut t = self.entry(now, RecordKind::Refused, &ev);
                t.reason = format!("policy pinned in this workflow is invalid: {e}");
                self.timeline.push_back(t);
                return vec![];
            }
        };
        // A request of the hiring loop is not a move either (see `hiring`).
        if self.patches().hiring {
            match ev.event_type.parse::<EventType>().ok() {
                Some(EventType::Requested) => {
                    self.request(&policy, now, workflow_id, &ev);
                    return vec![];
                }
                Some(EventType::Interview) => {
                    self.interview(&policy, now, workflow_id, &ev);
                    return vec![];
                }
                _ => {}
            }
        }
        // A retake or an expiry is a notice, never a move (see `notice`).
        if self.patches().notices
            && let Ok(et) = ev.event_type.parse::<EventType>()
            && et.is_notice()
        {
            self.notice(&policy, now, workflow_id, et, &ev);
            return vec![];
        }
        let outcome = machine::decide(&policy, &self.machine, &self.seen, &ev);
        // A provider moving a decided verification is held for an admin.
        let reversed = if self.patches().reversal {
            review::reversal(&policy, self.machine.state, &outcome, machine::target_state(&policy, &ev).ok())
        } else {
            None
        };
        // A webhook can never downgrade: the attempt is refused, and says so.
        let downgrade = self.patches().review && review::is_downgrade(&outcome);
        let kind = match &outcome {
            Outcome::Applied { .. } => RecordKind::Applied,
            _ if downgrade => RecordKind::Refused,
            Outcome::Skipped(_) => RecordKind::Skipped,
            Outcome::Refused(_) => RecordKind::Refused,
        };
        let mut entry = self.entry(now, kind, &ev);
        entry.reason = outcome.reason();
        if self.seen.insert(ev.event_id.clone()) {
            self.seen_order.push_back(ev.event_id.clone());
        }
        let mut updates = vec![];
        match outcome {
            Outcome::Applied { after, .. } => {
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
                if let Some(w) = write.as_mut() {
                    self.clear_action(&mut w.fields);
                }
                // A needs_review the policy steps up starts a verification
                // at the step-up tier instead of the review queue.
                let stepped = self.patches().hiring
                    && policy.review_route(after).is_some()
                    && self.step_up(&policy, now, workflow_id, &ev);
                if self.patches().review && !stepped {
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
                if !self.patches().write_logs {
                    updates = self.sync_attributes();
                }
                if let Some(route) = policy.review_route(after).filter(|_| !self.patches().review)
                    && let Some(due) = now_time.map(|t| t + Duration::from_secs(route.sla_hours as u64 * 3600))
                {
                    let d = due.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                    updates
                        .push(SA_REVIEW_DUE_AT.value_set(Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)));
                }
            }
            Outcome::Skipped(_) | Outcome::Refused(_) if reversed.is_some() => {
                if let Some(to) = reversed {
                    self.hold_reversal(&policy, now, entry, &ev, to);
                }
            }
            Outcome::Skipped(_) | Outcome::Refused(_) => {
                if downgrade {
                    entry.reason.push_str("; a webhook cannot downgrade (an admin's override can)");
                }
                self.timeline.push_back(entry);
                if self.patches().hiring {
                    self.queue_step_up_review(&policy, now, workflow_id, &ev);
                }
            }
        }
        updates
    }

    /// A human move's request id, or (an update sent without one, say from
    /// the Temporal CLI) its place in the timeline, so that two such moves
    /// never share an event id or an ATS idempotency key.
    pub(super) fn request_id_or_place(&self, request_id: &str) -> String {
        if request_id.is_empty() {
            format!("t{}", self.timeline_base + self.timeline.len() as u64)
        } else {
            request_id.to_owned()
        }
    }

    /// A timeline entry of an operations control (banner, pause, resume).
    pub(super) fn control_entry(&mut self, now: &str, kind: RecordKind, actor: &str, reason: String, trace_id: &str) {
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: kind.into(),
            state_before: self.view.state.clone(),
            state_after: self.view.state.clone(),
            reason,
            trace_id: trace_id.to_owned(),
            override_actor: actor.to_owned(),
            override_timestamp: now.to_owned(),
            ..Default::default()
        });
    }
}
