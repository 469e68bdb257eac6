//! The rules of manual review and overrides: pure functions of the policy and
//! the verification's state. The workflow's update validators and handlers
//! call them; the HTTP edge maps their [`Refusal`] codes to statuses.
//!
//! - A `needs_review` decision is routed to the policy's queue, whatever
//!   reason codes it carries: codes outside the policy's list (or none) are
//!   kept as given and flagged [`UNLISTED_REASON_CODE`] (docs/contract.md §2).
//! - A reviewer decides an item in review: to a state the policy allows from
//!   `needs_review`, with a reason code from the review list.
//! - Anything else a human does is an override (role admin), with a reason
//!   code from `overrides.reasonCodes` (or the review list).
//! - Every human move has an actor.

use crate::domain::VerificationState;
use crate::machine::{self, Outcome};
use crate::policy::Policy;
use std::fmt;

/// The flag of a review item whose provider codes are missing or unlisted.
pub const UNLISTED_REASON_CODE: &str = "unlisted_reason_code";
/// The flag of a review item opened by a provider's reversal of a decided
/// verification (see [`reversal`]); only an admin's override closes it.
pub const PROVIDER_REVERSAL: &str = "provider_reversal";

/// Longest note a human move may carry (it is kept in the audit log).
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest actor name.
pub const MAX_ACTOR_CHARS: usize = 256;

/// Why a human move is refused. `code` is the contract's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

