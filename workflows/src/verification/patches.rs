//! Which of the workflow's patches a run has. Each patch changed the
//! commands a run issues; a history recorded before it must replay without
//! it. A run asks once (`ctx.patched`, the newest first) and keeps the
//! answer in one [`Patches`] value for the rest of the run.

/// Patch: timeline entries are appended to the audit log through an activity.
/// Histories recorded before it replay without those activities.
pub const AUDIT_PATCH: &str = "audit-log-v1";
/// Patch: the audit append and the ATS write run in lanes of their own, so
/// neither waits for the other (a write in a long retry round or a deferral
/// timer no longer holds decisions back from the log, and a store outage no
/// longer holds writes back); and what is carried across continue-as-new is
/// bounded ([`super::TIMELINE_KEEP`], [`super::SEEN_KEEP`]).
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

/// Patch: provider reversals. A webhook that moves a decided verification
/// to another decision (`vbridge_core::review::reversal`) is recorded as
/// `provider_reversal`, not a bare refusal, and opens a review item flagged
/// `provider_reversal` that holds the gate until an admin overrides or
/// confirms; the ATS keeps the old state. Implies [`CONTROLS_PATCH`].
pub const REVERSAL_PATCH: &str = "provider-reversal-v1";

/// Patch: provider notices. A retake (`verification.retake_requested`) or an
/// expiry (`verification.expired`) is recorded (`retake_requested`,
/// `verification_expired`) with the state kept; while the verification is
/// undecided the ATS is told what the candidate must do
/// (`verification_action_required`: `retake` or `restart`), cleared by the
/// next move. Implies [`REVERSAL_PATCH`].
pub const NOTICES_PATCH: &str = "provider-notices-v1";

/// Patch: the hiring loop. A `verification.requested` event (an ATS's
/// stage change into a trigger stage) is recorded (`verification_requested`)
/// and starts a verification at the provider at the tier the intake picked,
/// once per tier; the hiring lane creates it and mails the invite, recorded
/// as `verification_started` and `mail_sent`. Implies [`NOTICES_PATCH`].
pub const HIRING_PATCH: &str = "hiring-loop-v1";

/// Patch: a retake mails a fresh link. When the provider asks the candidate
/// to retake a check the bridge started (while undecided), the candidate is
/// mailed a new link (`retake`: Persona's one-time link is used up by the
/// first attempt), once per notice, at most [`super::RETAKES_MAILED`] per
/// start. Implies [`HIRING_PATCH`].
pub const RETAKE_PATCH: &str = "hiring-retake-v1";

/// Patch: batched events. The relay forwards the events of a verification
/// that waited in the outbox together as one `event_batch` signal; when
/// they are a backlog (the first waited past the relay's backlog age: an
/// outage, a catch-up, a storm), a run with this patch coalesces the
/// batch's own ATS writes of a check into one, the first owed one too (its
/// events are all in the past: the ATS needs the state they end in). A
/// write queued before the batch keeps its place, and a batch that is no
/// backlog queues its writes as that many signals would. Each event is
/// still applied, deduplicated and recorded as if it came alone. Runs
/// without it (started before) apply any batch as that many signals.
/// Implies [`RETAKE_PATCH`].
pub const BATCH_PATCH: &str = "event-batch-v1";

/// Patch: a backlog's ATS writes run as local activities. A write that a
/// backlog batch queued (or replaced) runs in the worker that holds the
/// workflow task, with the same retry policy, timeouts and idempotency key
/// as the activity; its result is one marker in that task's completion. A
/// regular activity costs the engine a task of its own: schedule, dispatch,
/// start, completion and another workflow task, about as much as the events
/// it writes for; in a backlog the engine is the bottleneck. Live writes stay
/// activities: a local activity holds its workflow task open, and signals
/// and reviewer decisions wait behind an open task (up to the workflow task
/// timeout's heartbeat), which a live verification should never do for a
/// slow ATS. A retry whose delay is over [`super::LOCAL_WRITE_TIMER_AFTER`]
/// waits on a workflow timer, so the task is not held through a backoff.
/// Implies [`BATCH_PATCH`].
pub const LOCAL_WRITE_PATCH: &str = "backlog-local-write-v1";

/// The patches a run has, asked once per run. A newer patch implies the
/// older ones (a run with [`LOCAL_WRITE_PATCH`] has [`BATCH_PATCH`]'s, a run
/// with [`BATCH_PATCH`] has [`RETAKE_PATCH`]'s; a run with [`RETAKE_PATCH`] has [`HIRING_PATCH`]'s, which has
/// [`NOTICES_PATCH`]'s): a run with [`NOTICES_PATCH`] has [`REVERSAL_PATCH`]'s, a run
/// with [`REVERSAL_PATCH`] has [`CONTROLS_PATCH`]'s, and a run with
/// [`CONTROLS_PATCH`] has the behaviour of
/// [`REVIEW_PATCH`], [`REST_CLOSE_PATCH`] and [`WRITE_LOGS_PATCH`] too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Patches {
    /// [`LOCAL_WRITE_PATCH`]: a backlog's writes run as local activities.
    pub local_write: bool,
    /// [`BATCH_PATCH`]: a batch's writes of a check coalesce into one.
    pub batch: bool,
    /// [`RETAKE_PATCH`]: a retake mails a fresh link.
    pub retake: bool,
    /// [`HIRING_PATCH`]: verifications started and candidates invited.
    pub hiring: bool,
    /// [`NOTICES_PATCH`]: retakes and expiries recorded, the ATS told.
    pub notices: bool,
    /// [`REVERSAL_PATCH`]: provider reversals held for an admin.
    pub reversal: bool,
    /// [`CONTROLS_PATCH`]: the kill switch's banner and dead letters.
    pub controls: bool,
    /// [`REVIEW_PATCH`]: manual review, its SLA timer, current details.
    pub review: bool,
    /// [`REST_CLOSE_PATCH`]: a run at rest closes; a later one seeds itself.
    pub rest_close: bool,
    /// [`WRITE_LOGS_PATCH`]: the write logs its decisions; writes coalesce.
    pub write_logs: bool,
}

