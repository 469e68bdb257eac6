//! Provider reversals in the pure state, from tables: which events are held
//! for an admin, what they record, and how an admin's move closes them.

use super::tests::{WF, apply, decided, started, today, verification};
use super::*;
use vbridge_core::review::PROVIDER_REVERSAL;
use vbridge_proto::OverrideRequest;

const T0: &str = "2026-01-01T10:00:00Z";
const T1: &str = "2026-01-01T10:01:00Z";
const T5: &str = "2026-01-01T10:05:00Z";

fn before_reversals() -> Patches {
    Patches { reversal: false, ..today() }
}

/// (what, patches, events before, the event, the kinds of its entries, the
/// state after, whether a reversal is held after)
type Row = (&'static str, Patches, Vec<EventSignal>, EventSignal, &'static [&'static str], &'static str, bool);

#[test]
fn a_decided_verification_moved_by_its_provider_is_held_not_refused() {
    let verified = || vec![started("e1", T0), decided("e2", "verified", T1)];
    let failed = || vec![started("e1", T0), decided("e2", "failed", T1)];
    let rows: Vec<Row> = vec![
        (
            "verified -> failed",
            today(),
            verified(),
            decided("e3", "failed", T5),
            &["provider_reversal", "review_routed"],
            "verified",
            true,
        ),
        (
            "verified -> needs_review",
            today(),
            verified(),
            decided("e3", "needs_review", T5),
            &["provider_reversal", "review_routed"],
            "verified",
            true,
        ),
        (
            "failed -> needs_review",
            today(),
            failed(),
            decided("e3", "needs_review", T5),
            &["provider_reversal", "review_routed"],
            "failed",
            true,
        ),
        (
            "failed -> verified",
            today(),
            failed(),
            decided("e3", "verified", T5),
            &["provider_reversal", "review_routed"],
            "failed",
            true,
        ),
        (
            "verified again is no reversal",
            today(),
            verified(),
            decided("e3", "verified", T5),
            &["skipped"],
            "verified",
            false,
        ),
        (
            "started again after a decision is a refused downgrade",
            today(),
            verified(),
            started("e3", T5),
            &["refused"],
            "verified",
            false,
        ),
        (
            "a stale reversal is skipped",
            today(),
            verified(),
            decided("e3", "failed", T0),
            &["skipped"],
            "verified",
            false,
        ),
        (
            "a duplicate reversal is skipped",
            today(),
            verified(),
            decided("e2", "failed", T5),
            &["skipped"],
            "verified",
            false,
        ),
        (
            "pending -> failed is applied",
            today(),
            vec![started("e1", T0)],
            decided("e3", "failed", T5),
            &["applied"],
            "failed",
            false,
        ),
        (
            "needs_review -> verified is applied",
            today(),
            vec![started("e1", T0), decided("e2", "needs_review", T1)],
            decided("e3", "verified", T5),
            &["applied"],
            "verified",
            false,
        ),
        (
            "before the patch: verified -> failed refused",
            before_reversals(),
            verified(),
            decided("e3", "failed", T5),
            &["refused"],
            "verified",
            false,
        ),
        (
            "before the patch: verified -> needs_review refused",
            before_reversals(),
            verified(),
            decided("e3", "needs_review", T5),
            &["refused"],
            "verified",
            false,
        ),
    ];
    for (what, patches, before, ev, kinds, state, held) in rows {
        let mut v = verification(patches);
        for e in before {
            apply(&mut v, e);
        }
        let (entries, writes) = (v.timeline.len(), v.pending.len());
        apply(&mut v, ev);
        let got: Vec<&str> = v.timeline.iter().skip(entries).map(|t| t.kind.as_str()).collect();
        assert_eq!(got, kinds, "{what}");
        assert_eq!((v.view.state.as_str(), v.machine.state.as_str()), (state, state), "{what}");
        assert_eq!(v.reversal_held(), held, "{what}");
        if held {
            assert_eq!(v.pending.len(), writes, "{what}: the ATS keeps the old state");
            let item = v.view.review.as_ref().unwrap();
            assert_eq!(item.flags, vec![PROVIDER_REVERSAL], "{what}");
            assert_eq!(item.queue, "manual-review", "{what}");
            let rev = &v.timeline[entries];
            assert_eq!((rev.state_before.as_str(), rev.state_after.as_str()), (state, state), "{what}");
            assert!(rev.reason.contains("provider reversal"), "{what}: {}", rev.reason);
            assert!(!v.at_rest(), "{what}: a held reversal keeps the run open");
        }
    }
}

fn held() -> CandidateVerification {
    let mut v = verification(today());
    for e in [started("e1", T0), decided("e2", "verified", T1), decided("e3", "failed", T5)] {
        apply(&mut v, e);
    }
    assert!(v.reversal_held());
    v
}

fn admin(to: &str) -> OverrideRequest {
    OverrideRequest {
        to: to.into(),
        reason_code: "doc-anomaly".into(),
        actor: "ada".into(),
        note: "provider found fraud".into(),
        ..Default::default()
    }
}

#[test]
fn an_admins_override_or_confirmation_closes_the_held_reversal() {
    // (what, override to, the state after, the reason says)
    let rows = [
        ("override to the provider's state", "failed", "failed", "overrode verified -> failed"),
        ("confirmation of the state kept", "verified", "verified", "confirmed verified"),
        ("override back to review", "needs_review", "needs_review", "overrode verified -> needs_review"),
    ];
    for (what, to, after, says) in rows {
        let mut v = held();
        let to_state = v.check_override(&admin(to)).unwrap_or_else(|e| panic!("{what}: {e}"));
        v.human_move(
            "2026-01-01T12:00:00.000Z",
            WF,
            RecordKind::Override,
            to_state,
            "ada",
            "doc-anomaly",
            "",
            ("o1", ""),
        );
        assert_eq!(v.view.state, after, "{what}");
        assert!(!v.reversal_held(), "{what}: the item is closed");
        let entry = v.timeline.iter().rev().find(|t| t.kind == RecordKind::Override).unwrap();
        assert!(
            entry.reason.contains(says) && entry.reason.contains("closes the provider_reversal item"),
            "{what}: {}",
            entry.reason
        );
        let last = v.pending.back().and_then(|w| w.request.as_ref()).expect("a write is queued");
        assert_eq!(
            last.fields.get(vbridge_core::policy::STATE_FIELD).map(String::as_str),
            Some(after),
            "{what}: written"
        );
        assert_eq!(
            last.fields.get(crate::verification::OVERRIDE_ACTOR_FIELD).map(String::as_str),
            Some("ada"),
            "{what}"
        );
    }
    // Without a held reversal, keeping the state is still a conflict.
    let mut v = verification(today());
    for e in [started("e1", T0), decided("e2", "verified", T1)] {
        apply(&mut v, e);
    }
    assert_eq!(v.check_override(&admin("verified")).unwrap_err().code, vbridge_core::review::CONFLICT);
    // A reviewer cannot decide it: it is not in review.
    let d = vbridge_proto::ReviewDecision {
        decision: "failed".into(),
        reason_code: "doc-anomaly".into(),
        actor: "rita".into(),
        ..Default::default()
    };
    assert_eq!(held().check_decision(&d).unwrap_err().code, vbridge_core::review::CONFLICT);
}
