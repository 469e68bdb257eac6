//! The audit trail: decisions in the append-only log, hash chains that catch
//! an edit made behind the bridge's back, the timeline export, and proof that
//! biometric values are stored nowhere.

use crate::harness::{AUDITOR_TOKEN, Options, TestApp, at, days_and_minutes_ago, postgres_url, raw_sql};
use std::process::Command;
use std::time::Duration;
use vbridge::devtools::client::{decision, started};
use vbridge_core::record::RecordKind;

const WAIT: Duration = Duration::from_secs(60);

fn vbridge(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(args)
        .env("VBRIDGE_DATABASE_URL", app.database_url())
        .env("VBRIDGE_LOG", "warn")
        .output()
        .expect("running vbridge")
}

/// Run the happy path and wait until its six decision records are stored.
async fn verified_candidate(app: &TestApp, cand: &str) -> Vec<vbridge::store::StoredDecision> {
    app.send(&started(cand, "app-a", &format!("evt-{cand}-1"), &at(-10))).await;
    let d = decision(cand, "app-a", &format!("evt-{cand}-2"), &at(-5), "verified");
    app.send(&d).await;
    app.send(&d).await; // a duplicate delivery
    app.wait_synced(cand, "app-a", "verified").await;
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("applied, ats_write and ats_attempt records", WAIT, || async {
        let d = store.decisions(Some(cand), None).await.ok()?;
        let n = |k: &str| d.iter().filter(|r| r.record.kind == k).count();
        (n("applied") == 2 && n("ats_write") == 2 && n("ats_attempt") == 2).then_some(d)
    })
    .await
}

#[tokio::test]
async fn decisions_are_logged_with_required_fields_and_an_edit_breaks_the_chain() {
    decisions_logged_and_edit_caught(TestApp::spawn("audit").await).await;
}

#[tokio::test]
async fn on_postgres_decisions_are_logged_and_an_edit_breaks_the_chain() {
    let database_url = Some(postgres_url().await);
    decisions_logged_and_edit_caught(
        TestApp::spawn_with("audit-pg", Options { database_url, ..Default::default() }).await,
    )
    .await;
}

