//! The workflow's shape under load and faults: bounded state across many
//! continue-as-new, and an audit log that does not wait for the ATS.

use crate::harness::{Options, TestApp, at};
use futures::StreamExt;
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle};
use vbridge::devtools::client::{decision, started};
use vbridge_workflows::CandidateVerification;
use vbridge_workflows::verification::TIMELINE_KEEP;

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
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("10,000 decision records", Duration::from_secs(420), || async {
        let d = store.decisions(Some(c), Some(a)).await.ok()?;
        (d.iter().filter(|r| r.record.kind == "applied" || r.record.kind == "skipped").count() >= 10_000).then_some(())
    })
    .await;
    let view = app.wait_synced(c, a, "verified").await;
    assert!(view.continued_as_new >= 2, "several continue-as-new, got {}", view.continued_as_new);
    let timeline = app.timeline(c, a).await.unwrap();
    assert!(timeline.len() <= TIMELINE_KEEP + 5, "the timeline query is bounded: {} entries", timeline.len());

    // Walk the runs back from the latest: every run's input stays small.
    let id = vbridge_core::domain::workflow_id(c, a);
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
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
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
    // The needs_review write was still queued behind the stuck one when the
    // verified decision came: it was replaced by it (the state is in the log).
    let states: Vec<String> = app.writes().await.iter().map(|w| w.fields["verification_state"].clone()).collect();
    assert_eq!(states, vec!["pending", "verified"], "the ATS never moves backwards");
}

/// The history of one verification's current run, as JSON.
async fn history(app: &TestApp, c: &str, a: &str) -> (Vec<u8>, serde_json::Value) {
    let json = crate::replay::history_json(app, &vbridge_core::domain::workflow_id(c, a), None).await;
    let v = serde_json::from_slice(&json).unwrap();
    (json, v)
}

/// How many events of a history carry the attributes `kind`.
fn count_events(history: &serde_json::Value, kind: &str) -> usize {
    history["events"].as_array().unwrap().iter().filter(|e| e["attributes"].get(kind).is_some()).count()
}

fn scheduled_activities(history: &serde_json::Value) -> Vec<String> {
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"].as_str().map(String::from)
        })
        .collect()
}

#[tokio::test]
async fn an_applied_event_costs_one_activity_which_also_logs_its_decision_and_write() {
    let app = TestApp::spawn("cost").await;
    let (c, a) = ("cand-cost", "app-cost");
    app.send(&started(c, a, "evt-cost-1", &at(-10))).await;
    app.wait_synced(c, a, "pending").await;
    app.send(&decision(c, a, "evt-cost-2", &at(-5), "verified")).await;
    app.wait_synced(c, a, "verified").await;

    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let decisions = app
        .wait_for("two applied and two ats_write records", Duration::from_secs(30), || async {
            let d = store.decisions(Some(c), Some(a)).await.ok()?;
            let n = |k: &str| d.iter().filter(|r| r.record.kind == k).count();
            (n("applied") == 2 && n("ats_write") == 2).then_some(d)
        })
        .await;
    let (_, h) = history(&app, c, a).await;
    assert_eq!(
        scheduled_activities(&h),
        vec!["AtsActivities::write_verification", "AtsActivities::write_verification"],
        "one activity per applied event, and no audit activity of its own"
    );
    // One timer: the quiet period before a verification at rest closes
    // (24 h by default); no audit hold on the happy path.
    let timers: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"]["TimerStartedEventAttributes"]["start_to_fire_timeout"].as_str())
        .collect();
    assert_eq!(timers, vec!["86400.000000000s"], "no hold timer on the happy path");
    // State and sync change at each event and at each write: four upserts
    // of the bridge's own, the first with the candidate and application; and
    // the SDK's one `TemporalChangeVersion` upsert for the run's one patch.
    let upserts: Vec<bool> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"].get("UpsertWorkflowSearchAttributesEventAttributes"))
        .map(|u| u["search_attributes"]["indexedFields"].get("TemporalChangeVersion").is_some())
        .collect();
    assert_eq!(upserts.iter().filter(|v| !**v).count(), 4, "{upserts:?}");
    assert_eq!(upserts.iter().filter(|v| **v).count(), 1, "{upserts:?}");
    assert_eq!(count_events(&h, "MarkerRecordedEventAttributes"), 1, "one patch marker");
    let writes: Vec<_> = decisions.iter().filter(|r| r.record.kind == "ats_write").collect();
    assert!(writes.iter().all(|w| w.record.write_targets.starts_with("application/app-cost/verification-check/")));
    assert!(writes.iter().any(|w| w.record.state_after == "verified"));
    let visible = app
        .wait_for("the search attributes", Duration::from_secs(30), || async {
            let q = format!("VerificationState = 'verified' AND AtsSyncStatus = 'synced' AND CandidateId = '{c}'");
            let n = app.temporal_client.count_workflows(q, Default::default()).await.ok()?.count();
            (n == 1).then_some(n)
        })
        .await;
    assert_eq!(visible, 1);
}

