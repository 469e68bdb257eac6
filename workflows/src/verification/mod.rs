//! `CandidateVerification`: one durable workflow per (candidate, application).
//!
//! It only orchestrates. Signals are applied at once through the pure state
//! machine ([`vbridge_core::machine`]); each applied event queues one ATS write; the
//! run loop drains that queue through the ATS activity, in order. Nothing here
//! reads the clock or does I/O: time is `workflow_time`, waiting is `timer`.
//!
//! Here: the workflow's state and its handlers (signals, updates, queries,
//! the run). The pure state logic is in `state` (events, timeline, claims,
//! continue-as-new), `writes` (the ATS queue), `human` (review and human
//! moves), `reversal` (provider reversals held for an admin), `notice`
//! (retakes and expiries: recorded, the state kept, the ATS told),
//! `hiring` (the hiring loop's requests, starts and invites) and
//! `attributes` (search attributes); the run's lanes in `lanes/`;
//! the loop of the oldest histories in `legacy`; which patches a run has in
//! `patches`.

mod attributes;
mod hiring;
mod human;
mod interview;
mod lanes;
mod legacy;
mod notice;
mod patches;
mod reversal;
mod state;
mod writes;

pub use attributes::{
    SA_APPLICATION_ID, SA_ATS_SYNC, SA_CANDIDATE_ID, SA_PAUSED, SA_REGION, SA_REVIEW_DUE_AT, SA_VERIFICATION_STATE,
    SEARCH_ATTRIBUTES,
};
pub use hiring::{MAIL_INVITE, MAIL_REINVITE, MAIL_RETAKE, RETAKES_MAILED, STARTS_KEEP, mail_key, start_key, steps_up};
pub use human::escalation_key;
pub use interview::{BYPASS_FIELD, MAIL_BYPASS, MAIL_PENDING, MAIL_REMINDER};
pub use notice::{ACTION_RESTART, ACTION_RETAKE};
pub use patches::{
    AUDIT_PATCH, BATCH_PATCH, CONTROLS_PATCH, HIRING_PATCH, LANES_PATCH, LOCAL_WRITE_PATCH, NOTICES_PATCH,
    REST_CLOSE_PATCH, RETAKE_PATCH, REVERSAL_PATCH, REVIEW_PATCH, WRITE_LOGS_PATCH,
};
pub use state::{decision_record_id, write_idempotency_key, write_record_id};

use lanes::audit_append_options;
use patches::{Older, Patches};
use state::rfc3339;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};
use vbridge_activity_defs::{AuditActivities, write_target};
use vbridge_core::machine::MachineState;
use vbridge_core::policy::Policy;
use vbridge_core::record::RecordKind;
use vbridge_proto::{
    AtsWriteRequest, EventBatch, EventSignal, GatingSignal, OverrideRequest, PauseSignal, PendingWrite, RetryWrites,
    ReviewDecision, SeedRequest, StateView, TimelineEntry, Tuning, WorkflowInput,
};

/// The names of the control signals (sent one by one or as a batch).
pub const GATING_SIGNAL: &str = "gating";
pub const PAUSE_SIGNAL: &str = "pause";
pub const ERASE_SIGNAL: &str = "erase";
pub const RETRY_WRITES_SIGNAL: &str = "retry_writes";
/// The name of the relay's signal carrying several events of one verification.
pub const EVENT_BATCH_SIGNAL: &str = "event_batch";
/// The most events one `event_batch` signal carries (the relay sends the
/// rest in the next): a bound on one signal's payload and on the work of one
/// workflow task.
pub const BATCH_EVENTS_MAX: usize = 64;

/// Dead letters a verification keeps to re-drive (the newest).
pub const FAILED_KEEP: usize = 20;

/// The ATS field the kill switch's banner goes to.
pub const BANNER_FIELD: &str = "verification_banner";

/// The ATS field a provider's notice (a retake, an expiry) goes to while the
/// verification is undecided: `retake` or `restart`; the next move clears it.
pub const ACTION_FIELD: &str = "verification_action_required";

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
/// The same bound in a run that took batches of events, whose entries come
/// many per signal: the audit lane logs them in fewer, larger appends, and
/// logs what is left in one more before the run continues as new.
pub const CLAIM_MAX_BATCHED: usize = 1_000;

/// A backlog's local write (with [`LOCAL_WRITE_PATCH`]) retries in the
/// worker while the delay is under this; a longer one waits on a workflow
/// timer, so that no backoff holds the workflow task open.
pub const LOCAL_WRITE_TIMER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
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
    /// The patches this run has: decided by the first of the run loop or a
    /// signal handler to ask, and kept for the whole run.
    patches: Option<Patches>,
    /// Absolute timeline indices handed to an activity in flight to log.
    claimed: BTreeSet<u64>,
    /// An ATS write activity is in flight.
    ats_in_flight: bool,
    /// The (state, ATS sync) last upserted as search attributes in this run.
    upserted: Option<(String, String)>,
    /// A reopened run that has not read its seed yet: events wait in `inbox`.
    seeding: bool,
    inbox: VecDeque<EventSignal>,
    /// See `Snapshot.record_salt`.
    record_salt: String,
    /// Set by the rest lane: the run completes instead of continuing as new.
    closing: bool,
    /// See `WorkflowInput.public_url`.
    public_url: String,
    /// The review due time last upserted as `ReviewDueAt` in this run.
    upserted_due: String,
    /// What the Temporal UI shows as current details, as last set.
    details_set: String,
    /// The pause last upserted as `VerificationPaused` in this run.
    upserted_paused: Option<bool>,
    /// Writes the ATS refused for good, to re-drive (with [`CONTROLS_PATCH`]).
    failed: VecDeque<AtsWriteRequest>,
    /// Events this run took beyond one per signal (a batch of n adds n − 1):
    /// counted with the history's length toward continue-as-new, so that a
    /// run takes no more events than it did one signal each, and what it
    /// carries stays as bounded.
    batched_extra: u32,
    /// While a backlog batch is applied (with [`BATCH_PATCH`]): the writes
    /// queued before it, which keep their place; the batch's own coalesce.
    batch_floor: Option<usize>,
}

