//! Provider notices (with [`NOTICES_PATCH`](super::NOTICES_PATCH)): a
//! provider that asks the candidate to retake the check
//! (`verification.retake_requested`) or says the session expired or was
//! abandoned (`verification.expired`). Neither is a move of the state
//! machine: the state, the gate and the last applied event stay. The notice
//! is recorded (`retake_requested`, `verification_expired`) so that the
//! timeline explains it; while the verification is undecided the ATS is told
//! what the candidate must do (`verification_action_required`: `retake`, or
//! `restart` after an expiry), and the next move clears it. Once decided,
//! the notice is recorded and nothing is written: a retake never flips a
//! decided state.

use super::{ACTION_FIELD, CandidateVerification};
use std::collections::BTreeMap;
use vbridge_core::domain::EventType;
use vbridge_core::policy::{Policy, STATE_FIELD};
use vbridge_core::record::RecordKind;
use vbridge_proto::EventSignal;

/// What the ATS shows after a retake: the candidate must take the check again.
pub const ACTION_RETAKE: &str = "retake";
/// What the ATS shows after an expiry: a new verification must be started.
pub const ACTION_RESTART: &str = "restart";

/// What one notice does, decided from the state alone (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEffect {
    /// Seen before: skipped, as a duplicate event is.
    Duplicate,
    /// Older than the last applied event: skipped as stale (the move after
    /// it already answered it).
    Stale,
    /// Decided: recorded, nothing written.
    Recorded,
    /// Undecided: recorded, and the ATS told `action`.
    Tell { action: &'static str },
}

/// The effect of a notice of type `et` on a verification in `decided` (a
/// state the policy lets nothing leave), given whether its id was `seen`
/// and whether it is older than the last applied event (`stale`).
pub fn effect(et: EventType, seen: bool, stale: bool, decided: bool) -> NoticeEffect {
    match () {
        _ if seen => NoticeEffect::Duplicate,
        _ if stale => NoticeEffect::Stale,
        _ if decided => NoticeEffect::Recorded,
        _ if et == EventType::Expired => NoticeEffect::Tell { action: ACTION_RESTART },
        _ => NoticeEffect::Tell { action: ACTION_RETAKE },
    }
}

impl CandidateVerification {
    /// Record a provider's notice and, while undecided, queue the ATS write
    /// that tells what the candidate must do.
    pub(super) fn notice(&mut self, policy: &Policy, now: &str, workflow_id: &str, et: EventType, ev: &EventSignal) {
        let seen = self.seen.contains(&ev.event_id);
        let stale = match (
            self.machine.last_occurred_at,
            chrono::DateTime::<chrono::FixedOffset>::parse_from_rfc3339(&ev.occurred_at).ok(),
        ) {
            (Some(last), Some(at)) => at < last,
            _ => false,
        };
        let state = self.machine.state;
        let decided = policy.successors(state).next().is_none();
        let effect = effect(et, seen, stale, decided);
        if !seen {
            self.seen.insert(ev.event_id.clone());
            self.seen_order.push_back(ev.event_id.clone());
        }
        let what = match et {
            EventType::Expired => "the provider's session expired or was abandoned",
            _ => "the provider asked the candidate to retake the check",
        };
        let (kind, reason) = match &effect {
            NoticeEffect::Duplicate => (RecordKind::Skipped, "duplicate event".to_owned()),
            NoticeEffect::Stale => (RecordKind::Skipped, format!("stale notice: {what} before the last applied event")),
            NoticeEffect::Recorded => {
                (notice_kind(et), format!("{what}; {state} is decided and kept, nothing is written to the ATS"))
            }
            NoticeEffect::Tell { action } => (
                notice_kind(et),
                format!("{what}; {state} is kept, the ATS shows {ACTION_FIELD}: {action} until the next move"),
            ),
        };
        let mut entry = self.entry(now, kind, ev);
        entry.state_after = state.as_str().into();
        entry.reason = reason;
        entry.detail = serde_json::json!({ "verification_check_id": ev.verification_check_id }).to_string();
        self.timeline.push_back(entry);
        let NoticeEffect::Tell { action } = effect else { return };
        // A session the bridge started expired: it starts a new one.
        if self.patches().hiring && et == EventType::Expired {
            self.restart_expired(now, workflow_id, ev);
        }
        // A check the bridge started is to be taken again: a fresh link.
        if self.patches().retake && et == EventType::RetakeRequested {
            self.mail_retake(now, ev);
        }
        self.view.action_required = action.to_owned();
        let check = Some(ev.verification_check_id.clone()).filter(|c| !c.is_empty()).or_else(|| self.known_check_id());
        let Some(check) = check else { return };
        let fields = BTreeMap::from([
            (STATE_FIELD.to_owned(), state.as_str().to_owned()),
            (ACTION_FIELD.to_owned(), action.to_owned()),
        ]);
        let req = self.write_request(policy, workflow_id, (&ev.event_id, &ev.trace_id), &check, fields);
        self.queue_write(req);
        self.view.pending_writes = self.pending.len() as u32;
        self.view.ats_sync = policy.pending_sync_status().to_owned();
    }

    /// A move (an applied event, a review decision, an override) ends what a
    /// notice asked: its write clears the ATS field.
    pub(super) fn clear_action(&mut self, fields: &mut BTreeMap<String, String>) {
        if self.patches().notices && !self.view.action_required.is_empty() {
            self.view.action_required.clear();
            fields.insert(ACTION_FIELD.to_owned(), String::new());
        }
    }
}

fn notice_kind(et: EventType) -> RecordKind {
    match et {
        EventType::Expired => RecordKind::VerificationExpired,
        _ => RecordKind::RetakeRequested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effect_table() {
        use EventType::{Expired, RetakeRequested as Retake};
        use NoticeEffect::*;
        // (type, seen, stale, decided) -> effect
        let rows = [
            ((Retake, false, false, false), Tell { action: ACTION_RETAKE }),
            ((Expired, false, false, false), Tell { action: ACTION_RESTART }),
            ((Retake, false, false, true), Recorded),
            ((Expired, false, false, true), Recorded),
            ((Retake, false, true, false), Stale),
            ((Expired, false, true, true), Stale),
            ((Retake, true, false, false), Duplicate),
            ((Expired, true, true, true), Duplicate),
        ];
        for ((et, seen, stale, decided), want) in rows {
            assert_eq!(effect(et, seen, stale, decided), want, "{et:?} seen={seen} stale={stale} decided={decided}");
        }
    }
}
