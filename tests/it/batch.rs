//! Batched signals (docs/architecture.md, "Batched signals"): the events of
//! one verification owed together go to Temporal as one `event_batch` signal,
//! applied in commit order, each once, whatever crashes in between.

use crate::harness::{Options, TestApp, at};
use crate::replay::{CURRENT, check_and_save, decoded_payloads, history_json};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use vbridge::devtools::client::{decision, started};

const WAIT: Duration = Duration::from_secs(90);

/// Send webhooks while only the receiver runs: committed, acked, owed.
async fn backlog(app: &TestApp, bodies: &[Value]) {
    for b in bodies {
        assert_eq!(app.send(b).await.status, 202, "{b}");
    }
}

/// The names of the signals in a history, in order.
fn signal_names(history: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(history).expect("a JSON history");
    v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["attributes"]["WorkflowExecutionSignaledEventAttributes"]["signal_name"].as_str())
        .map(str::to_owned)
        .collect()
}

/// How a history's ATS writes ran: (as activities, as local activities).
fn write_kinds(history: &[u8]) -> (usize, usize) {
    let v: Value = serde_json::from_slice(history).expect("a JSON history");
    let events = v["events"].as_array().cloned().unwrap_or_default();
    let activities = events
        .iter()
        .filter(|e| {
            e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"]
                == "AtsActivities::write_verification"
        })
        .count();
    // A local activity's marker: its data (base64 JSON) names the activity.
    let local = events
        .iter()
        .filter(|e| e["attributes"]["MarkerRecordedEventAttributes"]["marker_name"] == "core_local_activity")
        .filter(|e| decoded_payloads(&e.to_string()).contains("AtsActivities::write_verification"))
        .count();
    (activities, local)
}

/// Per event id, the kinds of the audit records the verification's workflow
/// logged about it.
async fn records_per_event(app: &TestApp, candidate: &str) -> BTreeMap<String, Vec<String>> {
    let store = vbridge::config::open_store(&app.database_url()).await.expect("the store");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in store.decisions(Some(candidate), None).await.expect("decisions") {
        let r = d.record;
        if ["applied", "skipped", "refused"].contains(&r.kind.as_str()) {
            out.entry(r.event_id).or_default().push(r.kind);
        }
    }
    out
}

#[tokio::test]
async fn a_backlog_goes_as_one_batch_and_a_relay_killed_before_marking_it_applies_each_event_once() {
    // Receiver only: four events of one verification committed and owed,
    // one of them a re-delivery of the first under a new idempotency key.
    // Never a backlog here (the age is ten minutes): its writes go as
    // separate signals' would.
    let mut app = TestApp::spawn_with(
        "batch-kill",
        Options {
            roles: Some("receiver"),
            extra_env: vec![("VBRIDGE_RELAY_BACKLOG_AFTER_MS".into(), "600000".into())],
            ..Default::default()
        },
    )
    .await;
    let mut again = started("cand-b", "app-b", "evt-b-1", &at(-10));
    again["idempotency_key"] = "idem-evt-b-1-redelivered".into();
    backlog(
        &app,
        &[
            started("cand-b", "app-b", "evt-b-1", &at(-10)),
            decision("cand-b", "app-b", "evt-b-2", &at(-5), "needs_review"),
            again,
            decision("cand-b", "app-b", "evt-b-3", &at(-1), "verified"),
        ],
    )
    .await;
    app.kill_bridge();
    let rows = app.deliveries(Some("cand-b")).await;
    let owed = rows.iter().filter(|r| r.processing_result == "accepted" && !r.forwarded).count();
    assert_eq!(owed, 4, "{rows:?}");

    // Crash window: the batch reached Temporal, the relay died before marking it.
    app.start_bridge(&[("VBRIDGE_ROLES", "receiver,relay"), ("VBRIDGE_FAULT", "crash-after-forward")]).await;
    let status = app.wait_bridge_exit(WAIT).await;
    assert!(!status.success(), "the fault injection aborts the process");
    assert!(app.deliveries(Some("cand-b")).await.iter().all(|r| !r.forwarded), "the crash came before the mark");
    let sent = signal_names(&history_json(&app, "verification:cand-b:app-b", None).await);
    assert_eq!(sent, ["event_batch"], "the four owed events went as one signal");

    // A clean restart sends the batch again; the workflow applies nothing twice.
    app.start_bridge(&[("VBRIDGE_ROLES", "receiver,relay,worker")]).await;
    app.wait_synced("cand-b", "app-b", "verified").await;
    app.wait_for("the batch to be marked forwarded", WAIT, || async {
        app.deliveries(Some("cand-b")).await.iter().all(|r| r.forwarded).then_some(())
    })
    .await;
    let t = app.timeline("cand-b", "app-b").await.unwrap();
    let applied: Vec<&str> = t.iter().filter(|e| e.kind == "applied").map(|e| e.event_id.as_str()).collect();
    assert_eq!(applied, ["evt-b-1", "evt-b-2", "evt-b-3"], "{t:?}");
    let duplicates = t.iter().filter(|e| e.reason == "duplicate event id").count();
    assert_eq!(duplicates, 1 + 4, "the re-delivery inside the batch, then each event of the batch sent again: {t:?}");
    // Not a backlog: the first write went as it was, the later two coalesced
    // behind it (as three signals in one activation would); the batch sent
    // again wrote nothing.
    let writes = app.writes().await;
    let states: Vec<&str> = writes.iter().map(|w| w.fields["verification_state"].as_str()).collect();
    assert_eq!(states, ["pending", "verified"], "{writes:?}");
    let metrics = app.metrics().await;
    assert!(metrics.contains("vbridge_relay_signal_count 1\n"), "one signal after the restart:\n{metrics}");
    assert!(metrics.contains("vbridge_relay_forwarded_count 4\n"), "four events in it:\n{metrics}");

    let history = history_json(&app, "verification:cand-b:app-b", None).await;
    assert_eq!(signal_names(&history), ["event_batch", "event_batch"]);
    assert_eq!(write_kinds(&history), (2, 0), "no backlog: its writes are activities");
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_batch_duplicate.json")).await;

    // The audit log agrees: one application per event id.
    app.wait_for("every record in the audit log", WAIT, || async {
        let per = records_per_event(&app, "cand-b").await;
        (per.values().map(Vec::len).sum::<usize>() == 3 + 5).then_some(())
    })
    .await;
    let per = records_per_event(&app, "cand-b").await;
    for id in ["evt-b-1", "evt-b-2", "evt-b-3"] {
        assert_eq!(per[id].iter().filter(|k| *k == "applied").count(), 1, "{id}: {per:?}");
    }
}

