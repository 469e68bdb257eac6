//! The Temporal UI as the engineers' window: the dev server with its UI,
//! one verification run to `verified`, and the UI's workflow list filtered by
//! `VerificationState="verified"` loaded in headless Chromium. The verified
//! candidate's workflow is listed and a pending one is not; the screenshot
//! is kept in the test's directory (and the run's memo is checked through
//! the Temporal CLI).

use crate::harness::{Options, TestApp, at};
use serde_json::Value;
use vbridge::devtools::client::{decision, started};

#[tokio::test]
async fn the_temporal_ui_lists_the_verified_candidate_by_its_search_attribute() {
    let app = TestApp::spawn_with("temporal-ui", Options { temporal_ui: true, ..Default::default() }).await;
    let ui = app.temporal.ui_url.clone().expect("the dev server runs its UI");
    let (c, a) = ("cand-tui", "app-tui");
    assert_eq!(app.send(&started(c, a, "evt-tui-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-tui-2", &at(-9), "verified")).await.status, 202);
    assert_eq!(app.send(&started("cand-tui-p", "app-tui-p", "evt-tui-3", &at(-8))).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    app.wait_synced("cand-tui-p", "app-tui-p", "pending").await;

    // The memo: who, and under which policy.
    let described = app.temporal_cli(&["workflow", "describe", "-w", "verification:cand-tui:app-tui", "-o", "json"]);
    let described: Value = serde_json::from_str(&described).unwrap();
    let memo = described["workflowExecutionInfo"]["memo"]["fields"].to_string();
    for part in ["candidate_id", "application_id", "policy_version"] {
        assert!(memo.contains(part), "memo lacks {part}: {memo}");
    }

    let shot = app.dir.join("temporal-ui-verified.png");
    let seen = crate::console::run_browser_script(
        "temporal-ui.mjs",
        vec![
            ("UI_URL", ui),
            ("QUERY", "VerificationState=\"verified\"".into()),
            ("EXPECT", "verification:cand-tui:app-tui".into()),
            ("SHOT", shot.display().to_string()),
        ],
    )
    .await;
    assert_eq!(seen["listed"], true, "{seen}");
    let ids: Vec<&str> = seen["workflowIds"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(ids.contains(&"verification:cand-tui:app-tui"), "{seen}");
    assert!(!ids.contains(&"verification:cand-tui-p:app-tui-p"), "a pending verification is filtered out: {seen}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "the screenshot is kept at {shot:?}");
}