/// The two oldest patches, asked only by runs without [`WRITE_LOGS_PATCH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Older {
    /// [`AUDIT_PATCH`]: timeline entries go to the audit log.
    pub audit: bool,
    /// [`LANES_PATCH`]: the audit append and the ATS write in lanes.
    pub lanes: bool,
}

impl Patches {
    /// Ask `patched` about the newest patch first: a run that has it asks
    /// no more (each marker also costs an upsert of `TemporalChangeVersion`).
    /// Older histories answer no to it, and then to the ones they have, in
    /// the order they always did.
    pub fn ask(patched: impl Fn(&str) -> bool) -> Patches {
        let local_write = patched(LOCAL_WRITE_PATCH);
        let batch = local_write || patched(BATCH_PATCH);
        let retake = batch || patched(RETAKE_PATCH);
        let hiring = retake || patched(HIRING_PATCH);
        let notices = hiring || patched(NOTICES_PATCH);
        let reversal = notices || patched(REVERSAL_PATCH);
        let controls = reversal || patched(CONTROLS_PATCH);
        let review = controls || patched(REVIEW_PATCH);
        let rest_close = review || patched(REST_CLOSE_PATCH);
        let write_logs = rest_close || patched(WRITE_LOGS_PATCH);
        Patches { local_write, batch, retake, hiring, notices, reversal, controls, review, rest_close, write_logs }
    }

    /// The two oldest patches: implied by [`WRITE_LOGS_PATCH`], else asked
    /// ([`AUDIT_PATCH`] first). The run asks right after [`Patches::ask`].
    pub fn older(&self, patched: impl Fn(&str) -> bool) -> Older {
        if self.write_logs {
            return Older { audit: true, lanes: true };
        }
        let audit = patched(AUDIT_PATCH);
        let lanes = patched(LANES_PATCH);
        Older { audit, lanes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// What a history with the markers `has` answers: the patches asked, in
    /// order, and the value built.
    fn ask(has: &[&str]) -> (Vec<String>, Patches, Older) {
        let asked = RefCell::new(vec![]);
        let patched = |p: &str| {
            asked.borrow_mut().push(p.to_owned());
            has.contains(&p)
        };
        let patches = Patches::ask(patched);
        let older = patches.older(patched);
        (asked.into_inner(), patches, older)
    }

    #[test]
    fn the_newest_patch_a_history_has_is_asked_first_and_implies_the_older() {
        let all = [
            LOCAL_WRITE_PATCH,
            BATCH_PATCH,
            RETAKE_PATCH,
            HIRING_PATCH,
            NOTICES_PATCH,
            REVERSAL_PATCH,
            CONTROLS_PATCH,
            REVIEW_PATCH,
            REST_CLOSE_PATCH,
            WRITE_LOGS_PATCH,
            AUDIT_PATCH,
            LANES_PATCH,
        ];
        let p = |local_write, batch, retake, hiring, notices, reversal, controls, review, rest_close, write_logs| {
            Patches { local_write, batch, retake, hiring, notices, reversal, controls, review, rest_close, write_logs }
        };
        let o = |audit, lanes| Older { audit, lanes };
        // (markers in the history, patches asked in order, the answer)
        let (f, t) = (false, true);
        let table: &[(&[&str], &[&str], Patches, Older)] = &[
            (&[LOCAL_WRITE_PATCH], &all[..1], p(t, t, t, t, t, t, t, t, t, t), o(t, t)),
            (&[BATCH_PATCH], &all[..2], p(f, t, t, t, t, t, t, t, t, t), o(t, t)),
            (&[RETAKE_PATCH], &all[..3], p(f, f, t, t, t, t, t, t, t, t), o(t, t)),
            (&[HIRING_PATCH], &all[..4], p(f, f, f, t, t, t, t, t, t, t), o(t, t)),
            (&[NOTICES_PATCH], &all[..5], p(f, f, f, f, t, t, t, t, t, t), o(t, t)),
            (&[REVERSAL_PATCH], &all[..6], p(f, f, f, f, f, t, t, t, t, t), o(t, t)),
            (&[CONTROLS_PATCH], &all[..7], p(f, f, f, f, f, f, t, t, t, t), o(t, t)),
            (&[REVIEW_PATCH], &all[..8], p(f, f, f, f, f, f, f, t, t, t), o(t, t)),
            (&[REST_CLOSE_PATCH], &all[..9], p(f, f, f, f, f, f, f, f, t, t), o(t, t)),
            (&[WRITE_LOGS_PATCH], &all[..10], p(f, f, f, f, f, f, f, f, f, t), o(t, t)),
            (&[AUDIT_PATCH, LANES_PATCH], &all, p(f, f, f, f, f, f, f, f, f, f), o(t, t)),
            (&[AUDIT_PATCH], &all, p(f, f, f, f, f, f, f, f, f, f), o(t, f)),
            (&[], &all, p(f, f, f, f, f, f, f, f, f, f), o(f, f)),
        ];
        for (has, want_asked, want, want_older) in table {
            let (asked, patches, older) = ask(has);
            assert_eq!(asked, *want_asked, "asked of a history with {has:?}");
            assert_eq!((patches, older), (*want, *want_older), "a history with {has:?}");
        }
    }
}
