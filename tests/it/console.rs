//! The review console in a real browser: headless Chromium driven by
//! playwright-core (`tests/browser/console.mjs`) against the real bridge,
//! Temporal and store. A reviewer logs in, sees the item, decides, and sees
//! it leave the queue; the ATS has the write and the log has the actor.

use crate::harness::{Options, REVIEWER_TOKEN, TestApp, at};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use vbridge::devtools::client::{decision, started};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser");

fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("headless Chromium is needed: apt-get install chromium (scripts/setup.sh installs it)")
}

/// Run one of `tests/browser/`'s playwright scripts in headless Chromium
/// with `env`; the JSON line it prints last.
pub async fn run_browser_script(script: &'static str, env: Vec<(&'static str, String)>) -> Value {
    assert!(
        std::path::Path::new(&format!("{BROWSER_DIR}/node_modules/playwright-core")).exists(),
        "playwright-core is missing: run ./scripts/setup.sh (npm ci in tests/browser)"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(format!("{BROWSER_DIR}/{script}"))
            .current_dir(BROWSER_DIR)
            .envs(env)
            .env("CHROMIUM", chromium())
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
    serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap()
}

#[tokio::test]
async fn a_reviewer_logs_in_decides_in_the_console_and_the_item_leaves_the_queue() {
    let app = TestApp::spawn_with(
        "console",
        Options {
            extra_env: vec![("VBRIDGE_PUBLIC_URL".into(), "http://console.example".into())],
            ..Default::default()
        },
    )
    .await;
    let (c, a) = ("cand-ui", "app-ui");
    assert_eq!(app.send(&started(c, a, "evt-ui-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-ui-2", &at(-9), "needs_review")).await.status, 202);
    app.wait_for("the item in the queue", Duration::from_secs(30), || async {
        let store = vbridge::config::open_store(&app.database_url()).await.ok()?;
        store.review_item(c, a).await.ok().flatten()
    })
    .await;

    let seen = run_browser_script(
        "console.mjs",
        vec![
            ("BASE_URL", app.bridge_url.clone()),
            ("TOKEN", REVIEWER_TOKEN.into()),
            ("CANDIDATE", "cand-ui".into()),
            ("APPLICATION", "app-ui".into()),
            ("SHOTS", app.dir.display().to_string()),
        ],
    )
    .await;
    assert_eq!(seen["redirectedToLogin"], true, "{seen}");
    assert_eq!(seen["badLoginError"], "That token is not valid.");
    assert_eq!(seen["cookie"]["httpOnly"], true);
    assert_eq!(seen["cookie"]["sameSite"], "Strict");
    assert_eq!(seen["whoami"], "it-reviewer (reviewer)");
    let row = seen["rowBefore"].as_str().expect("the item is listed");
    assert!(row.contains("liveness-low") && row.contains("evidence pack"), "{row}");
    assert!(seen["countdown"].as_str().unwrap().starts_with("due in 11h"), "{seen}");
    assert_eq!(seen["itemState"], "needs_review");
    assert_eq!(seen["decideForm"], true);
    assert_eq!(seen["forgedStatus"], 403, "a form without the session's CSRF token is refused");
    assert_eq!(seen["notice"], "Decided cand-ui/app-ui: verified.");
    assert_eq!(seen["rowAfter"], 0, "the item left the queue");

    // The ATS has the write, the log has the actor; the forged form changed nothing.
    let view = app.wait_synced(c, a, "verified").await;
    assert!(view.review.is_none());
    let last = app.writes().await.into_iter().last().unwrap();
    assert_eq!(last.fields["override_actor"], "it-reviewer");
    assert_eq!(last.fields["override_reason_code"], "liveness-low");
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let decided = app
        .wait_for("the decision in the log", Duration::from_secs(30), || async {
            let d = store.decisions(Some(c), Some(a)).await.ok()?;
            let r: Vec<_> = d.into_iter().map(|d| d.record).filter(|r| r.kind == "review_decided").collect();
            (!r.is_empty()).then_some(r)
        })
        .await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].override_actor, "it-reviewer");
    // The note is sealed under the candidate's key (docs/privacy.md).
    assert!(!decided[0].detail.contains("matched the live video"));
    assert!(app.opened(c, &decided[0].detail).await.contains("matched the live video"));
    for shot in ["console-queue.png", "console-item.png"] {
        let png = std::fs::read(app.dir.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}: a real rendering");
    }
    if let Ok(dir) = std::env::var("VBRIDGE_WRITE_SCREENSHOTS") {
        for shot in ["console-queue.png", "console-item.png"] {
            std::fs::copy(app.dir.join(shot), format!("{dir}/{shot}")).unwrap();
        }
    }
}
