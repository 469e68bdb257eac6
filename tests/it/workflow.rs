//! The workflow's shape under load and faults: bounded state across many
//! continue-as-new, and an audit log that does not wait for the ATS.

use crate::harness::{Options, TestApp, at};
use futures::StreamExt;
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle};
use vbridge::devtools::client::{decision, started};
use vbridge_workflows::CandidateVerification;
use vbridge_workflows::workflow::TIMELINE_KEEP;

/// The first event of one run's history, as JSON.
async fn run_start(app: &TestApp, id: &str, run_id: Option<String>) -> serde_json::Value {
    let mut info = WorkflowExecutionInfo::builder().namespace("default").workflow_id(id).build();
    info.run_id = run_id;
    let handle: WorkflowHandle<_, CandidateVerification> = WorkflowHandle::new(app.temporal_client.clone(), info);
    let json = handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"].clone()
}

#[tokio::test]
async fn ten_thousand_events_to_one_verification_keep_state_and_input_bounded() {
    let app = TestApp::spawn("tenk").await;
    let (c, a) = ("cand-10k", "app-10k");
    assert_eq!(app.send(&started(c, a, "evt-10k-first", &at(-60))).await.status, 202);
    // 9,998 more events that each grow the history (each is skipped: the
    // verification is pending already), then the decision.
    let client = app.client.clone();
    let replies: Vec<u16> = futures::stream::iter(0..9_998)
        .map(|i| {
            let client = client.clone();
            async move { client.send(&started(c, a, &format!("evt-10k-{i}"), &at(-30))).await.unwrap().status }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(replies.iter().all(|s| *s == 202), "every event accepted");
    assert_eq!(app.send(&decision(c, a, "evt-10k-last", &at(-1), "verified")).await.status, 202);

    // Every event is in the audit log: one decision record each.
    let store = vbridge::store::open(&app.database_url()).await.unwrap();
    app.wait_for("10,000 decision records", Duration::from_secs(170), || async {
        let d = store.decisions(Some(c), Some(a)).await.ok()?;
        (d.iter().filter(|r| r.record.kind == "applied" || r.record.kind == "skipped").count() >= 10_000).then_some(())
    })
    .await;
    let view = app.wait_synced(c, a, "verified").await;
    assert!(view.continued_as_new >= 2, "several continue-as-new, got {}", view.continued_as_new);
    let timeline = app.timeline(c, a).await.unwrap();
    assert!(timeline.len() <= TIMELINE_KEEP + 5, "the timeline query is bounded: {} entries", timeline.len());

    // Walk the runs back from the latest: every run's input stays small.
    let id = vbridge_workflows::domain::workflow_id(c, a);
    let mut run_id = None;
    let mut runs = 0;
    loop {
        let start = run_start(&app, &id, run_id.clone()).await;
        let data = start["input"]["payloads"][0]["data"].as_str().unwrap_or_default();
        let bytes = data.len() * 3 / 4; // base64
        assert!(bytes < 256 * 1024, "run {runs} started with {bytes} bytes of input");
        runs += 1;
        match start["continued_execution_run_id"].as_str() {
            Some(prev) if !prev.is_empty() => run_id = Some(prev.to_owned()),
            _ => break,
        }
    }
    assert_eq!(runs as u32, view.continued_as_new + 1);
    let writes = app.writes().await;
    let states: Vec<&str> = writes.iter().map(|w| w.fields["verification_state"].as_str()).collect();
    assert_eq!(states, vec!["pending", "verified"], "one write per applied event");
}

#[tokio::test]
async fn with_the_ats_down_decisions_reach_the_audit_log_within_seconds() {
    // A retry round of 12 attempts 2 s apart: about 24 s in which the first
    // write is stuck in its activity.
    let app = TestApp::spawn_with(
        "atsdown",
        Options {
            extra_env: vec![
                ("VBRIDGE_ATS_RETRY_INITIAL_MS".into(), "2000".into()),
                ("VBRIDGE_ATS_RETRY_MAX_MS".into(), "2000".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    app.ats_fault(serde_json::json!({"mode": "status", "status": 503})).await;
    let (c, a) = ("cand-ad", "app-ad");
    app.send(&started(c, a, "evt-ad-1", &at(-10))).await;
    app.wait_for("the first write failing", Duration::from_secs(30), || async {
        (app.ats_requests().await.iter().any(|r| r.status == 503)).then_some(())
    })
    .await;
    let store = vbridge::store::open(&app.database_url()).await.unwrap();
    for (i, (id, state)) in [("evt-ad-2", "needs_review"), ("evt-ad-3", "verified")].into_iter().enumerate() {
        let sent = Instant::now();
        app.send(&decision(c, a, id, &at(-5 + i as i64), state)).await;
        app.wait_for(&format!("{id} applied in the audit log"), Duration::from_secs(60), || async {
            let d = store.decisions(Some(c), Some(a)).await.ok()?;
            d.iter().any(|r| r.record.event_id == id && r.record.kind == "applied").then_some(())
        })
        .await;
        let took = sent.elapsed();
        assert!(took < Duration::from_secs(10), "{id} took {took:?} to reach the log while the ATS was down");
        assert!(app.writes().await.is_empty(), "the ATS is still down");
    }
    // The timeline export shows them too.
    let t = vbridge::audit::timeline::build(store.as_ref(), c, Some(a)).await.unwrap();
    assert_eq!(t.current_state, "verified");
    app.ats_clear_fault().await;
    app.wait_synced(c, a, "verified").await;
    let states: Vec<String> = app.writes().await.iter().map(|w| w.fields["verification_state"].clone()).collect();
    assert_eq!(states, vec!["pending", "needs_review", "verified"], "the ATS never moves backwards");
}
