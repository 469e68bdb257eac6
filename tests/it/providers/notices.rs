//! Retakes and expiries end to end (docs/contract.md §7, docs/providers.md
//! "Retakes and expiries"): each provider's own notice, signed as it signs,
//! through the real bridge and Temporal to the sandbox ATS. An undecided
//! verification keeps its state and the ATS is told what the candidate must
//! do (`verification_action_required`), cleared by the next decision; a
//! decided one keeps its state and the ATS hears nothing. The IL route does
//! not take the notices' names (an unknown type, `ignored`).

use super::{WAIT, check_id, send, signer, spawn};
use crate::harness::{AUDITOR_TOKEN, REVIEWER_TOKEN, TestApp, at};
use crate::replay::{CURRENT, check_and_save, history_json};
use vbridge::devtools::client::started;
use vbridge::devtools::providers::{Outcome, body};
use vbridge_core::domain::workflow_id;
use vbridge_core::intake::providers::ProviderKind;

const FIELD: &str = "verification_action_required";

/// The notices each provider sends (docs/contract.md §7's table: Onfido has
/// no retake, Sumsub no expiry), with the record kind and the ATS's value.
const NOTICES: &[(ProviderKind, Outcome, &str, &str)] = &[
    (ProviderKind::Persona, Outcome::Retake, "retake_requested", "retake"),
    (ProviderKind::Persona, Outcome::Expired, "verification_expired", "restart"),
    (ProviderKind::Onfido, Outcome::Expired, "verification_expired", "restart"),
    (ProviderKind::Veriff, Outcome::Retake, "retake_requested", "retake"),
    (ProviderKind::Veriff, Outcome::Expired, "verification_expired", "restart"),
    (ProviderKind::Sumsub, Outcome::Retake, "retake_requested", "retake"),
];

async fn gate_allows(app: &TestApp, a: &str) -> bool {
    let r = app.get_as(&format!("/v1/applications/{a}/gate"), Some(REVIEWER_TOKEN)).await;
    let v: serde_json::Value = r.json().await.unwrap();
    v["allow_interview_scheduling"].as_bool().unwrap()
}

/// The sandbox's writes to one application, in order.
async fn writes_to(app: &TestApp, a: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    app.writes().await.into_iter().filter(|w| w.application_id == a).map(|w| w.fields).collect()
}

