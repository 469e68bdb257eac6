//! Evidence packs (docs/evidence.md, contract §9): a pack exported from a
//! real run verifies offline, with the `vbridge` binary and no store; an
//! edited, dropped or reordered record is named; another bridge's key is
//! refused.

use crate::harness::{ADMIN_TOKEN, AUDITOR_TOKEN, Options, REVIEWER_TOKEN, TestApp, at};
use serde_json::{Value, json};
use std::process::Command;
use vbridge::devtools::client::{decision, started};

/// The evidence keys (seeds) of two bridges.
const KEY_A: &str = "0707070707070707070707070707070707070707070707070707070707070707";
const KEY_B: &str = "0909090909090909090909090909090909090909090909090909090909090909";
/// The audit key (HMAC links) of the Postgres run.
const AUDIT_KEY: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

/// `vbridge evidence verify FILE ...` with nothing of the bridge's around:
/// no store, no key, no network settings.
fn verify(file: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["evidence", "verify"])
        .arg(file)
        .args(args)
        .env_clear()
        .env("VBRIDGE_LOG", "warn")
        .output()
        .expect("running vbridge");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn a_pack_from_a_real_run_verifies_offline_and_names_each_edit_drop_and_reorder() {
    let extra_env = vec![("VBRIDGE_EVIDENCE_KEY".to_owned(), KEY_A.to_owned())];
    let app = TestApp::spawn_with("evidence", Options { extra_env, ..Default::default() }).await;
    pack_of_a_real_run(&app, true).await;
}

