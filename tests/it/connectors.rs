//! ATS connectors against receivers of the test's own, over real HTTP. The
//! signed HRIS webhook: the Standard Webhooks signature and headers, a 429
//! with `Retry-After`, and a permanent 4xx becoming a dead letter.

use crate::harness::{OPS_TOKEN, Options, TestApp, at};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vbridge::devtools::client::{decision, started};
use vbridge_core::intake::signature::{Secret, sign_standard};

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec_dGVzdC1ocmlzLXdlYmhvb2stc2VjcmV0LTEyMzQ=";

#[derive(Default)]
struct Receiver {
    /// Statuses to answer, in order; then 200.
    script: Vec<u16>,
    got: Vec<(HeaderMap, Vec<u8>, u16, Instant)>,
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state: Arc<Mutex<Receiver>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hris",
            axum::routing::post(
                |State(r): State<Arc<Mutex<Receiver>>>, headers: HeaderMap, body: bytes::Bytes| async move {
                    let mut r = r.lock().unwrap();
                    let status = if r.script.is_empty() { 200 } else { r.script.remove(0) };
                    r.got.push((headers, body.to_vec(), status, Instant::now()));
                    let mut h = HeaderMap::new();
                    if status == 429 {
                        h.insert("Retry-After", "1".parse().unwrap());
                    }
                    (StatusCode::from_u16(status).unwrap(), h, "{}")
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hris", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

#[tokio::test]
async fn the_signed_webhook_connector_signs_retries_and_dead_letters() {
    let (url, rx) = receiver().await;
    rx.lock().unwrap().script = vec![429];
    let app = TestApp::spawn_with(
        "hris",
        Options {
            extra_env: vec![
                ("VBRIDGE_ATS_KIND".into(), "webhook".into()),
                ("VBRIDGE_ATS_URL".into(), url),
                ("VBRIDGE_ATS_WEBHOOK_SECRET".into(), SECRET.into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let (c, a) = ("cand-h", "app-h");
    assert_eq!(app.send(&started(c, a, "evt-h-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;

    // The first push was throttled; the second came after its Retry-After.
    let got: Vec<_> = rx.lock().unwrap().got.iter().map(|(h, b, s, t)| (h.clone(), b.clone(), *s, *t)).collect();
    assert_eq!(got.iter().map(|g| g.2).collect::<Vec<_>>(), vec![429, 200]);
    assert!(got[1].3 - got[0].3 >= Duration::from_millis(900), "Retry-After: 1 was honoured");
    let secret = Secret::parse(SECRET, 0).unwrap();
    for (headers, body, _, _) in &got {
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let ts: i64 = h("webhook-timestamp").parse().unwrap();
        assert_eq!(h("webhook-signature"), sign_standard(&secret, &h("webhook-id"), ts, body), "Standard Webhooks");
        assert_eq!(h("webhook-id"), h("Idempotency-Key"), "the write's idempotency key names the message");
        assert!(!h("X-Trace-Id").is_empty());
    }
    assert_eq!(got[0].0.get("Idempotency-Key"), got[1].0.get("Idempotency-Key"), "the same key on a retry");
    let body: Value = serde_json::from_slice(&got[1].1).unwrap();
    assert_eq!(body["type"], "verification.updated");
    assert_eq!((body["candidate_id"].as_str(), body["application_id"].as_str()), (Some(c), Some(a)));
    assert_eq!(body["fields"]["verification_state"], "pending");

    // A receiver that refuses for good: the write is a dead letter.
    rx.lock().unwrap().script = vec![422];
    assert_eq!(app.send(&decision(c, a, "evt-h-2", &at(-9), "verified")).await.status, 202);
    app.wait_for("the dead letter", WAIT, || async {
        let body: Value = app.get_as("/v1/writes/failed", Some(OPS_TOKEN)).await.json().await.ok()?;
        body["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(app.state(c, a).await.unwrap().ats_sync, "failed");
    assert_eq!(rx.lock().unwrap().got.iter().filter(|g| g.2 == 422).count(), 1, "a permanent 4xx is not retried");
    // Re-driven once the receiver is fixed.
    let r = app.post_as("/v1/writes/retry", Some(OPS_TOKEN), None, &json!({"all": true})).await;
    assert_eq!(r.status(), 202);
    app.wait_synced(c, a, "verified").await;
}

#[tokio::test]
async fn secrets_come_from_files_and_config_show_never_prints_them() {
    let dir = std::env::temp_dir().join(format!("vbridge-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("webhook-secret");
    std::fs::write(&file, "file-secret-xyz\n").unwrap();
    let hash = vbridge::intake::sha256_hex(b"rita-token");
    let run = |file_var: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vbridge"))
            .args(["config", "show"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VBRIDGE_WEBHOOK_SECRETS_FILE", file_var)
            .env("VBRIDGE_ATS_URL", "http://ats.example")
            .env("VBRIDGE_ATS_BEARER_TOKEN", "bearer-xyz")
            .env("VBRIDGE_DATABASE_URL", "postgres://app:pw-xyz@db.example/vbridge")
            .env("VBRIDGE_API_TOKENS", format!("reviewer:rita:{hash}"))
            .env("VBRIDGE_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&file.display().to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for secret in ["file-secret-xyz", "bearer-xyz", "pw-xyz", hash.as_str()] {
        assert!(!text.contains(secret), "config show printed a secret: {text}");
    }
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["webhook_secrets"], "1 secret(s), redacted", "read from the _FILE");
    assert_eq!(shown["ats"]["bearer_token"], "(set, redacted)");
    assert_eq!(shown["database_url"], "postgres://app:(redacted)@db.example/vbridge");
    assert_eq!(shown["api_credentials"], serde_json::json!(["rita: reviewer"]));
    let missing = run("/nonexistent/secret");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("VBRIDGE_WEBHOOK_SECRETS_FILE"));

    // Each connector's secrets: from a file, redacted; a missing one named.
    let gh_secret = dir.join("gh-secret");
    std::fs::write(&gh_secret, "gh-client-secret-xyz\n").unwrap();
    let connector = |extra: &[(&str, String)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vbridge"));
        cmd.args(["config", "show"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VBRIDGE_WEBHOOK_SECRETS", "s")
            .env("VBRIDGE_LOG", "warn");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = connector(&[
        ("VBRIDGE_ATS_KIND", "greenhouse".into()),
        ("VBRIDGE_GREENHOUSE_CLIENT_ID", "client-abc".into()),
        ("VBRIDGE_GREENHOUSE_CLIENT_SECRET_FILE", gh_secret.display().to_string()),
        ("VBRIDGE_GREENHOUSE_USER_ID", "77".into()),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("gh-client-secret-xyz"), "{text}");
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    let creds = &shown["ats"]["connector"]["credentials"];
    assert_eq!((creds["client_secret"].as_str(), creds["user_id"].as_str()), (Some("(set, redacted)"), Some("77")));
    assert_eq!(shown["ats"]["connector"]["api_url"], "https://harvest.greenhouse.io", "the real host by default");
    let out = connector(&[("VBRIDGE_ATS_KIND", "lever".into()), ("VBRIDGE_LEVER_API_KEY", "k".into())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VBRIDGE_LEVER_USER_ID"));
    let out = connector(&[("VBRIDGE_ATS_KIND", "ashby".into())]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("VBRIDGE_ASHBY_API_KEY"), "a missing key is named");
}

#[tokio::test]
async fn a_field_map_renames_what_is_written_and_reconciliation_reads_it_back() {
    let dir = std::env::temp_dir().join(format!("vbridge-fieldmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let map = dir.join("field-map.json");
    std::fs::write(&map, r#"{"verification_state": "cf_vb_state", "verification_last_event_id": "cf_vb_event"}"#)
        .unwrap();
    let app = TestApp::spawn_with(
        "fieldmap",
        Options { extra_env: vec![("VBRIDGE_ATS_FIELD_MAP".into(), map.display().to_string())], ..Default::default() },
    )
    .await;
    let (c, a) = ("cand-fm", "app-fm");
    assert_eq!(app.send(&started(c, a, "evt-fm-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-fm-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let last = app.writes().await.into_iter().last().unwrap();
    assert_eq!(last.fields.get("cf_vb_state").map(String::as_str), Some("verified"), "{:?}", last.fields);
    assert_eq!(last.fields.get("cf_vb_event").map(String::as_str), Some("evt-fm-2"));
    assert!(!last.fields.contains_key("verification_state"), "written under the ATS's key only");
    assert!(last.fields.contains_key("evidence_pack_url"), "a field the map does not name keeps its name");

    // Reconciliation reads the ATS's keys back under the policy's names: no drift.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("the expectation", WAIT, || async { (store.expected_count().await.ok()? == 1).then_some(()) }).await;
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(1), Some(0)), "{report}");

    // A map naming a field the bridge never writes is refused at start-up.
    std::fs::write(&map, r#"{"verification_stat": "typo"}"#).unwrap();
    let out = app.vbridge_cli(&["config", "show"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a field the bridge writes"));
}
