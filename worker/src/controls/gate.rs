//! The interview-scheduling gate: may this application's interview be
//! scheduled? Answered from a local projection of the audit log (one row per
//! application: its verification's state and ATS sync) and the kill switch,
//! never from Temporal or the ATS, so it answers in microseconds and keeps
//! answering when either is down.

use crate::store::projection::gate::Row;
use serde::Serialize;

/// The gate's answer (docs/contract.md §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Answer {
    pub allow_interview_scheduling: bool,
    pub state: Option<String>,
    /// `verified`, `pending`, `needs_review`, `failed`, `pending-sync`,
    /// `reversal-pending`, `gating-disabled`, `not-in-canary`,
    /// `unknown-application`.
    pub reason: String,
    /// The policy's `requireBannerInATS` while gating is off.
    pub banner: Option<String>,
    pub ats_sync: Option<String>,
}

pub const SYNCED: &str = "synced";
/// The reason while a provider's reversal waits for an admin.
pub const REVERSAL_PENDING: &str = "reversal-pending";

/// The answer for a row (or none) under the kill switch; `in_canary`:
/// whether canary gating holds this application (always, without a canary).
pub fn answer(gating_enabled: bool, banner: &str, row: Option<&Row>, in_canary: bool) -> Answer {
    let (state, ats_sync) = (row.map(|r| r.state.clone()), row.map(|r| r.ats_sync.clone()));
    if !gating_enabled {
        return Answer {
            allow_interview_scheduling: true,
            state,
            reason: "gating-disabled".into(),
            banner: Some(banner.to_owned()),
            ats_sync,
        };
    }
    if row.is_some() && !in_canary {
        // Verified and written like any other, but never a block.
        return Answer {
            allow_interview_scheduling: true,
            state,
            reason: "not-in-canary".into(),
            banner: None,
            ats_sync,
        };
    }
    let Some(r) = row else {
        return Answer {
            allow_interview_scheduling: false,
            state,
            reason: "unknown-application".into(),
            banner: None,
            ats_sync,
        };
    };
    // A provider that reversed a decided verification holds the gate, even
    // though the state (and the ATS) still say verified, until an admin
    // closes the reversal's review item.
    if r.reversal_held {
        return Answer {
            allow_interview_scheduling: false,
            state,
            reason: REVERSAL_PENDING.into(),
            banner: None,
            ats_sync,
        };
    }
    // The bridge's own state decides; a verified candidate whose ATS write
    // is still owed (the ATS is down) is let through, and says so.
    let (allow, reason) = match r.state.as_str() {
        "verified" if r.ats_sync == SYNCED => (true, "verified".to_owned()),
        "verified" => (true, "pending-sync".to_owned()),
        other => (false, other.to_owned()),
    };
    Answer { allow_interview_scheduling: allow, state, reason, banner: None, ats_sync }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, sync: &str) -> Row {
        Row {
            application_id: "a".into(),
            candidate_id: "c".into(),
            state: state.into(),
            ats_sync: sync.into(),
            reversal_held: false,
        }
    }

    #[test]
    fn the_gate_lets_verified_through_and_holds_the_rest() {
        let a = |r: Option<&Row>| {
            let x = answer(true, "B", r, true);
            (x.allow_interview_scheduling, x.reason)
        };
        assert_eq!(a(Some(&row("verified", "synced"))), (true, "verified".into()));
        assert_eq!(a(Some(&row("verified", "pending-sync"))), (true, "pending-sync".into()));
        assert_eq!(a(Some(&row("needs_review", "synced"))), (false, "needs_review".into()));
        assert_eq!(a(Some(&row("pending", "pending-sync"))), (false, "pending".into()));
        assert_eq!(a(Some(&row("failed", "synced"))), (false, "failed".into()));
        assert_eq!(a(None), (false, "unknown-application".into()));
        // A held reversal closes the gate whatever the state says.
        for (state, sync) in [("verified", "synced"), ("verified", "pending-sync"), ("failed", "synced")] {
            let held = Row { reversal_held: true, ..row(state, sync) };
            assert_eq!(a(Some(&held)), (false, REVERSAL_PENDING.into()), "{state}");
        }
        let out = answer(true, "B", Some(&row("failed", "synced")), false);
        assert_eq!((out.allow_interview_scheduling, out.reason.as_str()), (true, "not-in-canary"));
        let off = answer(false, "Verification gating disabled", Some(&row("failed", "synced")), false);
        assert!(off.allow_interview_scheduling);
        assert_eq!(
            (off.reason.as_str(), off.banner.as_deref()),
            ("gating-disabled", Some("Verification gating disabled"))
        );
    }
}
