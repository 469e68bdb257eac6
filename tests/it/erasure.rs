//! Erasure by crypto-shredding (docs/privacy.md, contract §9): personal data
//! is stored sealed under the candidate's key; erasing the candidate
//! destroys the key, deletes the histories, and leaves every chain
//! verifiable, with the erasure itself a chained record.

use crate::harness::{ADMIN_TOKEN, AUDITOR_TOKEN, Options, REVIEWER_TOKEN, TestApp, at};
use serde_json::{Value, json};
use std::time::Duration;
use vbridge::devtools::client::{decision, started};

const KEY_A: &str = "0707070707070707070707070707070707070707070707070707070707070707";
/// The values planted in the erased candidate's data: an address and a
/// free-form signal in the webhook's body, a note on an override.
const PLANTED_EMAIL: &str = "planted.person@example.com";
const PLANTED_SIGNAL: &str = "PLANTED-SIGNAL-x7q";
const PLANTED_NOTE: &str = "PLANTED-NOTE-k2v";
/// The other candidate's note, which must stay readable.
const KEPT_NOTE: &str = "kept-note-of-b";

/// A verified, then overridden verification whose body carries `signals`.
async fn verification_with_a_note(app: &TestApp, c: &str, a: &str, note: &str, signals: Value) {
    let mut s = started(c, a, &format!("evt-{c}-1"), &at(-10));
    s["signals"] = signals;
    assert_eq!(app.send(&s).await.status, 202);
    app.send(&decision(c, a, &format!("evt-{c}-2"), &at(-5), "verified")).await;
    app.wait_synced(c, a, "verified").await;
    let body = json!({"to": "failed", "reason_code": "doc-anomaly", "note": note});
    let path = format!("/v1/verifications/{c}/{a}/override");
    let r = app.post_as(&path, Some(ADMIN_TOKEN), Some(&format!("ov-{c}")), &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    app.wait_synced(c, a, "failed").await;
}

async fn pack(app: &TestApp, c: &str) -> (Value, String) {
    let r = app.get_as(&format!("/v1/candidates/{c}/evidence-pack"), Some(AUDITOR_TOKEN)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn override_note(pack: &Value) -> String {
    let d = pack["summary"]["decisions"].as_array().unwrap().iter().find(|d| d["kind"] == "override").cloned();
    d.unwrap_or_else(|| panic!("an override in {:#}", pack["summary"]))["note"].as_str().unwrap_or("").to_owned()
}

/// `vbridge evidence verify` offline, with the bridge's published key.
async fn verifies_offline(app: &TestApp, text: &str, name: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("vbridge-erasure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key: Value = app.get_as("/.well-known/vbridge-evidence-key", None).await.json().await.unwrap();
    let (kf, pf) = (dir.join(format!("{name}-key.json")), dir.join(format!("{name}.json")));
    std::fs::write(&kf, key.to_string()).unwrap();
    std::fs::write(&pf, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["evidence", "verify"])
        .arg(&pf)
        .arg("--public-key")
        .arg(&kf)
        .env_clear()
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The store's files, WAL included, as bytes.
fn store_files(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for file in ["vbridge.db", "vbridge.db-wal", "vbridge.db-shm"] {
        if let Ok(bytes) = std::fs::read(app.dir.join(file)) {
            out.push((file.to_owned(), bytes));
        }
    }
    assert!(out.iter().any(|(f, b)| f == "vbridge.db" && !b.is_empty()), "the store file exists");
    out
}

fn holds(bytes: &[u8], value: &str) -> bool {
    bytes.windows(value.len()).any(|w| w == value.as_bytes())
}

/// Every run the Temporal server still has of the candidate's workflow, and
/// each one's history (`temporal workflow show`).
fn histories(app: &TestApp, workflow_id: &str) -> Vec<(String, String)> {
    let list =
        app.temporal_cli(&["workflow", "list", "--query", &format!("WorkflowId = '{workflow_id}'"), "-o", "json"]);
    let runs: Value = serde_json::from_str(&list).unwrap_or_else(|_| json!([]));
    let mut out = vec![];
    for r in runs.as_array().into_iter().flatten() {
        let run = r["execution"]["runId"].as_str().or(r["execution"]["run_id"].as_str());
        let run_id = run.unwrap_or_default().to_owned();
        let cli = vbridge::devtools::devserver::find_cli().unwrap();
        let shown = std::process::Command::new(cli)
            .args(["workflow", "show", "-w", workflow_id, "-r", &run_id, "-o", "json"])
            .args(["--address", &app.temporal.address, "--namespace", "default"])
            .output()
            .unwrap();
        if shown.status.success() {
            out.push((run_id, String::from_utf8_lossy(&shown.stdout).into_owned()));
        }
    }
    out
}

#[tokio::test]
async fn an_erased_candidate_is_unreadable_in_the_store_log_and_histories_and_every_chain_still_verifies() {
    let extra_env = vec![("VBRIDGE_EVIDENCE_KEY".to_owned(), KEY_A.to_owned())];
    let app = TestApp::spawn_with("erasure", Options { extra_env, ..Default::default() }).await;
    let (c, a) = ("cand-er-1", "app-er-1");
    let signals = json!({"contact_email": PLANTED_EMAIL, "screening_comment": PLANTED_SIGNAL});
    verification_with_a_note(&app, c, a, PLANTED_NOTE, signals).await;
    verification_with_a_note(&app, "cand-er-2", "app-er-2", KEPT_NOTE, json!({})).await;

    // The `erase` signal's branch: a run continues as new at its next safe
    // point. Its history is kept (`VBRIDGE_WRITE_HISTORY=1`) and replayed.
    let other = "verification:cand-er-2:app-er-2";
    let run = app.state("cand-er-2", "app-er-2").await.map(|_| ()).ok();
    assert!(run.is_some(), "the other candidate's run is open");
    let described: Value =
        serde_json::from_str(&app.temporal_cli(&["workflow", "describe", "-w", other, "-o", "json"])).unwrap();
    let exec = &described["workflowExecutionInfo"]["execution"];
    let run_id = exec["runId"].as_str().or(exec["run_id"].as_str()).unwrap().to_owned();
    app.temporal_cli(&["workflow", "signal", "-w", other, "-r", &run_id, "--name", "erase", "--input", "{}"]);
    app.wait_for("the signalled run continued as new", Duration::from_secs(30), || async {
        let d: Value = serde_json::from_str(
            &app.temporal_cli(&["workflow", "describe", "-w", other, "-r", &run_id, "-o", "json"]),
        )
        .ok()?;
        let status = d["workflowExecutionInfo"]["status"].as_str().unwrap_or_default().to_owned();
        status.contains("CONTINUED_AS_NEW").then_some(())
    })
    .await;
    let json = crate::replay::history_json(&app, other, Some(run_id)).await;
    crate::replay::check_and_save(&json, &format!("candidate_verification_{}_erased.json", crate::replay::CURRENT))
        .await;

    // Sealed at rest already: the store's files never held the values.
    let planted = [PLANTED_EMAIL, PLANTED_SIGNAL, PLANTED_NOTE];
    for (file, bytes) in store_files(&app) {
        for v in planted {
            assert!(!holds(&bytes, v), "{v} is in {file} in the clear");
        }
    }
    // ... and the pack opens them for an auditor with the key it carries.
    let (before, _) = pack(&app, c).await;
    assert_eq!(override_note(&before), PLANTED_NOTE);
    let field_key = before["field_key"].as_str().unwrap().to_owned();
    assert_eq!(field_key.len(), 64);
    assert!(store_files(&app).iter().any(|(_, b)| holds(b, &field_key)), "the key is in the store before erasure");
    let wid = format!("verification:{c}:{a}");
    let runs_before: Vec<String> = app
        .wait_for("the candidate's runs listed", Duration::from_secs(20), || async {
            let runs: Vec<String> = histories(&app, &wid).into_iter().map(|(r, _)| r).collect();
            (!runs.is_empty()).then_some(runs)
        })
        .await;

    // Admins only; a code, not free text; a known candidate.
    let path = format!("/v1/candidates/{c}/erase");
    let body = json!({"reason_code": "candidate_request", "note": "ticket 7"});
    assert_eq!(app.post_as(&path, Some(REVIEWER_TOKEN), Some("er-1"), &body).await.status(), 403);
    let bad = json!({"reason_code": "Because They Asked", "note": ""});
    assert_eq!(app.post_as(&path, Some(ADMIN_TOKEN), Some("er-0"), &bad).await.status(), 400);
    let unknown = app.post_as("/v1/candidates/nobody-er/erase", Some(ADMIN_TOKEN), Some("er-x"), &body).await;
    assert_eq!(unknown.status(), 404);

    let r = app.post_as(&path, Some(ADMIN_TOKEN), Some("er-1"), &body).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["key_destroyed"], true, "{report}");
    assert!(report["histories"]["deleted"].as_u64().unwrap() >= 1, "{report}");
    // The same request again erases nothing more and records nothing more.
    let again: Value = app.post_as(&path, Some(ADMIN_TOKEN), Some("er-1"), &body).await.json().await.unwrap();
    assert_eq!(
        (again["key_destroyed"].clone(), again["record_id"].clone()),
        (json!(false), report["record_id"].clone())
    );

    // The histories of the runs before are gone (the server deletes a closed
    // run's history some seconds after it is asked); what is left holds nothing.
    app.wait_for("the erased runs' histories deleted", Duration::from_secs(150), || async {
        let left: Vec<String> = histories(&app, &wid).into_iter().map(|(r, _)| r).collect();
        runs_before.iter().all(|r| !left.contains(r)).then_some(())
    })
    .await;
    let mut places = store_files(&app);
    places.push(("the bridge's log".into(), app.bridge_log().into_bytes()));
    for (run, h) in histories(&app, &wid).into_iter().chain(histories(&app, "verification:cand-er-2:app-er-2")) {
        places.push((format!("history run {run}"), h.into_bytes()));
    }
    for (place, bytes) in &places {
        for v in planted {
            assert!(!holds(bytes, v), "{v} is in {place}");
        }
        assert!(!holds(bytes, &field_key), "the erased key is still in {place}");
    }
    assert!(
        places.iter().any(|(p, b)| p.starts_with("history") && holds(b, "cand-er-2")),
        "the other candidate's history was searched and is still there"
    );

    // Every chain still verifies; the candidate is reported erased.
    let out = app.vbridge_cli(&["audit", "verify"]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report["erased_candidates"], json!([c]), "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 candidate(s) erased"));

    // The pack shows `erased` in place of the note, names the erasure, and
    // still verifies offline; the other candidate's pack is untouched.
    let (after, text) = pack(&app, c).await;
    assert_eq!(override_note(&after), "erased");
    assert_eq!(after["field_key"], Value::Null, "no key to carry");
    assert_eq!(after["erasures"][0]["reason_code"], "candidate_request", "{}", after["erasures"]);
    assert_eq!(after["erasures"][0]["actor"], "it-admin");
    let (code, err) = verifies_offline(&app, &text, "erased").await;
    assert_eq!(code, 0, "{err}");
    let (other, other_text) = pack(&app, "cand-er-2").await;
    assert_eq!(override_note(&other), KEPT_NOTE);
    let (code, err) = verifies_offline(&app, &other_text, "other").await;
    assert_eq!(code, 0, "{err}");

    // The erasure record cannot be erased: erasing the candidate again (by
    // the CLI) adds a second record beside it, and the first is unchanged.
    let out = app
        .vbridge_cli(&["erase", "--candidate", c, "--reason-code", "ats_anonymized", "--actor", "it-cli", "--note", ""])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (twice, _) = pack(&app, c).await;
    let erasures = twice["erasures"].as_array().unwrap();
    assert_eq!(erasures.len(), 2, "{erasures:?}");
    assert_eq!(erasures[0], after["erasures"][0], "the first erasure record is as it was");
    assert_eq!(erasures[1]["trigger"], "cli");
    let out = app.vbridge_cli(&["audit", "verify"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(app.metrics().await.contains("candidate_erasure_count 2"));
}

const GREENHOUSE_SECRET: &str = "it-greenhouse-webhook-secret";
const PERSONA_SECRET: &str = "wbhsec_it-persona";

/// Greenhouse's "Candidate anonymized" web hook, as documented.
fn anonymized(candidate: u64) -> Value {
    json!({"action": "candidate_anonymized", "payload": {"candidate_id": candidate,
        "anonymized_fields": ["full_name", "email_addresses", "notes"]}})
}

#[tokio::test]
async fn greenhouses_anonymization_and_personas_redaction_erase_the_candidate_once() {
    use vbridge::devtools::ats_hooks::send;
    use vbridge::devtools::providers::{Outcome, Signer, body};
    use vbridge_core::intake::ats::AtsKind;
    use vbridge_core::intake::providers::ProviderKind;
    let env = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let extra_env = vec![
        env("VBRIDGE_GREENHOUSE_WEBHOOK_SECRET", GREENHOUSE_SECRET),
        env("VBRIDGE_PERSONA_WEBHOOK_SECRETS", PERSONA_SECRET),
    ];
    let app = TestApp::spawn_with("erasure-hooks", Options { extra_env, ..Default::default() }).await;
    // A Greenhouse candidate (numeric ids) and a Persona one, each with a
    // planted value in its stored body.
    let mut s = started("37031511", "46196263", "evt-gh-er-1", &at(-10));
    s["signals"] = json!({"screening_comment": PLANTED_SIGNAL});
    assert_eq!(app.send(&s).await.status, 202);
    let persona = Signer::new(ProviderKind::Persona, PERSONA_SECRET, "");
    let check = "inq_er1";
    let started = body(ProviderKind::Persona, Outcome::Started, "cand-px-1:app-px-1", check, 1, &at(-9));
    assert_eq!(persona.send(&app.http, &app.bridge_url, &started).await.unwrap().status, 202);
    app.wait_for("both stored", Duration::from_secs(30), || async {
        let px = app.deliveries(Some("cand-px-1")).await;
        (!px.is_empty() && !app.deliveries(Some("37031511")).await.is_empty()).then_some(())
    })
    .await;

    // An unsigned anonymization erases nothing.
    let r = send(&app.http, &app.bridge_url, AtsKind::Greenhouse, "not-the-secret", "gh-er-0", &anonymized(37031511))
        .await
        .unwrap();
    assert_eq!(r.status, 401, "{:?}", r.body);
    // Greenhouse's, twice (its retry): one erasure.
    for _ in 0..2 {
        let r =
            send(&app.http, &app.bridge_url, AtsKind::Greenhouse, GREENHOUSE_SECRET, "gh-er-1", &anonymized(37031511))
                .await
                .unwrap();
        assert_eq!((r.status, r.body["status"].as_str()), (200, Some("accepted")), "{:?}", r.body);
    }
    // A candidate the bridge never saw: recorded, not applied.
    let r = send(&app.http, &app.bridge_url, AtsKind::Greenhouse, GREENHOUSE_SECRET, "gh-er-2", &anonymized(999))
        .await
        .unwrap();
    assert_eq!(r.body["status"], "ignored", "{:?}", r.body);
    // Persona's redaction: the inquiry keeps its status, `redacted-at` is set.
    let mut redacted = body(ProviderKind::Persona, Outcome::Verified, "cand-px-1:app-px-1", check, 2, &at(-1));
    redacted["data"]["attributes"]["name"] = json!("inquiry.redacted");
    redacted["data"]["attributes"]["redacted-at"] = json!(at(-1));
    let r = persona.send(&app.http, &app.bridge_url, &redacted).await.unwrap();
    assert_eq!(r.body["status"], "accepted", "{:?}", r.body);
    assert!((200..300).contains(&r.status), "{}", r.status);
    // Its account redacted too: no reference left, nobody to erase.
    let mut anonymous = redacted.clone();
    anonymous["data"]["id"] = json!("evt_er_noref");
    anonymous["data"]["attributes"]["payload"]["data"]["attributes"]["reference-id"] = Value::Null;
    let r = persona.send(&app.http, &app.bridge_url, &anonymous).await.unwrap();
    assert_eq!(r.body["status"], "ignored", "{:?}", r.body);

    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let erasures = store.erasures(None).await.unwrap();
    let got: Vec<(&str, &str, &str, &str)> = erasures
        .iter()
        .map(|e| {
            let r = &e.record;
            (r.candidate_id.as_str(), r.event_type.as_str(), r.override_actor.as_str(), r.override_reason_code.as_str())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("37031511", "greenhouse.candidate_anonymized", "greenhouse", "ats_anonymized"),
            ("cand-px-1", "persona.inquiry.redacted", "persona", "provider_redacted"),
        ]
    );
    for c in ["37031511", "cand-px-1"] {
        assert!(store.existing_field_key(c).await.unwrap().is_none(), "{c}'s key is destroyed");
    }
    let signal_seen = app.deliveries(Some("37031511")).await.iter().any(|d| {
        d.payload.as_deref().is_some_and(|p| vbridge_core::seal::reveal(None, "37031511", p).contains(PLANTED_SIGNAL))
    });
    assert!(!signal_seen, "the body no longer opens");
    let out = app.vbridge_cli(&["audit", "verify"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["erased_candidates"], json!(["37031511", "cand-px-1"]));
}