#[tokio::test]
async fn retakes_and_expiries_keep_the_state_tell_the_ats_while_undecided_and_never_flip_a_decision() {
    let kinds = [ProviderKind::Persona, ProviderKind::Onfido, ProviderKind::Veriff, ProviderKind::Sumsub];
    let app = spawn("providers-notices", &kinds).await;
    for (i, (kind, outcome, record, action)) in NOTICES.iter().enumerate() {
        let name = kind.as_str();
        let what = format!("{name} {outcome:?}");
        // Undecided: started, then the notice.
        let (c, a) = (format!("cand-n{i}-open"), format!("app-n{i}-open"));
        let r = send(&app, *kind, Outcome::Started, &c, &a, 1, -10).await;
        assert_eq!(r.status, 202, "{what} started: {:?}", r.body);
        // The notice, and its retry (the same delivery again).
        let notice = body(*kind, *outcome, &format!("{c}:{a}"), &check_id(&c), 2, &at(0));
        let r = signer(*kind).send(&app.http, &app.bridge_url, &notice).await.unwrap();
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{what}: {:?}", r.body);
        let r = signer(*kind).send(&app.http, &app.bridge_url, &notice).await.unwrap();
        assert_eq!((r.status, r.body["status"].as_str()), (200, Some("duplicate")), "{what} again: {:?}", r.body);
        let told = app
            .wait_for(&format!("{what}: the ATS told"), WAIT, || async {
                let w = writes_to(&app, &a).await;
                w.iter().any(|f| f.get(FIELD).map(String::as_str) == Some(*action)).then_some(w)
            })
            .await;
        let last = told.last().unwrap();
        assert_eq!(last["verification_state"], "pending", "{what}: the state is kept in the ATS");
        let view = app.wait_synced(&c, &a, "pending").await;
        assert_eq!(view.action_required, *action, "{what}");
        let timeline = app.timeline(&c, &a).await.unwrap();
        let entry = timeline.iter().find(|t| t.kind == *record).unwrap_or_else(|| panic!("{what}: {timeline:?}"));
        assert_eq!((entry.state_before.as_str(), entry.state_after.as_str()), ("pending", "pending"), "{what}");
        assert_eq!(timeline.iter().filter(|t| t.kind == *record).count(), 1, "{what}: recorded once");
        assert!(!gate_allows(&app, &a).await, "{what}: the gate stays closed while pending");
        // The next decision moves the state and clears what the ATS showed.
        let r = send(&app, *kind, Outcome::Verified, &c, &a, 3, 0).await;
        assert_eq!(r.status, 202, "{what} then verified: {:?}", r.body);
        app.wait_synced(&c, &a, "verified").await;
        let last = writes_to(&app, &a).await.pop().unwrap();
        assert_eq!(
            (last["verification_state"].as_str(), last.get(FIELD).map(String::as_str)),
            ("verified", Some("")),
            "{what}: the decision clears the field"
        );
        assert_eq!(app.state(&c, &a).await.unwrap().action_required, "", "{what}");
        if i == 0 {
            let history = history_json(&app, &workflow_id(&c, &a), None).await;
            check_and_save(&history, &format!("candidate_verification_{CURRENT}_notice.json")).await;
        }

        // Decided: the notice is recorded, the state, the gate and the ATS stay.
        let (c, a) = (format!("cand-n{i}-done"), format!("app-n{i}-done"));
        send(&app, *kind, Outcome::Started, &c, &a, 1, -10).await;
        send(&app, *kind, Outcome::Verified, &c, &a, 2, 0).await;
        app.wait_synced(&c, &a, "verified").await;
        let before = writes_to(&app, &a).await;
        let r = send(&app, *kind, *outcome, &c, &a, 3, 0).await;
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{what}: {:?}", r.body);
        let entry = app
            .wait_for(&format!("{what}: the decided verification's record"), WAIT, || async {
                app.timeline(&c, &a).await.ok()?.into_iter().find(|t| t.kind == *record)
            })
            .await;
        assert_eq!((entry.state_before.as_str(), entry.state_after.as_str()), ("verified", "verified"), "{what}");
        assert!(entry.reason.contains("decided and kept"), "{what}: {}", entry.reason);
        let view = app.wait_synced(&c, &a, "verified").await;
        assert_eq!((view.action_required.as_str(), view.pending_writes), ("", 0), "{what}");
        assert_eq!(writes_to(&app, &a).await, before, "{what}: nothing written to the ATS");
        assert!(gate_allows(&app, &a).await, "{what}: a retake or expiry never closes a verified candidate's gate");
        assert_eq!(check_id(&c), entry_check(&entry.detail), "{what}: the provider's check is named");
    }
    // Recorded in the audit log too (the timeline API reads the store).
    app.wait_for("the notice in the audit log", WAIT, || async {
        let r = app.get_as("/v1/candidates/cand-n0-open/timeline", Some(AUDITOR_TOKEN)).await;
        r.text().await.ok().filter(|b| b.contains("\"retake_requested\""))
    })
    .await;

    // On the IL route the notices' names are unknown types: recorded, ignored.
    let mut e = started("cand-il", "app-il", "evt-il-exp", &at(-1));
    e["event_type"] = "verification.expired".into();
    let r = app.send(&e).await;
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("ignored")), "{:?}", r.body);
    assert!(!app.workflow_exists("cand-il", "app-il").await, "an IL body cannot make a notice");
}

fn entry_check(detail: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(detail).unwrap();
    v["verification_check_id"].as_str().unwrap().to_owned()
}