async fn decisions_logged_and_edit_caught(app: TestApp) {
    let decisions = verified_candidate(&app, "cand-a").await;
    for r in decisions.iter().filter(|r| r.record.kind == "applied") {
        let r = &r.record;
        for (name, v) in [
            ("event_id", &r.event_id),
            ("event_type", &r.event_type),
            ("occurred_at", &r.occurred_at),
            ("received_at", &r.received_at),
            ("candidate_id", &r.candidate_id),
            ("application_id", &r.application_id),
            ("idempotency_key", &r.idempotency_key),
            ("processing_result", &r.processing_result),
            ("trace_id", &r.trace_id),
            ("state_before", &r.state_before),
            ("state_after", &r.state_after),
        ] {
            assert!(!v.is_empty(), "{name} is empty in {r:?}");
        }
    }
    let writes: Vec<_> = decisions.iter().filter(|r| r.record.kind == "ats_write").collect();
    assert!(writes.iter().all(|w| w.record.write_targets.starts_with("application/app-a/verification-check/")));
    // Nothing was appended twice, though workers retry and workflows replay.
    let mut ids: Vec<_> = decisions.iter().map(|d| d.record.record_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), decisions.len());

    let ok = vbridge(&app, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(report["records"].as_u64().unwrap() >= 9, "{report}");
    assert!(report["broken"].is_null());

    // Someone with database access rewrites history: drops the guard, edits a decision.
    let url = app.database_url();
    let guarded = raw_sql(&url, "UPDATE decisions SET state_after = 'failed' WHERE kind = 'applied'").await;
    assert!(guarded.unwrap_err().contains("append-only"));
    let drop_guard = if url.starts_with("postgres") {
        "DROP TRIGGER decisions_append_only ON decisions"
    } else {
        "DROP TRIGGER decisions_no_update"
    };
    raw_sql(&url, drop_guard).await.unwrap();
    let target = decisions.iter().find(|d| d.record.kind == "applied" && d.record.state_after == "verified").unwrap();
    let edit = format!("UPDATE decisions SET state_after = 'failed' WHERE record_id = '{}'", target.record.record_id);
    raw_sql(&url, &edit).await.unwrap();
    let bad = vbridge(&app, &["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1), "verify must fail on an edited record");
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert!(report["broken"]["record"].as_str().unwrap().contains(&target.record.record_id), "{report}");
    assert!(report["broken"]["problem"].as_str().unwrap().contains("edited"), "{report}");
}

#[tokio::test]
async fn timeline_exports_as_json_csv_and_a_printable_html_page() {
    let app = TestApp::spawn("timeline").await;
    verified_candidate(&app, "cand-t").await;
    // 40 forged deliveries claim the same candidate: they are not its events.
    for i in 0..40 {
        let bytes = serde_json::to_vec(&started("cand-t", "app-a", &format!("evt-forged-{i}"), &at(-1))).unwrap();
        let forged = vec![("X-IL-Timestamp".into(), "1".into()), ("X-IL-Signature".into(), "v1=00".into())];
        assert_eq!(app.client.send_raw(bytes, forged).await.unwrap().status, 401);
    }
    // They are listed for auditors, as unverified claims, once their window is recorded.
    let listed = app
        .wait_for("the forged deliveries in the refused listing", WAIT, || async {
            let r = app.get_as("/v1/audit/refused-deliveries?candidate_id=cand-t", Some(AUDITOR_TOKEN)).await;
            let json: serde_json::Value = r.json().await.ok()?;
            let items = json["items"].as_array()?.clone();
            (items.iter().map(|i| i["count"].as_u64().unwrap_or(0)).sum::<u64>() == 40).then_some(items)
        })
        .await;
    for i in &listed {
        assert_eq!((i["source"].as_str(), i["code"].as_str()), (Some("window"), Some("invalid_signature")), "{i}");
        assert_eq!(
            (i["claimed"]["candidate_id"].as_str(), i["claims_verified"].as_bool()),
            (Some("cand-t"), Some(false))
        );
    }
    let cli = app.vbridge_cli(&["audit", "refused", "--candidate", "cand-t", "--code", "invalid_signature"]).await;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let page: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().iter().map(|i| i["count"].as_u64().unwrap()).sum::<u64>(), 40);
    let path = "/v1/audit/refused-deliveries";
    assert_eq!(app.get_as(path, Some(crate::harness::OPS_TOKEN)).await.status(), 403, "auditors only");
    assert_eq!(app.get_as(path, None).await.status(), 401);
    assert_eq!(app.get_as(&format!("{path}?since=yesterday"), Some(AUDITOR_TOKEN)).await.status(), 400);

    let json: serde_json::Value =
        app.get_as("/v1/candidates/cand-t/timeline", Some(AUDITOR_TOKEN)).await.json().await.unwrap();
    assert_eq!(json["current_state"], "verified");
    assert!(json["chain"]["broken"].is_null(), "{}", json["chain"]);
    let kinds: Vec<&str> = json["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    for k in ["accepted", "duplicate", "applied", "ats_attempt", "ats_write"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(!json.to_string().contains("evt-forged"), "a forged delivery in the timeline: {kinds:?}");
    assert!(!kinds.contains(&"rejected") && !kinds.contains(&"deliveries_refused"), "{kinds:?}");
    assert!(json["items"].as_array().unwrap().iter().all(|i| !i["trace_id"].as_str().unwrap().is_empty()));

    let csv = vbridge(&app, &["timeline", "--candidate", "cand-t", "--format", "csv"]);
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("at,source,kind,event_id"));
    assert_eq!(csv.lines().count(), kinds.len() + 1);
    assert!(!csv.contains("evt-forged") && !csv.contains("invalid_signature"), "{csv}");

    let html = vbridge(&app, &["timeline", "--candidate", "cand-t", "--application", "app-a", "--format", "html"]);
    assert!(html.status.success());
    let page = app.dir.join("evidence.html");
    std::fs::write(&page, &html.stdout).unwrap();
    let dom = chromium(&["--dump-dom", &format!("file://{}", page.display())]);
    assert!(dom.contains(r#"<dd id="candidate">cand-t</dd>"#), "{dom}");
    assert!(dom.contains(r#"<dd id="state">verified</dd>"#));
    assert!(dom.contains("every link intact"));
    assert!(dom.matches("<tr>").count() > kinds.len() / 2);
    let png = app.dir.join("evidence.png");
    chromium(&[
        "--window-size=1400,900",
        &format!("--screenshot={}", png.display()),
        &format!("file://{}", page.display()),
    ]);
    let shot = std::fs::read(&png).expect("chromium wrote a screenshot");
    assert!(shot.len() > 10_000 && shot.starts_with(b"\x89PNG"), "a real rendering, {} bytes", shot.len());
}

fn chromium(args: &[&str]) -> String {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("headless Chromium is needed: apt-get install chromium (scripts/setup.sh installs it)");
    let profile = std::env::temp_dir().join(format!("vbridge-chromium-{}", std::process::id()));
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("running chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn biometric_values_are_stored_nowhere_only_their_hashes() {
    let app = TestApp::spawn("pii").await;
    let canary = format!("BIOMETRIC-CANARY-{}", std::process::id());
    let hash = vbridge::intake::sha256_hex(canary.as_bytes());
    let mut s = started("cand-p", "app-p", "evt-p-1", &at(-10));
    s["biometric_templates"] = canary.clone().into();
    s["signals"] = serde_json::json!({
        "face": {"raw_face_image": canary},
        "documents": [{"kind": "passport", "raw_document_image": canary}],
    });
    assert_eq!(app.send(&s).await.status, 202);
    let mut d = decision("cand-p", "app-p", "evt-p-2", &at(-5), "verified");
    d["signals"] = serde_json::json!({"liveness": {"raw_face_image": canary}});
    app.send(&d).await;
    // An unsigned delivery carrying the value is rejected and keeps no payload.
    app.client.send_raw(serde_json::to_vec(&s).unwrap(), vec![]).await.unwrap();
    app.wait_synced("cand-p", "app-p", "verified").await;
    app.wait_for("decisions logged", WAIT, || async {
        let store = vbridge::config::open_store(&app.database_url()).await.ok()?;
        (store.decisions(Some("cand-p"), None).await.ok()?.len() >= 6).then_some(())
    })
    .await;

    let mut db_bytes = Vec::new();
    for f in std::fs::read_dir(&app.dir).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with("vbridge.db") {
            db_bytes.extend(std::fs::read(f.path()).unwrap());
        }
    }
    let db = String::from_utf8_lossy(&db_bytes);
    assert!(!db.contains(&canary), "the biometric value is in the event store");
    assert!(!db.contains(&hash), "the body is sealed at rest, its hashes too (docs/privacy.md)");
    // Opened with the candidate's key, the stored body holds the SHA-256.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let key = store.existing_field_key("cand-p").await.unwrap().expect("the candidate's key");
    let opened: Vec<String> = store
        .deliveries(Some("cand-p"), None)
        .await
        .unwrap()
        .iter()
        .filter_map(|d| d.payload.as_deref().map(|p| vbridge_core::seal::reveal(Some(&key), "cand-p", p)))
        .collect();
    assert!(opened.iter().any(|p| p.contains(&hash)), "its SHA-256 is kept: {opened:?}");
    assert!(!opened.iter().any(|p| p.contains(&canary)), "the value itself is not");

    let handle = app
        .temporal_client
        .get_workflow_handle::<vbridge_workflows::CandidateVerification>("verification:cand-p:app-p");
    let history = handle.fetch_history(Default::default()).to_json().await.unwrap();
    assert!(!String::from_utf8_lossy(&history).contains(&canary), "the value is in the Temporal history");

    let log = app.bridge_log();
    assert!(!log.contains(&canary), "the value is in the bridge's log");
    let ats = serde_json::to_string(&app.writes().await).unwrap();
    assert!(!ats.contains(&canary), "the value reached the ATS");
}

/// An RFC 3339 time `days` ago (old enough for a retention under a floor
/// of fewer days to cut).
pub(crate) fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A policy file that keeps the audit log one day (`eventLog.retentionDays`).
pub(crate) fn one_day_policy() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("policy-retention-1d.yaml");
    let text = vbridge_core::DEFAULT_POLICY_YAML.replacen("retentionDays: 365", "retentionDays: 1", 1);
    assert_ne!(text, vbridge_core::DEFAULT_POLICY_YAML, "the policy's retentionDays line moved");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A delivery refused three days ago (it goes to the `rejected` chain).
pub(crate) fn old_refused_delivery() -> vbridge::store::DeliveryRecord {
    vbridge::store::DeliveryRecord {
        received_at: days_ago(3),
        intent: vbridge::store::Intent::Rejected,
        reject_code: Some("invalid_signature".into()),
        trace_id: "t".into(),
        body_sha256: "00".into(),
        ..Default::default()
    }
}

/// The cut a retention under a one-day floor makes now.
pub(crate) fn one_day_cut() -> vbridge_core::chain::floor::Cut {
    vbridge_core::chain::floor::cutoff(chrono::Utc::now(), None, 1).unwrap()
}

/// A SQLite store with two chains, written three days ago through the
/// store's own API.
pub(crate) async fn two_chains(name: &str) -> (std::sync::Arc<dyn vbridge::store::EventStore>, String) {
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tamper-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let s = vbridge::config::open_store(&url).await.unwrap();
    for (c, n) in [("c1", 4), ("c2", 3)] {
        for i in 0..n {
            let rec = vbridge::store::DeliveryRecord {
                received_at: days_ago(3),
                event_id: Some(format!("{c}-e{i}-{name}")),
                event_type: Some("verification.started".into()),
                candidate_id: Some(c.into()),
                application_id: Some("a".into()),
                idempotency_key: Some(format!("{c}-k{i}-{name}")),
                signature_valid: true,
                trace_id: "t".into(),
                body_sha256: "00".into(),
                payload: Some("{}".into()),
                signal: Some("{}".into()),
                ..Default::default()
            };
            s.commit(rec).await.unwrap();
        }
        s.append_decisions(vec![vbridge_proto::DecisionRecord {
            record_id: format!("dec-{c}-{name}"),
            recorded_at: days_ago(3),
            kind: "applied".into(),
            candidate_id: c.into(),
            application_id: "a".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    }
    (s, url)
}

pub(crate) fn verify_cli(url: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["audit", "verify"])
        .args(extra)
        .env("VBRIDGE_DATABASE_URL", url)
        .env("VBRIDGE_POLICY", one_day_policy())
        .env("VBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_default())
}

#[tokio::test]
async fn deleting_a_chains_last_record_or_a_whole_stream_or_forging_a_checkpoint_is_caught() {
    // The last record of a chain, removed behind the bridge's back.
    let (_s, url) = two_chains("tail").await;
    assert_eq!(verify_cli(&url, &[]).0, Some(0));
    raw_sql(&url, "DROP TRIGGER decisions_no_delete").await.unwrap();
    raw_sql(&url, "DELETE FROM decisions WHERE record_id = 'dec-c1-tail'").await.unwrap();
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["broken"]["stream"], "c1:a");
    assert!(report["broken"]["problem"].as_str().unwrap().contains("removed from its end"), "{report}");

    // A whole stream, removed.
    let (_s, url) = two_chains("stream").await;
    raw_sql(&url, "DROP TRIGGER decisions_no_delete").await.unwrap();
    raw_sql(&url, "DROP TRIGGER deliveries_no_delete").await.unwrap();
    raw_sql(&url, "DELETE FROM decisions WHERE stream = 'c2:a'").await.unwrap();
    raw_sql(&url, "DELETE FROM outbox WHERE seq IN (SELECT seq FROM deliveries WHERE stream = 'c2:a')").await.unwrap();
    raw_sql(&url, "DELETE FROM deliveries WHERE stream = 'c2:a'").await.unwrap();
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["broken"]["stream"], "c2:a", "{report}");

    // A prefix removed and a checkpoint forged to cover it.
    let (s, url) = two_chains("forge").await;
    let second = s.deliveries(Some("c1"), None).await.unwrap()[1].hash.clone().unwrap();
    raw_sql(&url, "DROP TRIGGER deliveries_no_delete").await.unwrap();
    raw_sql(
        &url,
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM deliveries WHERE stream = 'c1:a' AND chain_pos <= 2)",
    )
    .await
    .unwrap();
    raw_sql(&url, "DELETE FROM deliveries WHERE stream = 'c1:a' AND chain_pos <= 2").await.unwrap();
    let forged = format!(
        "INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at) VALUES ('c1:a', 3, '{second}', 2, 'x')"
    );
    let refused = raw_sql(&url, &forged).await.expect_err("checkpoints are guarded");
    assert!(refused.contains("retention"), "{refused}");
    raw_sql(&url, "DROP TRIGGER chain_checkpoints_no_insert").await.unwrap();
    raw_sql(&url, &forged).await.unwrap();
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report["broken"]["problem"].as_str().unwrap().contains("forged"), "{report}");
}

/// `vbridge audit seal` of the SQLite store at `url`, kept beside it.
pub(crate) fn seal_beside(url: &str) -> std::path::PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["audit", "seal"])
        .env("VBRIDGE_DATABASE_URL", url)
        .env("VBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seal_file = std::path::PathBuf::from(url.strip_prefix("sqlite://").unwrap()).with_file_name("seal.json");
    std::fs::write(&seal_file, &out.stdout).unwrap();
    seal_file
}

#[tokio::test]
async fn a_seal_survives_retention_and_catches_a_rewrite_of_the_whole_store() {
    let (s, url) = two_chains("seal").await;
    let seal_file = seal_beside(&url);
    let seal_arg = seal_file.display().to_string();
    assert_eq!(verify_cli(&url, &["--seal", &seal_arg]).0, Some(0));

    // Retention, legitimately, cuts the old records: the seal still holds.
    let seqs: Vec<i64> = s.unforwarded(100).await.unwrap().iter().map(|f| f.seq).collect();
    s.mark_forwarded(seqs).await.unwrap();
    s.retain(&one_day_cut()).await.unwrap();
    let (code, report) = verify_cli(&url, &["--seal", &seal_arg]);
    assert_eq!(code, Some(0), "{report}");

    // The whole store rewritten, every chain consistent again: only the seal tells.
    drop(s);
    let dir = seal_file.parent().unwrap();
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("events.db") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    let s2 = vbridge::config::open_store(&url).await.unwrap();
    for i in 0..6 {
        s2.append_decisions(vec![vbridge_proto::DecisionRecord {
            record_id: format!("rewritten-{i}"),
            kind: "applied".into(),
            candidate_id: "c1".into(),
            application_id: "a".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    }
    assert_eq!(verify_cli(&url, &[]).0, Some(0), "the rewritten store is consistent in itself");
    let (code, report) = verify_cli(&url, &["--seal", &seal_arg]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report["broken"]["record"].as_str().unwrap().contains("sealed head"), "{report}");
}

/// The SQL between the grant markers in docs/operations.md, for `role`.
fn documented_grants(role: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md")).unwrap();
    let start = doc.find("-- vbridge grants (begin)").expect("the grants block in docs/operations.md");
    let end = doc.find("-- vbridge grants (end)").unwrap();
    doc[start..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|s| s.trim().replace("vbridge_app", role))
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn on_postgres_serve_and_retention_run_as_a_role_that_owns_nothing() {
    let owner_url = postgres_url().await;
    let migrate = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .arg("migrate")
        .env("VBRIDGE_DATABASE_URL", &owner_url)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let role = format!("vbridge_app_{}", std::process::id());
    let _ = raw_sql(&owner_url, &format!("DROP OWNED BY {role}")).await;
    let _ = raw_sql(&owner_url, &format!("DROP ROLE IF EXISTS {role}")).await;
    for statement in documented_grants(&role) {
        raw_sql(&owner_url, &statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let app_url = owner_url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(app_url, owner_url);

    // The bridge runs three days back, so that a retention under a floor of
    // one day, at the real time, has its records to cut.
    let mut extra_env = crate::harness::faketime_env("-3d");
    extra_env.push(("VBRIDGE_POLICY".into(), one_day_policy()));
    let app =
        TestApp::spawn_with("grants", Options { database_url: Some(app_url.clone()), extra_env, ..Default::default() })
            .await;
    app.send_days_ago(&started("cand-o", "app-o", "evt-o-1", &days_and_minutes_ago(3, 10)), 3).await;
    app.send_days_ago(&decision("cand-o", "app-o", "evt-o-2", &days_and_minutes_ago(3, 5), "verified"), 3).await;
    app.wait_synced("cand-o", "app-o", "verified").await;
    let e = raw_sql(&app_url, "DELETE FROM deliveries").await.expect_err("no DELETE right");
    assert!(e.contains("permission denied"), "{e}");
    let e = raw_sql(&app_url, "UPDATE decisions SET reason = 'x'").await.expect_err("no UPDATE right");
    assert!(e.contains("permission denied"), "{e}");

    let store = vbridge::config::open_store(&app_url).await.unwrap();
    app.wait_for("everything forwarded and logged", WAIT, || async {
        let empty = store.unforwarded(10).await.ok()?.is_empty();
        let n = store.decisions(Some("cand-o"), None).await.ok()?.len();
        (empty && n >= 6).then_some(())
    })
    .await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vbridge"))
            .args(args)
            .env("VBRIDGE_DATABASE_URL", &app_url)
            .env("VBRIDGE_POLICY", one_day_policy())
            .env("VBRIDGE_LOG", "warn")
            .output()
            .unwrap()
    };
    let retention = run(&["audit", "retention"]);
    assert!(retention.status.success(), "{}", String::from_utf8_lossy(&retention.stderr));
    let report: serde_json::Value = serde_json::from_slice(&retention.stdout).unwrap();
    assert!(report["records_removed"].as_u64().unwrap() > 0, "{report}");
    let verify = run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));

    // Erasure (docs/privacy.md) works with these grants; afterwards retention
    // and verify run as before, and retention never cuts the erasure record
    // (made three days back, under a one-day floor).
    let body = serde_json::json!({"reason_code": "candidate_request", "note": ""});
    let r = app.post_as("/v1/candidates/cand-o/erase", Some(crate::harness::ADMIN_TOKEN), Some("er-o"), &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert!(store.existing_field_key("cand-o").await.unwrap().is_none(), "the key is gone");
    let retention = run(&["audit", "retention"]);
    assert!(retention.status.success(), "{}", String::from_utf8_lossy(&retention.stderr));
    assert_eq!(store.erasures(None).await.unwrap().len(), 1, "the erasure record is kept");
    let verify = run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["erased_candidates"], serde_json::json!(["cand-o"]), "{report}");
    drop(app);
    let _ = raw_sql(&owner_url, &format!("DROP OWNED BY {role}")).await;
    let _ = raw_sql(&owner_url, &format!("DROP ROLE IF EXISTS {role}")).await;
}

/// Retention cuts every kind of chain (a verification's, `access`,
/// `rejected`), each cut recorded in the chain it cut, so verify stays green
/// after the nightly job; with two chains edited, verify names both and still
/// checks the seal.
#[tokio::test]
async fn retention_of_every_kind_of_chain_verifies_and_verify_names_every_broken_chain() {
    let (s, url) = two_chains("kinds").await;
    s.append_decisions(vec![vbridge_proto::DecisionRecord {
        record_id: "acc-1-kinds".into(),
        recorded_at: days_ago(3),
        kind: RecordKind::AccessDenied.into(),
        reason: "401 unauthenticated GET /v1/reviews".into(),
        ..Default::default()
    }])
    .await
    .unwrap();
    s.commit(old_refused_delivery()).await.unwrap();
    let seqs: Vec<i64> = s.unforwarded(100).await.unwrap().iter().map(|f| f.seq).collect();
    s.mark_forwarded(seqs).await.unwrap();
    let cut = s.retain(&one_day_cut()).await.unwrap();
    assert!(cut.streams_cut >= 4, "c1, c2, access and rejected were cut: {cut:?}");
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(0), "a legitimate retention never breaks verify: {report}");

    // A seal, then two chains edited behind the store's back.
    let seal_file = seal_beside(&url);
    for c in ["c1", "c2"] {
        s.append_decisions(vec![vbridge_proto::DecisionRecord {
            record_id: format!("dec-{c}-late"),
            recorded_at: vbridge::now_rfc3339(),
            kind: RecordKind::Applied.into(),
            candidate_id: c.into(),
            application_id: "a".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    }
    raw_sql(&url, "DROP TRIGGER decisions_no_update").await.unwrap();
    for c in ["c1", "c2"] {
        raw_sql(&url, &format!("UPDATE decisions SET reason = 'edited' WHERE record_id = 'dec-{c}-late'"))
            .await
            .unwrap();
    }
    let (code, report) = verify_cli(&url, &["--seal", &seal_file.display().to_string()]);
    assert_eq!(code, Some(1), "{report}");
    let streams: Vec<&str> =
        report["broken_chains"].as_array().unwrap().iter().filter_map(|b| b["stream"].as_str()).collect();
    assert!(streams.contains(&"c1:a") && streams.contains(&"c2:a"), "both edited chains named: {report}");
    assert_eq!(report["broken"]["stream"], "c1:a", "the first stays where readers of one break look: {report}");

    // The seal is checked even beside broken chains: a sealed record removed is named too.
    raw_sql(&url, "DROP TRIGGER decisions_no_delete").await.unwrap();
    raw_sql(&url, "DELETE FROM decisions WHERE stream = 'access'").await.unwrap();
    let (code, report) = verify_cli(&url, &["--seal", &seal_file.display().to_string()]);
    assert_eq!(code, Some(1), "{report}");
    let problems: Vec<&str> =
        report["broken_chains"].as_array().unwrap().iter().filter_map(|b| b["problem"].as_str()).collect();
    assert!(problems.iter().any(|p| p.contains("sealed")), "the seal's finding is reported: {report}");
}

/// A delivery row with no place in any chain fails verify: it was written
/// behind the store.
#[tokio::test]
async fn a_delivery_row_outside_every_chain_fails_verify() {
    let (_s, url) = two_chains("unchained").await;
    raw_sql(&url, "DROP TRIGGER deliveries_no_update").await.unwrap();
    raw_sql(&url, "UPDATE deliveries SET chain_pos = NULL, prev_hash = NULL, hash = NULL WHERE seq = 1").await.unwrap();
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    let problems: Vec<&str> =
        report["broken_chains"].as_array().unwrap().iter().filter_map(|b| b["problem"].as_str()).collect();
    assert!(problems.iter().any(|p| p.contains("no place in any chain")), "{report}");
}
