//! A provider declared in `VBRIDGE_CUSTOM_PROVIDERS` (docs/providers.md),
//! end to end: Checkr's `report.completed`, signed as Checkr signs (the hex
//! HMAC-SHA256 of the raw body keyed with the API key, in
//! `X-Checkr-Signature`: <https://docs.checkr.com/apis/webhooks>,
//! <https://github.com/checkr/webhook-verification-examples>), through the
//! real bridge and Temporal to the sandbox ATS.

use crate::harness::{Options, TestApp, at};
use serde_json::json;
use vbridge_core::intake::providers::custom::{RawSpec, Spec, sign};
use vbridge_core::intake::signature::Secret;

use vbridge::config::EXAMPLE_CHECKR as CHECKR;
const API_KEY: &str = "it-checkr-api-key";

/// Checkr's event envelope (`id`, `object`, `type`, `created_at`,
/// `webhook_url`, `data.object`) around a completed report; the report's
/// `tags` carry the bridge's reference.
fn report_completed(event: &str, report: &str, result: &str, reference: &str, minutes: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": event, "object": "event", "type": "report.completed",
        "created_at": at(minutes), "webhook_url": "https://bridge.example/webhooks/custom/checkr",
        "data": {"object": {"id": report, "object": "report", "uri": format!("/v1/reports/{report}"),
            "status": "complete", "result": result, "package": "driver_pro",
            "candidate_id": "e44aa283528e6fde7d542194", "tags": [reference],
            "created_at": at(minutes - 60), "completed_at": at(minutes)}}}))
    .unwrap()
}

#[tokio::test]
async fn a_declared_checkr_report_reaches_the_ats() {
    let dir = std::env::temp_dir().join(format!("vbridge-it-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("providers.toml");
    std::fs::write(&file, CHECKR).unwrap();
    let extra_env = vec![
        ("VBRIDGE_CUSTOM_PROVIDERS".to_owned(), file.display().to_string()),
        ("VBRIDGE_CUSTOM_CHECKR_SECRETS".to_owned(), format!("old-key,{API_KEY}")),
    ];
    let app = TestApp::spawn_with("providers-custom", Options { extra_env, ..Default::default() }).await;
    let table: toml::Table = CHECKR.parse().unwrap();
    let raw: RawSpec = table["checkr"].clone().try_into().unwrap();
    let spec = Spec::parse("checkr", &raw).unwrap();
    let key = Secret::raw(API_KEY, 1).unwrap();
    let post = |path: &str, body: Vec<u8>, sig: String| {
        app.http
            .post(format!("{}{path}", app.bridge_url))
            .header("content-type", "application/json")
            .header("X-Checkr-Signature", sig)
            .body(body)
            .send()
    };
    let (c, a) = ("cand-checkr-1", "app-1");
    let body = report_completed("evt-ck-1", "rep-ck-1", "clear", &format!("{c}:{a}"), -1);
    let r = post("/webhooks/custom/checkr", body.clone(), sign(&spec, &key, &body)).await.unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["status"].as_str(), v["event_id"].as_str()), (Some("accepted"), Some("custom:checkr:evt-ck-1")));
    assert_eq!(app.wait_synced(c, a, "verified").await.state, "verified");
    // Its retry is a duplicate.
    let r = post("/webhooks/custom/checkr", body.clone(), sign(&spec, &key, &body)).await.unwrap();
    assert_eq!(r.status(), 200);
    // A status the table does not name: recorded, 202 ignored, with its reason.
    let body = report_completed("evt-ck-2", "rep-ck-2", "pending", "cand-checkr-2:app-1", -1);
    let r = post("/webhooks/custom/checkr", body.clone(), sign(&spec, &key, &body)).await.unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("ignored"), Some("event_type_not_mapped")));
    // A wrong key, and a name not declared.
    let wrong = sign(&spec, &Secret::raw("not-the-key", 1).unwrap(), &body);
    assert_eq!(post("/webhooks/custom/checkr", body.clone(), wrong).await.unwrap().status(), 401);
    assert_eq!(post("/webhooks/custom/acme", body.clone(), sign(&spec, &key, &body)).await.unwrap().status(), 404);
    // Counted under the declared provider's own name.
    let metrics = app.metrics().await;
    for line in [
        r#"vbridge_provider_webhook_requests_total{provider="checkr",result="accepted"} 1"#,
        r#"vbridge_provider_webhook_requests_total{provider="checkr",result="duplicate"} 1"#,
        r#"vbridge_provider_webhook_requests_total{provider="checkr",result="ignored"} 1"#,
        r#"vbridge_provider_webhook_requests_total{provider="checkr",result="signature_invalid"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    }
}
