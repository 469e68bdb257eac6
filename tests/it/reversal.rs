//! Provider reversals end to end (docs/contract.md §7, docs/providers.md
//! "Reversals"): a provider that moves a decided verification backwards, on
//! the IL route and on each provider's own route (Sumsub's `GREEN` then `RED`, and
//! the others' approval then decline), against the
//! real Temporal and the sandbox ATS. The ATS keeps the old state, the gate
//! answers `reversal-pending`, the review queue holds an item flagged
//! `provider_reversal`, `provider_reversal_count` counts it; only an admin's
//! override (or confirmation) closes it.

use crate::harness::{ADMIN_TOKEN, REVIEWER_TOKEN, TestApp, at};
use crate::replay::{CURRENT, check_and_save, history_json};
use serde_json::{Value, json};
use std::time::Duration;
use vbridge::devtools::client::{decision, started};
use vbridge::devtools::providers::Outcome;
use vbridge::review::queue::{Item, Listing};
use vbridge_core::domain::workflow_id;
use vbridge_core::intake::providers::ProviderKind;

const WAIT: Duration = Duration::from_secs(60);

async fn gate(app: &TestApp, a: &str) -> Value {
    let r = app.get_as(&format!("/v1/applications/{a}/gate"), Some(REVIEWER_TOKEN)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn queued(app: &TestApp, c: &str) -> Option<Item> {
    let r = app.get_as("/v1/reviews", Some(REVIEWER_TOKEN)).await;
    let listing: Listing = r.json().await.ok()?;
    listing.items.into_iter().find(|i| i.candidate_id == c)
}

async fn overrides(app: &TestApp, c: &str, a: &str, to: &str, key: &str) -> Value {
    let body = json!({"to": to, "reason_code": "doc-anomaly", "note": "the provider found fraud later"});
    let r = app.post_as(&format!("/v1/verifications/{c}/{a}/override"), Some(ADMIN_TOKEN), Some(key), &body).await;
    assert_eq!(r.status(), 200, "the admin's override to {to}");
    r.json().await.unwrap()
}

/// The reversal of a verified candidate was delivered: it is held, visibly,
/// and nothing moved by itself. `count`: reversals this bridge has seen.
async fn held(app: &TestApp, c: &str, a: &str, count: u32) -> Item {
    let item = app
        .wait_for("the reversal's review item", WAIT, || async {
            queued(app, c).await.filter(|i| i.flags.iter().any(|f| f == "provider_reversal"))
        })
        .await;
    assert_eq!(item.flags, vec!["provider_reversal"]);
    assert_eq!(item.queue, "manual-review");
    let timeline = app.timeline(c, a).await.unwrap();
    let rev = timeline.iter().find(|t| t.kind == "provider_reversal").expect("a provider_reversal record");
    assert_eq!((rev.state_before.as_str(), rev.state_after.as_str()), ("verified", "verified"), "the state is kept");
    assert!(!timeline.iter().any(|t| t.kind == "refused"), "not a bare refusal: {timeline:?}");
    assert_eq!(app.state(c, a).await.unwrap().state, "verified");
    // The ATS still shows the old state: nothing flipped it.
    let writes: Vec<_> = app.writes().await.into_iter().filter(|w| w.application_id == a).collect();
    assert_eq!(writes.last().unwrap().fields["verification_state"], "verified");
    assert!(
        !writes
            .iter()
            .any(|w| w.fields["verification_state"] != "verified" && w.fields["verification_state"] != "pending")
    );
    let g = gate(app, a).await;
    assert_eq!(
        (g["allow_interview_scheduling"].as_bool(), g["reason"].as_str(), g["state"].as_str()),
        (Some(false), Some("reversal-pending"), Some("verified")),
        "{g}"
    );
    let metrics = app.metrics().await;
    let line = format!("provider_reversal_count {count}");
    assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    // It is for an admin: a reviewer's decision is refused (not in review).
    let d = json!({"decision": "failed", "reason_code": "doc-anomaly"});
    let r = app.post_as(&format!("/v1/reviews/{c}/{a}/decision"), Some(REVIEWER_TOKEN), None, &d).await;
    assert_eq!(r.status(), 409);
    item
}

/// The admin's override to failed closes the item; the gate follows the
/// policy: closed, now because the candidate failed.
async fn overridden_to_failed(app: &TestApp, c: &str, a: &str) {
    assert_eq!(overrides(app, c, a, "failed", &format!("rev-{c}")).await["state"], "failed");
    app.wait_synced(c, a, "failed").await;
    app.wait_for("the item closed", WAIT, || async { queued(app, c).await.is_none().then_some(()) }).await;
    let g = gate(app, a).await;
    assert_eq!((g["allow_interview_scheduling"].as_bool(), g["reason"].as_str()), (Some(false), Some("failed")), "{g}");
    let last = app.writes().await.into_iter().rfind(|w| w.application_id == a).unwrap();
    assert_eq!(
        (last.fields["verification_state"].as_str(), last.fields["override_actor"].as_str()),
        ("failed", "it-admin")
    );
}

#[tokio::test]
async fn il_route_a_verified_then_failed_decision_is_held_until_an_admin_overrides_or_confirms() {
    let app = TestApp::spawn("reversal-il").await;
    let (c, a) = ("cand-rev", "app-rev");
    assert_eq!(app.send(&started(c, a, "evt-rev-1", &at(-30))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-rev-2", &at(-20), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let g = gate(&app, a).await;
    assert_eq!(g["allow_interview_scheduling"], true, "{g}");

    assert_eq!(app.send(&decision(c, a, "evt-rev-3", &at(-10), "failed")).await.status, 202);
    held(&app, c, a, 1).await;
    overridden_to_failed(&app, c, a).await;
    let history = history_json(&app, &workflow_id(c, a), None).await;
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_reversal.json")).await;

    // A confirmation that keeps the state also closes it, and opens the gate.
    let (c, a) = ("cand-conf", "app-conf");
    assert_eq!(app.send(&started(c, a, "evt-conf-1", &at(-30))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-conf-2", &at(-20), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    assert_eq!(app.send(&decision(c, a, "evt-conf-3", &at(-10), "needs_review")).await.status, 202);
    held(&app, c, a, 2).await;
    assert_eq!(overrides(&app, c, a, "verified", "conf-1").await["state"], "verified");
    app.wait_for("the item closed", WAIT, || async { queued(&app, c).await.is_none().then_some(()) }).await;
    let g = app
        .wait_for("the gate open again", WAIT, || async {
            let g = gate(&app, a).await;
            (g["allow_interview_scheduling"] == true).then_some(g)
        })
        .await;
    assert_eq!(g["state"], "verified");
    let t = app.timeline(c, a).await.unwrap();
    let o = t.iter().find(|e| e.kind == "override").unwrap();
    assert!(o.reason.contains("confirmed verified"), "{}", o.reason);
}

/// A provider's approval, then its reversal (a decline of the same
/// verification), on the provider's own route: held until an admin acts.
async fn approved_then_reversed_on_the_providers_route(kind: ProviderKind) {
    let name = kind.as_str();
    let app = crate::providers::spawn(&format!("reversal-{name}"), &[kind]).await;
    let (c, a) = (format!("cand-rv-{name}"), "app-rv".to_owned());
    // Veriff's start carries no time (its receipt stands in): the decisions
    // are timed after it, as in life.
    for (outcome, n, minutes) in [(Outcome::Started, 1, -10), (Outcome::Verified, 2, 0)] {
        let r = crate::providers::send(&app, kind, outcome, &c, &a, n, minutes).await;
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{name} {outcome:?}: {:?}", r.body);
    }
    app.wait_synced(&c, &a, "verified").await;
    // The provider reverses its decision later (Sumsub: a second
    // applicantReviewed, RED + FINAL; Persona: inquiry.declined; Onfido:
    // the run completed declined; Veriff: a declined decision).
    let r = crate::providers::send(&app, kind, Outcome::Failed, &c, &a, 3, 1).await;
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{name}: {:?}", r.body);
    held(&app, &c, &a, 1).await;
    overridden_to_failed(&app, &c, &a).await;
}

#[tokio::test]
async fn sumsub_green_then_red_is_held_until_an_admin_overrides() {
    approved_then_reversed_on_the_providers_route(ProviderKind::Sumsub).await;
}

#[tokio::test]
async fn persona_approved_then_declined_is_held_until_an_admin_overrides() {
    approved_then_reversed_on_the_providers_route(ProviderKind::Persona).await;
}

#[tokio::test]
async fn onfido_approved_then_declined_is_held_until_an_admin_overrides() {
    approved_then_reversed_on_the_providers_route(ProviderKind::Onfido).await;
}

#[tokio::test]
async fn veriff_approved_then_declined_is_held_until_an_admin_overrides() {
    approved_then_reversed_on_the_providers_route(ProviderKind::Veriff).await;
}
