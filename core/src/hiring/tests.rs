use super::*;
use crate::policy::{DEFAULT_POLICY_YAML, Policy};

/// docs/contract.md §8's example, appended to the seed's policy.
const EXAMPLE: &str = r#"
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
      deadline: { hoursBeforeInterview: 48, remindersHoursBeforeDeadline: [48, 24, 4] }
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

fn policy(extension: &str) -> Result<Policy, String> {
    Policy::parse(&format!("{DEFAULT_POLICY_YAML}{extension}")).map_err(|e| e.to_string())
}

#[test]
fn the_seed_policy_has_no_hiring_loop() {
    assert!(Policy::parse(DEFAULT_POLICY_YAML).unwrap().hiring().is_none());
}

#[test]
fn the_contracts_example_picks_tiers_first_match_wins() {
    let p = policy(EXAMPLE).unwrap();
    let h = p.hiring().unwrap();
    assert!(h.triggers("Identity Check") && h.triggers("  identity check ") && !h.triggers("Onsite"));
    let signals: Vec<String> = vec![];
    let job = |role, region| Job { role, region, requisition: None, signals: &signals };
    // (role, region) -> tier, verifies
    let rows: &[(Option<&str>, Option<&str>, &str, bool)] = &[
        (Some("Internal Transfer"), Some("remote"), "none", false),
        (Some("site reliability engineer"), Some("Remote"), "enhanced", true),
        (Some("Site Reliability Engineer"), Some("berlin"), "standard", true),
        (Some("Site Reliability Engineer"), None, "standard", true),
        (Some("Designer"), Some("remote"), "standard", true),
        (None, None, "standard", true),
    ];
    for (role, region, tier, verify) in rows {
        let t = h.tier_for(&job(*role, *region));
        assert_eq!((t.name.as_str(), t.verify), (*tier, *verify), "{role:?} {region:?}");
    }
    let enhanced = h.tier_for(&job(Some("Site Reliability Engineer"), Some("remote")));
    assert_eq!(h.deadline(enhanced).unwrap().reminders_hours_before_deadline, vec![48, 24, 4]);
    let standard = h.tier_for(&job(None, None));
    assert_eq!(h.deadline(standard).unwrap().hours_before_interview, 24, "the policy's deadline");
    assert_eq!(standard.template.as_deref(), Some("itmpl_standard"));
    let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(h.step_up(&codes(&["doc-anomaly", "liveness-low"])).map(|t| t.name.as_str()), Some("enhanced"));
    assert_eq!(h.step_up(&codes(&["doc-anomaly"])), None);
    assert_eq!(h.step_up(&[]), None);
}

#[test]
fn signals_and_requisitions_match_too() {
    let p = policy(
        r#"
verification:
  trigger: { stages: ["Screen"] }
  riskTiers:
    - name: privileged
      when: { signals: ["privileged-access"], requisitions: ["REQ-1", "REQ-2"] }
    - name: standard
      default: true
"#,
    )
    .unwrap();
    let h = p.hiring().unwrap();
    let with = vec!["privileged-access".to_string()];
    let without = vec!["other".to_string()];
    let job = |req, signals| Job { role: None, region: None, requisition: req, signals };
    assert_eq!(h.tier_for(&job(Some("req-2"), &with)).name, "privileged");
    assert_eq!(h.tier_for(&job(Some("REQ-3"), &with)).name, "standard");
    assert_eq!(h.tier_for(&job(Some("REQ-1"), &without)).name, "standard");
    assert_eq!(h.deadline(h.tier_for(&job(None, &[]))), None, "no deadline declared");
}

#[test]
fn every_problem_names_its_key() {
    let base = |tiers: &str, rest: &str| {
        format!("\nverification:\n  trigger: {{ stages: [\"Identity Check\"] }}\n  riskTiers:\n{tiers}{rest}")
    };
    let std_tier = "    - { name: standard, default: true }\n";
    let cases: &[(String, &str)] = &[
        (base("", "").replace("  riskTiers:\n", "  riskTiers: []\n"), "verification.riskTiers"),
        (
            "\nverification:\n  trigger: { stages: [] }\n  riskTiers:\n    - { name: s, default: true }\n".into(),
            "verification.trigger.stages",
        ),
        (base("    - { name: Bad_Name, default: true }\n", ""), "verification.riskTiers[0].name"),
        (base(&format!("{std_tier}{std_tier}"), ""), "verification.riskTiers[1].name"),
        (base("    - { name: a, when: { roles: [x] } }\n", ""), "verification.riskTiers: exactly one"),
        (base(&format!("    - {{ name: a }}\n{std_tier}"), ""), "verification.riskTiers[0].when"),
        (base("    - { name: a, default: true, when: { roles: [x] } }\n", ""), "verification.riskTiers[0].when"),
        (
            base(&format!("    - {{ name: a, verify: false, template: t, when: {{ roles: [x] }} }}\n{std_tier}"), ""),
            "verification.riskTiers[0].template",
        ),
        (
            base(std_tier, "  stepUp: { reasonCodes: [made-up], tier: standard }\n"),
            "verification.stepUp.reasonCodes[0]: \"made-up\" is not one of",
        ),
        (base(std_tier, "  stepUp: { reasonCodes: [liveness-low], tier: nope }\n"), "verification.stepUp.tier"),
        (
            base(
                &format!("    - {{ name: off, verify: false, when: {{ roles: [x] }} }}\n{std_tier}"),
                "  stepUp: { reasonCodes: [liveness-low], tier: off }\n",
            ),
            "verification.stepUp.tier: \"off\" verifies nothing",
        ),
        (base(std_tier, "  deadline: { hoursBeforeInterview: 0 }\n"), "verification.deadline.hoursBeforeInterview"),
        (
            base(std_tier, "  deadline: { hoursBeforeInterview: 24, remindersHoursBeforeDeadline: [4, 24] }\n"),
            "verification.deadline.remindersHoursBeforeDeadline: must be strictly descending",
        ),
        (
            base("    - { name: s, default: true, deadline: { hoursBeforeInterview: 9999 } }\n", ""),
            "verification.riskTiers[0].deadline.hoursBeforeInterview",
        ),
        (base(std_tier, "  stepup: {}\n"), "unknown field `stepup`"),
    ];
    for (extension, key) in cases {
        let e = policy(extension).expect_err(extension);
        assert!(e.contains(key), "expected {key:?} in:\n{e}\nfor:{extension}");
    }
}