/// What an update handler fails with (the SDK's form): a [`vbridge_core::review::Refusal`]'s
/// `"{code}: {message}"`.
type HandlerError = Box<dyn std::error::Error + Send + Sync>;

#[workflow_methods]
impl CandidateVerification {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: WorkflowInput) -> Self {
        Self::from_input(input)
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        // The newest patch is asked first: a run that has it has the older
        // ones' behaviour too, without their markers (each patch marker also
        // costs an upsert of `TemporalChangeVersion`). Older histories answer
        // no to it and then to the ones they have, as they always did.
        ctx.state_mut(|s| s.decide_patches(|p| ctx.patched(p)));
        let patches = ctx.state(|s| s.patches());
        let write_logs = patches.write_logs;
        if ctx.state(|s| s.seeding) {
            Self::reopen(ctx).await?;
        }
        // Runs from before `write_logs` ask the two oldest patches here.
        let Older { audit, lanes } = patches.older(|p| ctx.patched(p));
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
                let (w, a, (), (), (), r, h, m) = temporalio_sdk::workflows::join!(
                    Self::ats_lane(ctx, &workflow_id),
                    Self::audit_lane(ctx, &workflow_id),
                    Self::history_watch(ctx),
                    Self::attributes_lane(ctx),
                    Self::rest_lane(ctx),
                    Self::review_lane(ctx, &workflow_id),
                    Self::hiring_lane(ctx),
                    Self::reminder_lane(ctx)
                );
                r?;
                h?;
                m?;
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
        self.receive(ctx, vec![ev], false);
    }

    /// Events of this verification that waited in the outbox together, in
    /// commit order (the relay's batch, at most [`BATCH_EVENTS_MAX`]): each
    /// applied as if it came alone; with [`BATCH_PATCH`], a backlog's ATS
    /// writes of a check coalesce into one. While a reopened run reads its
    /// seed, they wait in the inbox.
    #[signal(name = "event_batch")]
    pub fn on_event_batch(&mut self, ctx: &mut SyncWorkflowContext<Self>, batch: EventBatch) {
        self.receive(ctx, batch.events, batch.backlog);
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
                RecordKind::ReviewDecided,
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
                RecordKind::Override,
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
        if !self.patches().controls {
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
        self.control_entry(&now, RecordKind::Banner, &g.actor, reason, "");
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
        let kind = if p.paused { RecordKind::Paused } else { RecordKind::Resumed };
        self.control_entry(&now, kind, &p.actor, format!("{kind} by {}: {}", p.actor, p.reason), &p.trace_id);
    }

    /// The candidate was erased (docs/privacy.md): every lane stops at its
    /// next safe point and the run continues as new, with nothing owed lost;
    /// the bridge then deletes the closed runs' histories. Nothing in the
    /// state needs clearing: the notes it holds are sealed under the
    /// candidate's destroyed key, and it holds no address. Runs from before
    /// the lanes (no safe points) ignore it.
    #[signal(name = "erase")]
    pub fn on_erase(&mut self, ctx: &mut SyncWorkflowContext<Self>, _e: vbridge_proto::EraseSignal) {
        self.decide_patches(|p| ctx.patched(p));
        self.stopping = true;
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
            self.control_entry(&now, RecordKind::AtsRetry, &r.actor, reason, "");
            return;
        }
        for w in take {
            let reason = format!("re-driven by {} ({}) with key {}", r.actor, r.reason, w.idempotency_key);
            self.control_entry(&now, RecordKind::AtsRetry, &r.actor, reason, &w.trace_id);
            if let Some(t) = self.timeline.back_mut() {
                t.event_id = w.event_id.clone();
                t.idempotency_key = w.idempotency_key.clone();
                t.target = write_target(&w);
            }
            // As it was: not merged into another write, so its key stays its own.
            self.pending.push_back(PendingWrite { request: Some(w), rounds: 0, local: false });
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

impl CandidateVerification {
    /// Take events from the relay (one, or a batch): applied in order at once,
    /// or held in the inbox while a reopened run reads its seed. One event
    /// is a batch of one that is no backlog: exactly what `on_event` always did.
    fn receive(&mut self, ctx: &mut SyncWorkflowContext<Self>, events: Vec<EventSignal>, backlog: bool) {
        let now_time = ctx.workflow_time();
        let now = rfc3339(now_time);
        let workflow_id = ctx.workflow_id().to_owned();
        // The first activation may run this before the run loop decides.
        self.decide_patches(|p| ctx.patched(p));
        self.signals += 1;
        self.batched_extra += events.len().saturating_sub(1) as u32;
        if self.seeding {
            self.inbox.extend(events);
            return;
        }
        let updates = self.apply_batch(&now, &workflow_id, now_time, events, backlog);
        if !updates.is_empty() {
            ctx.upsert_search_attributes(updates);
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
}