#[tokio::test]
async fn batches_cross_continue_as_new_and_a_backlog_of_one_verification_costs_one_signal_and_one_local_write() {
    // Batches of at most three, every one a backlog (the age is zero), and
    // a short history: the long backlog's 60 batches span runs (each is a
    // history event, so the history is full before the 50th); the short one
    // is one batch.
    let env = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let mut app = TestApp::spawn_with(
        "batch-can",
        Options {
            roles: Some("receiver"),
            extra_env: vec![
                env("VBRIDGE_CONTINUE_AS_NEW_AFTER", "50"),
                env("VBRIDGE_RELAY_BATCH_MAX", "3"),
                env("VBRIDGE_RELAY_BACKLOG_AFTER_MS", "0"),
            ],
            ..Default::default()
        },
    )
    .await;
    backlog(
        &app,
        &[
            started("cand-h", "app-h", "evt-h-1", &at(-10)),
            decision("cand-h", "app-h", "evt-h-2", &at(-5), "needs_review"),
            decision("cand-h", "app-h", "evt-h-3", &at(-1), "verified"),
        ],
    )
    .await;
    // 180 events: started, 178 more `started` (each recorded as already
    // pending), then verified.
    let mut long = vec![started("cand-n", "app-n", "evt-n-0", &at(-200))];
    for i in 1..=178 {
        long.push(started("cand-n", "app-n", &format!("evt-n-{i}"), &at(-199 + i / 2)));
    }
    long.push(decision("cand-n", "app-n", "evt-n-179", &at(-1), "verified"));
    backlog(&app, &long).await;
    app.kill_bridge();

    app.start_bridge(&[("VBRIDGE_ROLES", "receiver,relay,worker")]).await;
    app.wait_synced("cand-h", "app-h", "verified").await;
    app.wait_synced("cand-n", "app-n", "verified").await;
    app.wait_for("the long backlog's history to continue as new", WAIT, || async {
        (app.state("cand-n", "app-n").await.ok()?.continued_as_new >= 1).then_some(())
    })
    .await;

    // The short backlog: one signal, one ATS write of the state it ends in
    // (a backlog's writes coalesce, the first too).
    let history = history_json(&app, "verification:cand-h:app-h", None).await;
    assert_eq!(signal_names(&history), ["event_batch"]);
    let writes: Vec<String> = app
        .writes()
        .await
        .into_iter()
        .filter(|w| w.application_id == "app-h")
        .map(|w| w.fields["verification_state"].clone())
        .collect();
    assert_eq!(writes, ["verified"]);
    assert_eq!(write_kinds(&history), (0, 1), "a backlog's one write runs as a local activity");
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_batch.json")).await;

    // The long one: batches of three, in a run that continued as new with
    // what they left owed; all 60 in the runs' histories, each once.
    let latest = history_json(&app, "verification:cand-n:app-n", None).await;
    let mut batches = signal_names(&latest).len();
    let started_from = |json: &[u8]| -> Option<String> {
        let v: Value = serde_json::from_slice(json).unwrap();
        v["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"]["continued_execution_run_id"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
    };
    let mut run = started_from(&latest).expect("the latest run continued another");
    let first = loop {
        let json = history_json(&app, "verification:cand-n:app-n", Some(run.clone())).await;
        let sent = signal_names(&json);
        assert!(sent.iter().all(|s| s == "event_batch"), "only batches: {sent:?}");
        assert!(
            String::from_utf8_lossy(&json).contains("WorkflowExecutionContinuedAsNewEventAttributes"),
            "an earlier run continued as new"
        );
        batches += sent.len();
        match started_from(&json) {
            Some(earlier) => run = earlier,
            None => break json,
        }
    };
    assert_eq!(batches, 60, "180 events in batches of three, each signal in one run");
    assert!(!signal_names(&first).is_empty(), "the first run took batches before it continued as new");
    check_and_save(&first, &format!("candidate_verification_{CURRENT}_batch_continued.json")).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("vbridge_relay_signal_count 61\n"), "61 batches of three:\n{metrics}");

    // Across the runs, every event has exactly one record: none lost, none twice.
    app.wait_for("every record in the audit log", WAIT, || async {
        (records_per_event(&app, "cand-n").await.len() == 180).then_some(())
    })
    .await;
    let per = records_per_event(&app, "cand-n").await;
    let twice: Vec<_> = per.iter().filter(|(_, kinds)| kinds.len() != 1).collect();
    assert!(twice.is_empty(), "events recorded more than once: {twice:?}");
    assert_eq!(per["evt-n-0"], ["applied"]);
    assert_eq!(per["evt-n-179"], ["applied"]);
    assert_eq!(per.values().filter(|k| k[0] == "skipped").count(), 178);
}