/// The contract's codes of a refusal, and the HTTP status each maps to.
pub const CONFLICT: &str = "conflict";
pub const INVALID_REASON_CODE: &str = "invalid_reason_code";
pub const INVALID_REQUEST: &str = "invalid_request";

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }

    /// Parse the `"{code}: {message}"` form a workflow failure carries.
    pub fn from_failure(message: &str) -> Option<Refusal> {
        let (code, rest) = message.split_once(": ")?;
        let code = [CONFLICT, INVALID_REASON_CODE, INVALID_REQUEST].into_iter().find(|c| *c == code)?;
        Some(Refusal::new(code, rest))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

/// The flags of a routed item: [`UNLISTED_REASON_CODE`] when the provider
/// sent no code, or any code outside the policy's list.
pub fn flags(listed: &[String], given: &[String]) -> Vec<String> {
    if given.is_empty() || given.iter().any(|c| !listed.contains(c)) {
        vec![UNLISTED_REASON_CODE.to_owned()]
    } else {
        vec![]
    }
}

/// The console page of an item: the ATS's `reviewer_queue_link`.
pub fn queue_link(public_url: &str, candidate_id: &str, application_id: &str) -> String {
    format!("{}/console/reviews/{candidate_id}/{application_id}", public_url.trim_end_matches('/'))
}

fn actor_and_note(actor: &str, note: &str) -> Result<(), Refusal> {
    if actor.trim().is_empty() {
        return Err(Refusal::new(INVALID_REQUEST, "a decision needs an authenticated actor"));
    }
    if actor.chars().count() > MAX_ACTOR_CHARS {
        return Err(Refusal::new(INVALID_REQUEST, format!("the actor is longer than {MAX_ACTOR_CHARS} characters")));
    }
    check_note(note)
}

/// The longest a sealed note can be: [`MAX_NOTE_CHARS`] characters of four
/// bytes, its nonce and tag, in base64 after the prefix.
const MAX_SEALED_NOTE: usize = crate::seal::PREFIX.len() + (12 + MAX_NOTE_CHARS * 4 + 16).div_ceil(3) * 4;

/// A note's length: the edge checks the note as written, then seals it under
/// the candidate's key (docs/privacy.md); the workflow sees it sealed.
pub fn check_note(note: &str) -> Result<(), Refusal> {
    let too_long =
        if crate::seal::is_sealed(note) { note.len() > MAX_SEALED_NOTE } else { note.chars().count() > MAX_NOTE_CHARS };
    if too_long {
        return Err(Refusal::new(INVALID_REQUEST, format!("the note is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(())
}

fn reason_code(listed: &[String], code: &str, what: &str) -> Result<(), Refusal> {
    if listed.iter().any(|c| c == code) {
        return Ok(());
    }
    let message = if code.is_empty() {
        format!("{what} needs a reason code, one of: {}", listed.join(", "))
    } else {
        format!("\"{code}\" is not one of the policy's reason codes for {what}: {}", listed.join(", "))
    };
    Err(Refusal::new(INVALID_REASON_CODE, message))
}

/// A reviewer's decision on a verification now in `current`: the state it
/// moves to, or why not. `in_review`: an item is open.
pub fn check_decision(
    policy: &Policy,
    current: VerificationState,
    in_review: bool,
    decision: &str,
    code: &str,
    actor: &str,
    note: &str,
) -> Result<VerificationState, Refusal> {
    actor_and_note(actor, note)?;
    let to: VerificationState = decision
        .parse()
        .ok()
        .filter(|s| matches!(s, VerificationState::Verified | VerificationState::Failed))
        .ok_or_else(|| Refusal::new(INVALID_REQUEST, format!("decision \"{decision}\" is not verified or failed")))?;
    reason_code(policy.review_reason_codes(), code, "a review decision")?;
    if current != VerificationState::NeedsReview || !in_review {
        return Err(Refusal::new(CONFLICT, format!("the verification is {current}, not in review (decided already?)")));
    }
    if !policy.successors(current).any(|s| s == to) {
        return Err(Refusal::new(CONFLICT, format!("the policy does not allow {current} -> {to}")));
    }
    Ok(to)
}

/// An override of a verification now in `current` to `to`. While a
/// provider's reversal is held (`reversal_held`), an override to the state
/// it already has is the admin's confirmation of it (it closes the item);
/// otherwise it is a conflict.
pub fn check_override(
    policy: &Policy,
    current: VerificationState,
    reversal_held: bool,
    to: &str,
    code: &str,
    actor: &str,
    note: &str,
) -> Result<VerificationState, Refusal> {
    actor_and_note(actor, note)?;
    let to: VerificationState = to
        .parse()
        .ok()
        .filter(|s| policy.states().contains(s) && *s != VerificationState::Unverified)
        .ok_or_else(|| Refusal::new(INVALID_REQUEST, format!("\"{to}\" is not a state an override can move to")))?;
    reason_code(policy.override_reason_codes(), code, "an override")?;
    if to == current && !reversal_held {
        return Err(Refusal::new(CONFLICT, format!("the verification is {current} already")));
    }
    Ok(to)
}

/// Whether a webhook's target would move the state back: recorded as
/// refused ("a webhook can never downgrade"), not merely skipped.
pub fn is_downgrade(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Skipped(machine::Skip::Behind { .. }))
}

/// Whether a webhook event is a provider's reversal: the provider moves a
/// decided verification (one in a state the policy lets nothing leave:
/// `verified`, `failed`) to another decision (`verified`, `needs_review`,
/// `failed`) that the state machine will not apply. That is `verified ->
/// failed | needs_review` (the contract's reversals), `failed ->
/// needs_review` (backwards: the policy goes `needs_review -> failed`), and
/// `failed -> verified` (a decision turned around: no forward path either).
/// Each would otherwise be a bare refusal: a decided candidate the provider
/// no longer stands behind needs an admin. Not a reversal: a duplicate or a
/// stale event (the machine's earlier rules), the same decision again, an
/// event that is not a decision (`started` again after a decision), or any
/// move from a state not yet decided. `target`: the event's target state
/// ([`machine::target_state`]). Returns the provider's new state.
pub fn reversal(
    policy: &Policy,
    current: VerificationState,
    outcome: &Outcome,
    target: Option<VerificationState>,
) -> Option<VerificationState> {
    let refused_move = matches!(outcome, Outcome::Skipped(machine::Skip::Behind { .. }) | Outcome::Refused(_));
    let target = target?;
    let decided = policy.successors(current).next().is_none() && is_decision(current);
    (refused_move && decided && is_decision(target) && target != current).then_some(target)
}

fn is_decision(s: VerificationState) -> bool {
    matches!(s, VerificationState::Verified | VerificationState::NeedsReview | VerificationState::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;
    use VerificationState::*;

    fn policy() -> Policy {
        Policy::parse(DEFAULT_POLICY_YAML).unwrap()
    }

    #[test]
    fn unlisted_or_missing_codes_are_flagged_not_refused() {
        let listed = policy().review_reason_codes().to_vec();
        assert!(flags(&listed, &["liveness-low".into()]).is_empty());
        assert_eq!(flags(&listed, &[]), vec![UNLISTED_REASON_CODE]);
        assert_eq!(flags(&listed, &["liveness-low".into(), "made-up".into()]), vec![UNLISTED_REASON_CODE]);
    }

    #[test]
    fn decisions_need_review_a_listed_code_and_an_actor() {
        let p = policy();
        assert_eq!(check_decision(&p, NeedsReview, true, "verified", "doc-anomaly", "rita", ""), Ok(Verified));
        assert_eq!(check_decision(&p, NeedsReview, true, "failed", "doc-anomaly", "rita", ""), Ok(Failed));
        let code = |r: Result<VerificationState, Refusal>| r.unwrap_err().code;
        assert_eq!(
            code(check_decision(&p, NeedsReview, true, "verified", "looks-fine", "rita", "")),
            INVALID_REASON_CODE
        );
        assert_eq!(code(check_decision(&p, NeedsReview, true, "verified", "", "rita", "")), INVALID_REASON_CODE);
        assert_eq!(code(check_decision(&p, Verified, false, "failed", "doc-anomaly", "rita", "")), CONFLICT);
        assert_eq!(code(check_decision(&p, NeedsReview, true, "pending", "doc-anomaly", "rita", "")), INVALID_REQUEST);
        assert_eq!(code(check_decision(&p, NeedsReview, true, "verified", "doc-anomaly", " ", "")), INVALID_REQUEST);
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            code(check_decision(&p, NeedsReview, true, "verified", "doc-anomaly", "rita", &long)),
            INVALID_REQUEST
        );
    }

    #[test]
    fn overrides_move_anywhere_but_back_to_unverified_with_a_code() {
        let p = policy();
        assert_eq!(check_override(&p, Verified, false, "failed", "doc-anomaly", "ada", "appeal"), Ok(Failed));
        assert_eq!(check_override(&p, Failed, false, "verified", "doc-anomaly", "ada", ""), Ok(Verified));
        assert_eq!(check_override(&p, Verified, false, "pending", "doc-anomaly", "ada", ""), Ok(Pending));
        assert_eq!(check_override(&p, Verified, false, "needs_review", "doc-anomaly", "ada", ""), Ok(NeedsReview));
        let code = |r: Result<VerificationState, Refusal>| r.unwrap_err().code;
        assert_eq!(code(check_override(&p, Verified, false, "failed", "", "ada", "")), INVALID_REASON_CODE);
        assert_eq!(code(check_override(&p, Verified, false, "unverified", "doc-anomaly", "ada", "")), INVALID_REQUEST);
        assert_eq!(code(check_override(&p, Verified, false, "verified", "doc-anomaly", "ada", "")), CONFLICT);
        assert_eq!(code(check_override(&p, Verified, false, "failed", "doc-anomaly", "", "")), INVALID_REQUEST);
        // A held reversal: keeping the state is the admin's confirmation.
        assert_eq!(check_override(&p, Verified, true, "verified", "doc-anomaly", "ada", ""), Ok(Verified));
        assert_eq!(check_override(&p, Verified, true, "failed", "doc-anomaly", "ada", ""), Ok(Failed));
    }

    #[test]
    fn refusals_round_trip_through_a_failure_message() {
        let r = Refusal::new(CONFLICT, "decided already: x");
        assert_eq!(Refusal::from_failure(&r.to_string()), Some(r));
        assert_eq!(Refusal::from_failure("boom: no"), None);
    }

    #[test]
    fn webhook_downgrades_are_told_apart() {
        let p = policy();
        assert!(is_downgrade(&machine::transition(&p, Verified, NeedsReview)));
        assert!(!is_downgrade(&machine::transition(&p, Pending, NeedsReview)));
        assert!(!is_downgrade(&machine::transition(&p, Verified, Verified)));
    }

    /// Every (current, provider's target) pair under the seed's policy: the
    /// reversals are exactly the decided states moved to another decision.
    #[test]
    fn reversals_from_a_table() {
        let p = policy();
        let all = [Unverified, Pending, Verified, NeedsReview, Failed];
        let reversals = [(Verified, Failed), (Verified, NeedsReview), (Failed, NeedsReview), (Failed, Verified)];
        for from in all {
            for to in all {
                let out = machine::transition(&p, from, to);
                let want = reversals.contains(&(from, to)).then_some(to);
                assert_eq!(reversal(&p, from, &out, Some(to)), want, "{from} -> {to} ({out:?})");
            }
        }
        // Not a reversal: the machine's earlier rules, or an unreadable target.
        let dup = Outcome::Skipped(machine::Skip::Duplicate);
        assert_eq!(reversal(&p, Verified, &dup, Some(Failed)), None);
        let stale = Outcome::Skipped(machine::Skip::Stale { last_applied: "t".into() });
        assert_eq!(reversal(&p, Verified, &stale, Some(Failed)), None);
        assert_eq!(reversal(&p, Verified, &Outcome::Refused("bad".into()), None), None);
    }

    #[test]
    fn reversals_follow_a_changed_policy() {
        // A policy that lets a verified candidate fail later: then it is a
        // forward move, applied, not a reversal.
        let text = DEFAULT_POLICY_YAML.replacen(
            "  downgradeRequiresOverrideEvent",
            "    - from: \"verified\"\n      to: [\"failed\"]\n  downgradeRequiresOverrideEvent",
            1,
        );
        let p = Policy::parse(&text).unwrap();
        let out = machine::transition(&p, Verified, Failed);
        assert!(matches!(out, Outcome::Applied { .. }));
        assert_eq!(reversal(&p, Verified, &out, Some(Failed)), None);
        // Failed is still final; verified is not any more.
        assert_eq!(reversal(&p, Verified, &machine::transition(&p, Verified, NeedsReview), Some(NeedsReview)), None);
        assert_eq!(reversal(&p, Failed, &machine::transition(&p, Failed, Verified), Some(Verified)), Some(Verified));
    }
}
