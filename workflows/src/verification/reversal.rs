//! Provider reversals (with [`REVERSAL_PATCH`](super::REVERSAL_PATCH)): a
//! provider that moves a decided verification to another decision
//! ([`vbridge_core::review::reversal`]) never moves the state or the ATS by
//! itself (the policy's `downgradeRequiresOverrideEvent`). The event is
//! recorded as `provider_reversal`, and a review item flagged
//! `provider_reversal` is opened in the policy's review queue, which holds the
//! interview gate (`reversal-pending`) until an admin's override closes it:
//! to the provider's state, or to the state kept (a confirmation).

use super::CandidateVerification;
use super::human::add_hours;
use vbridge_core::domain::VerificationState;
use vbridge_core::policy::Policy;
use vbridge_core::record::RecordKind;
use vbridge_core::review::PROVIDER_REVERSAL;
use vbridge_proto::{EventSignal, ReviewItem, TimelineEntry};

/// The queue and SLA of a reversal's item when the policy routes no state
/// to review (the seed's policy routes `needs_review` to `manual-review`).
pub const FALLBACK_QUEUE: &str = "provider-reversal";
pub const FALLBACK_SLA_HOURS: f64 = 12.0;

impl CandidateVerification {
    /// A provider's reversal is held: the open review item is flagged
    /// [`PROVIDER_REVERSAL`].
    pub(super) fn reversal_held(&self) -> bool {
        self.patches().reversal
            && self.view.review.as_ref().is_some_and(|r| r.flags.iter().any(|f| f == PROVIDER_REVERSAL))
    }

    /// Record the reversal (`entry`, the event's timeline entry) and open
    /// its review item. The state, the ATS and the last applied event stay.
    pub(super) fn hold_reversal(
        &mut self,
        policy: &Policy,
        now: &str,
        mut entry: TimelineEntry,
        ev: &EventSignal,
        to: VerificationState,
    ) {
        let from = self.machine.state;
        entry.kind = RecordKind::ProviderReversal.into();
        entry.state_after = from.as_str().into();
        entry.reason = format!(
            "provider reversal: the provider moved {from} -> {to}; {from} is kept (the ATS is not changed) \
             and the gate holds until an admin overrides to {to} or confirms {from}"
        );
        entry.detail = serde_json::json!({
            "provider_state": to.as_str(),
            "reason_codes": ev.reason_codes,
            "verification_check_id": ev.verification_check_id,
        })
        .to_string();
        self.timeline.push_back(entry);
        let (queue, sla_hours) = match policy.review_route(VerificationState::NeedsReview) {
            Some(r) => (r.queue.clone(), r.sla_hours),
            None => (FALLBACK_QUEUE.to_owned(), FALLBACK_SLA_HOURS),
        };
        let due = add_hours(now, sla_hours);
        let item = ReviewItem {
            queue: queue.clone(),
            reason_codes: ev.reason_codes.clone(),
            evidence_pack_url: ev.evidence_pack_url.clone(),
            routed_at: now.to_owned(),
            due_at: due.clone(),
            escalations: 0,
            flags: vec![PROVIDER_REVERSAL.to_owned()],
            event_id: ev.event_id.clone(),
            trace_id: ev.trace_id.clone(),
        };
        self.timeline.push_back(TimelineEntry {
            at: now.to_owned(),
            kind: RecordKind::ReviewRouted.into(),
            event_id: ev.event_id.clone(),
            state_before: from.as_str().into(),
            state_after: from.as_str().into(),
            reason: format!(
                "routed to {queue} (SLA {sla_hours} h), due {due}; flagged {PROVIDER_REVERSAL}: \
                 the provider moved {from} -> {to}; an admin's override closes it"
            ),
            trace_id: ev.trace_id.clone(),
            detail: serde_json::to_string(&item).unwrap_or_default(),
            ..Default::default()
        });
        self.view.review = Some(item);
    }
}
