//! A vendor's reason label reaching the review queue as the policy's reason
//! code through `VBRIDGE_PROVIDER_REASON_MAP` (docs/providers.md), and an
//! unmapped one routed flagged `unlisted_reason_code`, its label kept.

use crate::harness::{Options, REVIEWER_TOKEN, TestApp, at};
use serde_json::Value;
use vbridge::devtools::providers::{DEV_VERIFF_API_KEY, Outcome, Signer, body, dev_secret, secret_var};
use vbridge_core::intake::providers::ProviderKind;

/// A bridge on Veriff's route (dev secrets), with `map` as the reason table
/// when given.
async fn veriff_app(name: &str, map: Option<&str>) -> TestApp {
    let kind = ProviderKind::Veriff;
    let mut extra_env = vec![
        (secret_var(kind).to_owned(), dev_secret(kind).to_owned()),
        ("VBRIDGE_VERIFF_API_KEY".to_owned(), DEV_VERIFF_API_KEY.to_owned()),
    ];
    if let Some(map) = map {
        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-reasons.toml"));
        std::fs::write(&path, map).unwrap();
        extra_env.push(("VBRIDGE_PROVIDER_REASON_MAP".to_owned(), path.display().to_string()));
    }
    TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await
}

/// Send Veriff's start and its `review` decision (its `reasonCode` 102);
/// the review item, once queued.
async fn reviewed(app: &TestApp, c: &str) -> Value {
    let kind = ProviderKind::Veriff;
    let signer = Signer::new(kind, dev_secret(kind), DEV_VERIFF_API_KEY);
    for (outcome, n, minutes) in [(Outcome::Started, 1, -10), (Outcome::NeedsReview, 2, 0)] {
        let b = body(kind, outcome, &format!("{c}:app-1"), "chk-reasons", n, &at(minutes));
        let r = signer.send(&app.http, &app.bridge_url, &b).await.unwrap();
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{outcome:?}: {:?}", r.body);
    }
    app.wait_for("the review item", std::time::Duration::from_secs(60), || async {
        let v: Value = app.get_as("/v1/reviews", Some(REVIEWER_TOKEN)).await.json().await.ok()?;
        v["items"].as_array()?.iter().find(|i| i["candidate_id"] == c).cloned()
    })
    .await
}

#[tokio::test]
async fn a_mapped_vendor_label_reaches_the_review_queue_as_the_policys_code() {
    let app = veriff_app("reasons-mapped", Some("[veriff]\n\"102\" = \"doc-anomaly\"\n")).await;
    let item = reviewed(&app, "cand-reasons-m").await;
    assert_eq!(item["reason_codes"], serde_json::json!(["doc-anomaly"]), "{item}");
    let flags = item["flags"].as_array().unwrap();
    assert!(!flags.iter().any(|f| f == "unlisted_reason_code"), "a mapped code is listed: {item}");
}

#[tokio::test]
async fn an_unmapped_vendor_label_is_routed_flagged_and_kept_as_given() {
    let app = veriff_app("reasons-unmapped", None).await;
    let item = reviewed(&app, "cand-reasons-u").await;
    let flags = item["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "unlisted_reason_code"), "{item}");
    assert!(!item["reason_codes"].to_string().contains("doc-anomaly"), "{item}");
    // The vendor's label is kept as given beside the codes, in the stored event.
    let rows = app.deliveries(Some("cand-reasons-u")).await;
    let mut payloads = vec![];
    for p in rows.iter().filter_map(|d| d.payload.as_deref()) {
        // Sealed under the candidate's key (docs/privacy.md): opened here.
        payloads.push(app.opened("cand-reasons-u", p).await);
    }
    assert!(
        payloads.iter().any(|p| p.contains("provider_labels") && p.contains("\"102\"")),
        "the label as given: {payloads:?}"
    );
}
