//! The hiring loop's policy extension (docs/contract.md §8): which ATS
//! stages start a verification, at which risk tier, when a `needs_review`
//! steps up instead of waiting for a reviewer, and the deadline and
//! reminders before the interview. Optional: a policy without `verification`
//! starts nothing (the seed's policy has none). Parsed strictly and checked
//! as a whole, every problem naming its key, like the rest of the policy.
//!
//! Pure: [`HiringPolicy::tier_for`] and [`HiringPolicy::step_up`] decide
//! from what the ATS said about the job and what the provider said about
//! the check; nothing here starts, mails or waits.

/// The extension `vbridge dev` adds to a policy without one, and the one
/// docs/hiring.md walks through: a trigger stage, three tiers, step-up on
/// two reason codes, a deadline with two reminders.
pub const EXAMPLE_EXTENSION: &str = r#"
verification:
  trigger:
    stages: ["Identity Check"]
  riskTiers:
    - name: none
      when: { roles: ["Internal Transfer"] }
      verify: false
    - name: enhanced
      when: { regions: ["remote"], roles: ["Site Reliability Engineer"] }
      template: "itmpl_enhanced"
    - name: standard
      default: true
      template: "itmpl_standard"
  stepUp:
    reasonCodes: ["liveness-low", "voice-mismatch"]
    tier: enhanced
  deadline:
    hoursBeforeInterview: 24
    remindersHoursBeforeDeadline: [24, 4]
"#;

use crate::policy::PolicyProblem;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Bounds on what a policy may declare.
pub const MAX_STAGES: usize = 32;
pub const MAX_TIERS: usize = 16;
pub const MAX_MATCHES: usize = 64;
pub const MAX_REMINDERS: usize = 8;
/// The longest deadline before an interview: 30 days.
pub const MAX_HOURS: u32 = 720;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawVerification {
    pub trigger: RawTrigger,
    pub risk_tiers: Vec<RawTier>,
    #[serde(default)]
    pub step_up: Option<RawStepUp>,
    #[serde(default)]
    pub deadline: Option<RawDeadline>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawTrigger {
    /// Stage names, as the ATS sends them (matched ignoring case and
    /// surrounding space).
    pub stages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawTier {
    pub name: String,
    #[serde(default)]
    pub when: Option<RawWhen>,
    #[serde(default)]
    pub default: bool,
    /// `false`: this tier verifies nothing (internal transfers, say).
    #[serde(default = "yes")]
    pub verify: bool,
    /// The provider's template (Persona's inquiry template).
    #[serde(default)]
    pub template: Option<String>,
    /// The provider's level (Sumsub's level name; Veriff ignores both).
    #[serde(default)]
    pub level: Option<String>,
    /// This tier's own deadline and reminders, over the policy's.
    #[serde(default)]
    pub deadline: Option<RawDeadline>,
}

fn yes() -> bool {
    true
}

/// What a tier matches. Every list given must match (AND); within a list,
/// any value (OR). Text is compared ignoring case and surrounding space.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWhen {
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub requisitions: Vec<String>,
    /// Signals the ATS or an earlier check carries (say `privileged-access`).
    #[serde(default)]
    pub signals: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawStepUp {
    pub reason_codes: Vec<String>,
    pub tier: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDeadline {
    pub hours_before_interview: u32,
    #[serde(default)]
    pub reminders_hours_before_deadline: Vec<u32>,
}

/// A deadline, checked: the verification is due `hours_before_interview`
/// before the interview; reminders go out the given hours before that,
/// the earliest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub hours_before_interview: u32,
    pub reminders_hours_before_deadline: Vec<u32>,
}

/// A tier, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    pub when: RawWhen,
    pub default: bool,
    pub verify: bool,
    pub template: Option<String>,
    pub level: Option<String>,
    pub deadline: Option<Deadline>,
}

/// The extension, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HiringPolicy {
    stages: BTreeSet<String>,
    tiers: Vec<Tier>,
    step_up: Option<(BTreeSet<String>, usize)>,
    deadline: Option<Deadline>,
}

/// What the ATS says about the application's job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Job<'a> {
    pub role: Option<&'a str>,
    pub region: Option<&'a str>,
    pub requisition: Option<&'a str>,
    pub signals: &'a [String],
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn any_of(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|l| norm(l) == norm(v)))
}

impl RawWhen {
    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.regions.is_empty() && self.requisitions.is_empty() && self.signals.is_empty()
    }

    fn matches(&self, job: &Job) -> bool {
        any_of(&self.roles, job.role)
            && any_of(&self.regions, job.region)
            && any_of(&self.requisitions, job.requisition)
            && (self.signals.is_empty() || job.signals.iter().any(|s| any_of(&self.signals, Some(s))))
    }
}

impl HiringPolicy {
    /// Does a stage change into `stage` start a verification?
    pub fn triggers(&self, stage: &str) -> bool {
        self.stages.contains(&norm(stage))
    }

    /// The tier for a job: the first that matches, else the default.
    pub fn tier_for(&self, job: &Job) -> &Tier {
        self.tiers
            .iter()
            .find(|t| !t.default && t.when.matches(job))
            .or_else(|| self.tiers.iter().find(|t| t.default))
            .expect("a checked policy has a default tier")
    }

    /// The tier a `needs_review` with `reason_codes` steps up to, if any of
    /// them is listed for step-up. (Once per check: the workflow's to keep.)
    pub fn step_up(&self, reason_codes: &[String]) -> Option<&Tier> {
        let (codes, tier) = self.step_up.as_ref()?;
        reason_codes.iter().any(|c| codes.contains(c)).then(|| &self.tiers[*tier])
    }