#[tokio::test]
async fn queued_writes_of_a_check_coalesce_to_the_latest_state() {
    let app = TestApp::spawn("coalesce").await;
    let (c, a) = ("cand-co", "app-co");
    // The first write is stuck in retries until the other two are queued.
    app.ats_fault(serde_json::json!({"mode": "status", "status": 503})).await;
    app.send(&started(c, a, "evt-co-1", &at(-10))).await;
    app.wait_for("the first write failing", Duration::from_secs(30), || async {
        (app.ats_requests().await.iter().any(|r| r.status == 503)).then_some(())
    })
    .await;
    app.send(&decision(c, a, "evt-co-2", &at(-5), "needs_review")).await;
    app.send(&decision(c, a, "evt-co-3", &at(-1), "verified")).await;
    app.wait_for("three events applied, two writes owed", Duration::from_secs(30), || async {
        let v = app.state(c, a).await.ok()?;
        (v.applied_events == 3 && v.pending_writes == 2).then_some(())
    })
    .await;
    app.ats_clear_fault().await;
    app.wait_synced(c, a, "verified").await;

    let writes = app.writes().await;
    let states: Vec<&str> = writes.iter().map(|w| w.fields["verification_state"].as_str()).collect();
    assert_eq!(states, vec!["pending", "verified"], "needs_review was replaced while queued");
    let last = &writes[1];
    assert_eq!(last.fields["verification_last_event_id"], "evt-co-3");
    assert!(!last.fields["evidence_pack_url"].is_empty());
    let check = app.ats_check(a, &format!("chk-{c}-{a}")).await;
    assert_eq!(check.as_ref().map(|c| c["fields"]["verification_state"].clone()), Some("verified".into()));

    let timeline = app.timeline(c, a).await.unwrap();
    let applied: Vec<&str> = timeline.iter().filter(|t| t.kind == "applied").map(|t| t.state_after.as_str()).collect();
    assert_eq!(applied, vec!["pending", "needs_review", "verified"]);
    let written: Vec<_> = timeline.iter().filter(|t| t.kind == "ats_write").collect();
    assert_eq!(written.len(), 2);
    assert!(written[1].reason.contains("1 queued write(s) it replaced"), "{:?}", written[1]);
    // Every decision is in the audit log, the replaced one too.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("three applied records", Duration::from_secs(30), || async {
        let d = store.decisions(Some(c), Some(a)).await.ok()?;
        (d.iter().filter(|r| r.record.kind == "applied").count() == 3).then_some(())
    })
    .await;
    let (json, _) = history(&app, c, a).await;
    let name = format!("candidate_verification_{}_coalesced.json", crate::replay::CURRENT);
    crate::replay::check_and_save(&json, &name).await;
}

/// The latest run's history, once it has completed.
async fn completed_history(app: &TestApp, c: &str, a: &str, what: &str) -> Vec<u8> {
    app.wait_for(what, Duration::from_secs(60), || async {
        let (json, h) = history(app, c, a).await;
        (count_events(&h, "WorkflowExecutionCompletedEventAttributes") == 1).then_some(json)
    })
    .await
}

#[tokio::test]
async fn a_verification_at_rest_closes_and_a_late_event_reopens_it_from_the_audit_log() {
    let app = TestApp::spawn_with(
        "rest",
        Options { extra_env: vec![("VBRIDGE_QUIET_CLOSE_MS".into(), "1500".into())], ..Default::default() },
    )
    .await;
    let (c, a) = ("cand-rest", "app-rest");
    app.send(&started(c, a, "evt-rest-1", &at(-10))).await;
    app.send(&decision(c, a, "evt-rest-2", &at(-5), "verified")).await;
    app.wait_synced(c, a, "verified").await;
    let closed = completed_history(&app, c, a, "the verified run to close at rest").await;
    let running = format!("ExecutionStatus = 'Running' AND CandidateId = '{c}'");
    assert_eq!(app.temporal_client.count_workflows(running.clone(), Default::default()).await.unwrap().count(), 0);

    // Late events: a downgrade without an override (a later start: refused),
    // a stale start (skipped). (A later contradicting decision is a provider
    // reversal, held open for an admin: tests/it/reversal.rs.)
    app.send(&started(c, a, "evt-rest-3", &at(-1))).await;
    app.send(&started(c, a, "evt-rest-4", &at(-20))).await;
    let view = app
        .wait_for("the reopened run to see both late events", Duration::from_secs(60), || async {
            let t = app.timeline(c, a).await.ok()?;
            let late = t.iter().filter(|e| e.event_id == "evt-rest-3" || e.event_id == "evt-rest-4").count();
            if late < 2 {
                return None;
            }
            app.state(c, a).await.ok()
        })
        .await;
    assert_eq!(view.state, "verified", "the seed came from the log, and the downgrade was refused");
    assert_eq!(view.applied_events, 2, "the seed carries the applied count");
    assert_eq!(view.last_event_id, "evt-rest-2");
    let t = app.timeline(c, a).await.unwrap();
    let kind = |id: &str| t.iter().find(|e| e.event_id == id).map(|e| e.kind.clone());
    assert_eq!(kind("evt-rest-3").as_deref(), Some("refused"));
    assert_eq!(kind("evt-rest-4").as_deref(), Some("skipped"));
    let reopened = completed_history(&app, c, a, "the reopened run to close again").await;

    // The ATS saw nothing new; the audit log has every decision once.
    let states: Vec<String> = app.writes().await.iter().map(|w| w.fields["verification_state"].clone()).collect();
    assert_eq!(states, vec!["pending", "verified"]);
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let d = app
        .wait_for("the late decisions in the audit log", Duration::from_secs(30), || async {
            let d = store.decisions(Some(c), Some(a)).await.ok()?;
            let n = |k: &str| d.iter().filter(|r| r.record.kind == k).count();
            (n("applied") == 2 && n("refused") == 1 && n("skipped") == 1 && n("ats_write") == 2).then_some(d)
        })
        .await;
    let mut ids: Vec<_> = d.iter().map(|r| r.record.record_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), d.len(), "no record id reused by the reopened run");
    crate::replay::check_and_save(&closed, &format!("candidate_verification_{}_closed.json", crate::replay::CURRENT))
        .await;
    crate::replay::check_and_save(
        &reopened,
        &format!("candidate_verification_{}_reopened.json", crate::replay::CURRENT),
    )
    .await;
}
