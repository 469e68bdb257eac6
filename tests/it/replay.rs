//! Replay: a saved `CandidateVerification` history (SDK JSON) must replay
//! against today's workflow code, so a non-deterministic change fails CI.
//! Every file in `tests/histories/` is replayed: keep the old ones when a
//! change is patched (`ctx.patched`), and add the new shape with
//! `VBRIDGE_WRITE_HISTORY=1`, which writes `LATEST`.
//! - `candidate_verification.json`: before the audit-log patch;
//! - `candidate_verification_audit.json`: with the `audit-log-v1` patch.

use crate::harness::{TestApp, at};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use vbridge::devtools::client::{decision, started};
use vbridge_workflows::CandidateVerification;

const HISTORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/histories");
const LATEST: &str = "candidate_verification_audit.json";

fn replayer() -> WorkflowReplayer {
    let opts =
        WorkflowReplayerOptions::new().register_workflow::<CandidateVerification>().expect("registering").build();
    WorkflowReplayer::new(opts).expect("a replayer")
}

#[tokio::test]
async fn saved_histories_replay_deterministically() {
    let mut files: Vec<_> = std::fs::read_dir(HISTORIES)
        .expect("tests/histories")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected the pre-audit and the audit histories, found {files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let history = WorkflowHistory::from_json(&bytes).expect("SDK JSON history");
        replayer()
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} no longer replays against the workflow code: {e}", f.display()));
    }
}

#[tokio::test]
async fn a_fresh_history_replays_and_can_be_saved() {
    let app = TestApp::spawn("replay").await;
    app.send(&decision("cand-p", "app-p", "evt-p-2", &at(-5), "needs_review")).await;
    app.send(&started("cand-p", "app-p", "evt-p-1", &at(-10))).await;
    app.send(&decision("cand-p", "app-p", "evt-p-3", &at(-1), "verified")).await;
    app.wait_synced("cand-p", "app-p", "verified").await;
    let handle = app.temporal_client.get_workflow_handle::<CandidateVerification>("verification:cand-p:app-p");
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.expect("fetching history");
    assert!(json.len() > 1000);
    replayer().replay_workflow(WorkflowHistory::from_json(&json).unwrap()).await.expect("replay");
    if std::env::var("VBRIDGE_WRITE_HISTORY").as_deref() == Ok("1") {
        let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&json).unwrap()).unwrap();
        std::fs::write(format!("{HISTORIES}/{LATEST}"), pretty).unwrap();
    }
}