#[tokio::test]
async fn on_postgres_with_an_audit_key_a_pack_verifies_offline_and_its_keyed_links_with_the_key() {
    let extra_env = vec![
        ("VBRIDGE_EVIDENCE_KEY".to_owned(), KEY_A.to_owned()),
        ("VBRIDGE_AUDIT_KEY".to_owned(), AUDIT_KEY.to_owned()),
    ];
    let database_url = Some(crate::harness::postgres_url().await);
    let app = TestApp::spawn_with("evidence-pg", Options { extra_env, database_url, ..Default::default() }).await;
    pack_of_a_real_run(&app, false).await;
    // The checker who holds the audit key recomputes every keyed link.
    let pack = app.get_as("/v1/candidates/cand-ev-1/evidence-pack", Some(AUDITOR_TOKEN)).await.text().await.unwrap();
    let file = std::env::temp_dir().join(format!("vbridge-evidence-keyed-{}.json", std::process::id()));
    std::fs::write(&file, pack).unwrap();
    let key = vbridge_core::evidence::EvidenceKey::parse(KEY_A).unwrap().public().to_base64();
    let (code, err) = verify(&file, &["--public-key", &key, "--audit-key", AUDIT_KEY]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keyed links: ") && !err.contains("keyed links: 0 recomputed"), "{err}");
    let (code, err) = verify(&file, &["--public-key", &key, "--audit-key", &"b2".repeat(32)]);
    assert_eq!(code, 0, "a key it does not name checks nothing, by digest: {err}");
    assert!(err.contains("keyed links: 0 recomputed"), "{err}");
    std::fs::remove_file(file).ok();
}

/// A verification started, decided, written and overridden; its pack
/// exported and checked offline (and, `all`, broken every way and printed).
async fn pack_of_a_real_run(app: &TestApp, all: bool) {
    let (c, a) = ("cand-ev-1", "app-ev-1");
    app.send(&started(c, a, "evt-ev-1", &at(-10))).await;
    let mut d = decision(c, a, "evt-ev-2", &at(-5), "verified");
    d["evidence_pack_url"] = json!("https://evidence.example/p/ev-1");
    app.send(&d).await;
    app.wait_synced(c, a, "verified").await;
    let body = json!({"to": "failed", "reason_code": "doc-anomaly", "note": "case 42"});
    let r =
        app.post_as(&format!("/v1/verifications/{c}/{a}/override"), Some(ADMIN_TOKEN), Some("ev-ov-1"), &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    app.wait_synced(c, a, "failed").await;

    // Auditors only.
    let path = format!("/v1/candidates/{c}/evidence-pack");
    assert_eq!(app.get_as(&path, Some(REVIEWER_TOKEN)).await.status(), 403);
    assert_eq!(app.get_as("/v1/candidates/nobody/evidence-pack", Some(AUDITOR_TOKEN)).await.status(), 404);
    let r = app.get_as(&path, Some(AUDITOR_TOKEN)).await;
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains(&format!("evidence-{c}.json")), "{disposition}");
    let text = r.text().await.unwrap();
    let pack: Value = serde_json::from_str(&text).unwrap();
    let o = pack["summary"]["decisions"].as_array().unwrap().iter().find(|d| d["kind"] == "override").cloned();
    let o = o.unwrap_or_else(|| panic!("the override is in the summary: {:#}", pack["summary"]));
    assert_eq!((o["actor"].as_str(), o["reason_code"].as_str()), (Some("it-admin"), Some("doc-anomaly")), "{o}");
    assert!(pack["summary"]["ats_writes"].as_array().unwrap().iter().any(|w| w["idempotency_key"] != ""));
    assert_eq!(pack["summary"]["evidence_links"], json!(["https://evidence.example/p/ev-1"]));
    assert_eq!(pack["policy"]["sha256"].as_str().unwrap().len(), 64);

    // The published key, served open.
    let key_doc: Value = app.get_as("/.well-known/vbridge-evidence-key", None).await.json().await.unwrap();
    assert_eq!(key_doc["alg"], "Ed25519");
    let dir = std::env::temp_dir().join(format!("vbridge-evidence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key.json");
    std::fs::write(&key_file, key_doc.to_string()).unwrap();
    let trusted = ["--public-key", key_file.to_str().unwrap()];

    let file = dir.join("pack.json");
    std::fs::write(&file, &text).unwrap();
    let (code, err) = verify(&file, &trusted);
    assert_eq!(code, 0, "{err}");
    if !all {
        std::fs::remove_dir_all(dir).ok();
        return;
    }
    // `VBRIDGE_WRITE_SAMPLE=1` ships this run's pack and key as the sample
    // of docs/evidence.md (a unit test of the core checks they verify).
    if std::env::var("VBRIDGE_WRITE_SAMPLE").as_deref() == Ok("1") {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/evidence");
        std::fs::create_dir_all(docs).unwrap();
        std::fs::write(format!("{docs}/sample-pack.json"), &text).unwrap();
        std::fs::write(format!("{docs}/sample-key.json"), serde_json::to_string_pretty(&key_doc).unwrap() + "\n")
            .unwrap();
    }
    assert!(err.contains("every link intact") && err.contains("the trusted key"), "{err}");

    // Broken three ways, each named by its chain and position.
    let stream = format!("{c}:{a}");
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut p = pack.clone();
        edit(&mut p);
        let f = dir.join("broken.json");
        std::fs::write(&f, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
        verify(&f, &trusted)
    };
    let (code, err) = broken(&|p| {
        let r = &mut p["chains"][0]["records"][1]["linked"];
        *r = json!(r.as_str().unwrap().replace("verified", "failed"));
    });
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{stream} position 2")) && err.contains("edited"), "{err}");
    let (code, err) = broken(&|p| drop(p["chains"][0]["records"].as_array_mut().unwrap().remove(2)));
    assert_eq!(code, 1);
    assert!(err.contains("position 3 is missing"), "{err}");
    let (code, err) = broken(&|p| p["chains"][0]["records"].as_array_mut().unwrap().swap(1, 2));
    assert_eq!(code, 1);
    assert!(err.contains("out of order"), "{err}");

    // Another bridge's key does not vouch for this pack.
    let other = vbridge_core::evidence::EvidenceKey::parse(KEY_B).unwrap().public().to_base64();
    let (code, err) = verify(&file, &["--public-key", &other]);
    assert_eq!(code, 1);
    assert!(err.contains("not the trusted key"), "{err}");
    // Garbage is refused with a reason, not a panic.
    std::fs::write(dir.join("junk.json"), b"\xff\xfe not json").unwrap();
    let (code, err) = verify(&dir.join("junk.json"), &trusted);
    assert_eq!(code, 1);
    assert!(err.contains("not an evidence pack"), "{err}");

    // The printable view says the same.
    let html = app.get_as(&format!("{path}?format=html"), Some(AUDITOR_TOKEN)).await.text().await.unwrap();
    assert!(html.contains("Verified offline") && html.contains("doc-anomaly"), "{html}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_bridge_without_an_evidence_key_says_why_it_exports_nothing() {
    let app = TestApp::spawn("evidence-nokey").await;
    app.send(&started("cand-ev-2", "app-ev-2", "evt-ev2-1", &at(-10))).await;
    app.wait_synced("cand-ev-2", "app-ev-2", "pending").await;
    let r = app.get_as("/v1/candidates/cand-ev-2/evidence-pack", Some(AUDITOR_TOKEN)).await;
    assert_eq!(r.status(), 409, "a setting missing, not an outage");
    assert!(r.text().await.unwrap().contains("VBRIDGE_EVIDENCE_KEY"));
    assert_eq!(app.get_as("/.well-known/vbridge-evidence-key", None).await.status(), 404);
}
