//! Replay: a saved `CandidateVerification` history (SDK JSON) must replay
//! against today's workflow code, so a non-deterministic change fails CI.
//! Regenerate the file on purpose with `VBRIDGE_WRITE_HISTORY=1` (and keep the
//! old one too, under another name, when the change is patched).

use crate::harness::{TestApp, at};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use vbridge::client::{decision, started};
use vbridge_workflows::CandidateVerification;

const SAVED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/histories/candidate_verification.json");

fn replayer() -> WorkflowReplayer {
    let opts =
        WorkflowReplayerOptions::new().register_workflow::<CandidateVerification>().expect("registering").build();
    WorkflowReplayer::new(opts).expect("a replayer")
}

#[tokio::test]
async fn saved_history_replays_deterministically() {
    let bytes = std::fs::read(SAVED).unwrap_or_else(|e| panic!("{SAVED}: {e}; record it with VBRIDGE_WRITE_HISTORY=1"));
    let history = WorkflowHistory::from_json(&bytes).expect("SDK JSON history");
    replayer().replay_workflow(history).await.expect("the saved history replays against the current workflow code");
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
        std::fs::write(SAVED, pretty).unwrap();
    }
}