    /// The deadline of a tier: its own, else the policy's.
    pub fn deadline<'a>(&'a self, tier: &'a Tier) -> Option<&'a Deadline> {
        tier.deadline.as_ref().or(self.deadline.as_ref())
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }
}

/// Check the extension; `reason_codes` are the policy's `requiredReasonCodes`.
/// Every problem is pushed, each with its key under `verification`.
pub fn check(
    raw: &RawVerification,
    reason_codes: &[String],
    problems: &mut Vec<PolicyProblem>,
) -> Option<HiringPolicy> {
    let before = problems.len();
    let mut problem = |path: String, p: String| problems.push(PolicyProblem { path, problem: p });

    let t = &raw.trigger.stages;
    if t.is_empty() || t.len() > MAX_STAGES {
        problem("verification.trigger.stages".into(), format!("must name 1 to {MAX_STAGES} stages"));
    }
    for (i, s) in t.iter().enumerate() {
        if s.trim().is_empty() || s.len() > 200 {
            problem(format!("verification.trigger.stages[{i}]"), "must be a stage name of 1 to 200 bytes".into());
        }
    }

    if raw.risk_tiers.is_empty() || raw.risk_tiers.len() > MAX_TIERS {
        problem("verification.riskTiers".into(), format!("must hold 1 to {MAX_TIERS} tiers"));
    }
    let mut names = BTreeSet::new();
    let mut tiers = vec![];
    for (i, r) in raw.risk_tiers.iter().enumerate() {
        let at = |k: &str| format!("verification.riskTiers[{i}].{k}");
        let ok = (1..=32).contains(&r.name.len())
            && r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            problem(at("name"), "must be 1 to 32 of a-z, 0-9 and -".into());
        } else if !names.insert(r.name.clone()) {
            problem(at("name"), format!("\"{}\" names two tiers", r.name));
        }
        let when = r.when.clone().unwrap_or_default();
        match (r.default, when.is_empty()) {
            (true, false) => problem(at("when"), "a default tier matches everything: it takes no `when`".into()),
            (false, true) => problem(at("when"), "is required (with at least one list) unless `default: true`".into()),
            _ => {}
        }
        let lists = [&when.roles, &when.regions, &when.requisitions, &when.signals];
        if lists.iter().map(|l| l.len()).sum::<usize>() > MAX_MATCHES {
            problem(at("when"), format!("matches at most {MAX_MATCHES} values"));
        }
        if !r.verify && (r.template.is_some() || r.level.is_some()) {
            problem(at("template"), "a tier with `verify: false` starts nothing: no template or level".into());
        }
        let deadline = r.deadline.as_ref().and_then(|d| deadline(d, &at("deadline"), &mut problem));
        tiers.push(Tier {
            name: r.name.clone(),
            when,
            default: r.default,
            verify: r.verify,
            template: r.template.clone(),
            level: r.level.clone(),
            deadline,
        });
    }
    if !raw.risk_tiers.is_empty() && tiers.iter().filter(|t| t.default).count() != 1 {
        problem("verification.riskTiers".into(), "exactly one tier must be `default: true`".into());
    }

    let step_up = raw.step_up.as_ref().and_then(|s| {
        let mut codes = BTreeSet::new();
        if s.reason_codes.is_empty() {
            problem("verification.stepUp.reasonCodes".into(), "must name at least one reason code".into());
        }
        for (i, c) in s.reason_codes.iter().enumerate() {
            if !reason_codes.contains(c) {
                problem(
                    format!("verification.stepUp.reasonCodes[{i}]"),
                    format!("\"{c}\" is not one of the policy's requiredReasonCodes ({})", reason_codes.join(", ")),
                );
            }
            codes.insert(c.clone());
        }
        match tiers.iter().position(|t| t.name == s.tier) {
            Some(i) if tiers[i].verify => Some((codes, i)),
            Some(_) => {
                problem("verification.stepUp.tier".into(), format!("\"{}\" verifies nothing", s.tier));
                None
            }
            None => {
                problem("verification.stepUp.tier".into(), format!("\"{}\" is not a tier", s.tier));
                None
            }
        }
    });
    let deadline = raw.deadline.as_ref().and_then(|d| deadline(d, "verification.deadline", &mut problem));
    (problems.len() == before).then(|| HiringPolicy {
        stages: raw.trigger.stages.iter().map(|s| norm(s)).collect(),
        tiers,
        step_up,
        deadline,
    })
}

/// A deadline: hours in 1..=[`MAX_HOURS`], reminders strictly descending
/// (the earliest first), at most [`MAX_REMINDERS`].
fn deadline(d: &RawDeadline, at: &str, problem: &mut impl FnMut(String, String)) -> Option<Deadline> {
    let mut ok = true;
    if !(1..=MAX_HOURS).contains(&d.hours_before_interview) {
        problem(format!("{at}.hoursBeforeInterview"), format!("must be 1 to {MAX_HOURS}"));
        ok = false;
    }
    let r = &d.reminders_hours_before_deadline;
    let key = format!("{at}.remindersHoursBeforeDeadline");
    if r.len() > MAX_REMINDERS {
        problem(key.clone(), format!("at most {MAX_REMINDERS} reminders"));
        ok = false;
    }
    if r.iter().any(|h| !(1..=MAX_HOURS).contains(h)) {
        problem(key.clone(), format!("each must be 1 to {MAX_HOURS} hours"));
        ok = false;
    }
    if r.windows(2).any(|w| w[0] <= w[1]) {
        problem(key, "must be strictly descending (the earliest reminder first)".into());
        ok = false;
    }
    ok.then(|| Deadline {
        hours_before_interview: d.hours_before_interview,
        reminders_hours_before_deadline: r.clone(),
    })
}

#[cfg(test)]
mod tests;
