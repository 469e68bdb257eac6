//! The Temporal UI as the engineers' window: the dev server with its UI,
//! one verification run to `verified`, and the UI's workflow list filtered by
//! `VerificationState="verified"` loaded in headless Chromium. The verified
//! candidate's workflow is listed and a pending one is not; the screenshot
//! is kept in the test's directory (and the run's memo is checked through
//! the Temporal CLI).

use crate::harness::{Options, TestApp, at};
use serde_json::Value;
use std::process::Command;
use vbridge::devtools::client::{decision, started};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser");

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
    let shot_path = shot.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(format!("{BROWSER_DIR}/temporal-ui.mjs"))
            .current_dir(BROWSER_DIR)
            .env("UI_URL", ui)
            .env("QUERY", "VerificationState=\"verified\"")
            .env("EXPECT", "verification:cand-tui:app-tui")
            .env("CHROMIUM", crate::console::chromium())
            .env("SHOT", shot_path.display().to_string())
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(seen["listed"], true, "{seen}");
    let ids: Vec<&str> = seen["workflowIds"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(ids.contains(&"verification:cand-tui:app-tui"), "{seen}");
    assert!(!ids.contains(&"verification:cand-tui-p:app-tui-p"), "a pending verification is filtered out: {seen}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "the screenshot is kept at {shot:?}");
}
