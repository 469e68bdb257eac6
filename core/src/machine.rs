//! The verification state machine: a pure function of (policy, state, event).
//!
//! Rules, in order:
//! 1. an event id already seen is skipped (duplicate);
//! 2. an event older (`occurred_at`) than the last applied one is skipped (stale);
//! 3. the event's target state is the policy's `verification_state` template
//!    rendered for the event;
//! 4. a target reachable forward through `allowedTransitions` is applied, along
//!    the shortest path (a decision that arrives before its `started` event
//!    passes through the states it implies);
//! 5. a target equal to the current state, or behind it, is skipped: states
//!    only move forward (downgrades need an override event);
//! 6. anything else is refused: the policy does not allow it.

use crate::domain::{EventType, VerificationState};
use crate::policy::Policy;
use chrono::{DateTime, FixedOffset};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use vbridge_proto::EventSignal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineState {
    pub state: VerificationState,
    pub last_occurred_at: Option<DateTime<FixedOffset>>,
}

impl Default for MachineState {
    fn default() -> Self {
        MachineState { state: VerificationState::Unverified, last_occurred_at: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Move to `after`; `implied` lists the states passed through on the way.
    Applied {
        before: VerificationState,
        after: VerificationState,
        implied: Vec<VerificationState>,
    },
    Skipped(Skip),
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Duplicate,
    Stale { last_applied: String },
    AlreadyInState(VerificationState),
    Behind { current: VerificationState, target: VerificationState },
}

impl Outcome {
    /// The reason written into the timeline for a skipped or refused event.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Applied { implied, .. } if implied.is_empty() => "allowed transition".into(),
            Outcome::Applied { implied, .. } => format!(
                "allowed transition through implied {}",
                implied.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Outcome::Skipped(Skip::Duplicate) => "duplicate event id".into(),
            Outcome::Skipped(Skip::Stale { last_applied }) => {
                format!("stale: occurred before the last applied event ({last_applied})")
            }
            Outcome::Skipped(Skip::AlreadyInState(s)) => format!("already {s}"),
            Outcome::Skipped(Skip::Behind { current, target }) => {
                format!("would move back from {current} to {target}; downgrades need an override event")
            }
            Outcome::Refused(r) => r.clone(),
        }
    }
}

/// Decide what one event does. `seen` holds the event ids already handled.
pub fn decide(policy: &Policy, st: &MachineState, seen: &BTreeSet<String>, ev: &EventSignal) -> Outcome {
    if seen.contains(&ev.event_id) {
        return Outcome::Skipped(Skip::Duplicate);
    }
    let occurred = match DateTime::parse_from_rfc3339(&ev.occurred_at) {
        Ok(t) => t,
        Err(_) => {
            return Outcome::Refused(format!("occurred_at \"{}\" is not RFC 3339", ev.occurred_at));
        }
    };
    if let Some(last) = st.last_occurred_at
        && occurred < last
    {
        return Outcome::Skipped(Skip::Stale { last_applied: last.to_rfc3339() });
    }
    let target = match target_state(policy, ev) {
        Ok(t) => t,
        Err(reason) => return Outcome::Refused(reason),
    };
    transition(policy, st.state, target)
}

/// The state an event moves to, per the policy's `verification_state` template.
pub fn target_state(policy: &Policy, ev: &EventSignal) -> Result<VerificationState, String> {
    let et: EventType = ev.event_type.parse().map_err(|e: crate::domain::ParseError| e.problem)?;
    let action = policy.action(et).ok_or_else(|| format!("the policy has no action for {}", et.as_str()))?;
    let rendered = action.target_state.render(ev).ok_or_else(|| format!("{} has no target state", et.as_str()))?;
    let target: VerificationState = rendered.parse().map_err(|e: crate::domain::ParseError| e.problem)?;
    if !policy.states().contains(&target) {
        return Err(format!("state {target} is not in the policy's allowedStates"));
    }
    Ok(target)
}

/// The pure transition rule between two states under the policy.
pub fn transition(policy: &Policy, from: VerificationState, to: VerificationState) -> Outcome {
    if from == to {
        return Outcome::Skipped(Skip::AlreadyInState(from));
    }
    if let Some(path) = shortest_path(policy, from, to) {
        let implied = path[1..path.len() - 1].to_vec();
        return Outcome::Applied { before: from, after: to, implied };
    }
    if shortest_path(policy, to, from).is_some() {
        return Outcome::Skipped(Skip::Behind { current: from, target: to });
    }
    Outcome::Refused(format!("transition {from} -> {to} is not allowed by the policy"))
}

fn shortest_path(policy: &Policy, from: VerificationState, to: VerificationState) -> Option<Vec<VerificationState>> {
    let mut prev: BTreeMap<VerificationState, VerificationState> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![to];
            let mut cur = to;
            while let Some(p) = prev.get(&cur) {
                path.push(*p);
                cur = *p;
            }
            path.reverse();
            return Some(path);
        }
        for next in policy.successors(n) {
            if seen.insert(next) {
                prev.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;
    use VerificationState::*;

    fn policy() -> Policy {
        Policy::parse(DEFAULT_POLICY_YAML).unwrap()
    }

    fn ev(id: &str, ty: &str, decision: &str, at: &str) -> EventSignal {
        EventSignal {
            event_id: id.into(),
            event_type: ty.into(),
            decision_state: decision.into(),
            occurred_at: at.into(),
            ..Default::default()
        }
    }

    /// The table comes from the policy itself: every listed transition must be
    /// applied directly, and every pair the policy does not connect must not be.
    #[test]
    fn table_from_policy() {
        let p = policy();
        let mut direct = BTreeSet::new();
        for t in &p.raw().state_machine.allowed_transitions {
            for to in &t.to {
                direct.insert((t.from.parse::<VerificationState>().unwrap(), to.parse::<VerificationState>().unwrap()));
            }
        }
        assert!(!direct.is_empty());
        for from in p.states().iter().copied() {
            for to in p.states().iter().copied() {
                let out = transition(&p, from, to);
                if direct.contains(&(from, to)) {
                    assert_eq!(out, Outcome::Applied { before: from, after: to, implied: vec![] }, "{from} -> {to}");
                } else if from == to {
                    assert_eq!(out, Outcome::Skipped(Skip::AlreadyInState(from)));
                } else if let Outcome::Applied { implied, .. } = &out {
                    // Only allowed as a walk along listed transitions.
                    let mut walk = vec![from];
                    walk.extend(implied.iter().copied());
                    walk.push(to);
                    for w in walk.windows(2) {
                        assert!(direct.contains(&(w[0], w[1])), "{from} -> {to} walks an unlisted edge {:?}", w);
                    }
                }
            }
        }
    }

    #[test]
    fn named_cases() {
        let p = policy();
        assert_eq!(
            transition(&p, Unverified, Verified),
            Outcome::Applied { before: Unverified, after: Verified, implied: vec![Pending] }
        );
        assert_eq!(
            transition(&p, Verified, Pending),
            Outcome::Skipped(Skip::Behind { current: Verified, target: Pending })
        );
        assert_eq!(
            transition(&p, NeedsReview, Pending),
            Outcome::Skipped(Skip::Behind { current: NeedsReview, target: Pending })
        );
        assert!(matches!(transition(&p, Verified, Failed), Outcome::Refused(_)));
        assert!(matches!(transition(&p, Failed, Verified), Outcome::Refused(_)));
        assert!(matches!(transition(&p, Verified, NeedsReview), Outcome::Skipped(Skip::Behind { .. })));
    }

    #[test]
    fn transitions_follow_a_changed_policy() {
        // Remove needs_review -> verified: a review can then only fail.
        let text = DEFAULT_POLICY_YAML.replacen("to: [\"verified\", \"failed\"]", "to: [\"failed\"]", 1);
        let p = Policy::parse(&text).unwrap();
        assert!(matches!(transition(&p, NeedsReview, Verified), Outcome::Refused(_)));
        assert!(matches!(transition(&p, NeedsReview, Failed), Outcome::Applied { .. }));
    }

    #[test]
    fn event_rules() {
        let p = policy();
        let st = MachineState::default();
        let none = BTreeSet::new();
        let started = ev("e1", "verification.started", "", "2026-01-01T10:00:00Z");
        assert_eq!(
            decide(&p, &st, &none, &started),
            Outcome::Applied { before: Unverified, after: Pending, implied: vec![] }
        );
        let seen = BTreeSet::from(["e1".to_owned()]);
        assert_eq!(decide(&p, &st, &seen, &started), Outcome::Skipped(Skip::Duplicate));

        let after = MachineState {
            state: Verified,
            last_occurred_at: Some(DateTime::parse_from_rfc3339("2026-01-01T10:05:00Z").unwrap()),
        };
        assert!(matches!(decide(&p, &after, &none, &started), Outcome::Skipped(Skip::Stale { .. })));
        let late_same_time = ev("e3", "verification.decision", "verified", "2026-01-01T10:05:00Z");
        assert_eq!(decide(&p, &after, &none, &late_same_time), Outcome::Skipped(Skip::AlreadyInState(Verified)));

        let bad = ev("e4", "verification.decision", "done", "2026-01-01T11:00:00Z");
        assert!(matches!(decide(&p, &after, &none, &bad), Outcome::Refused(_)));
        let bad_time = ev("e5", "verification.started", "", "yesterday");
        assert!(matches!(decide(&p, &st, &none, &bad_time), Outcome::Refused(_)));
    }
}
