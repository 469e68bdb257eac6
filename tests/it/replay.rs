//! Replay: saved `CandidateVerification` histories (SDK JSON) must replay
//! against today's workflow code, so a non-deterministic change fails CI.
//! Every file in `tests/histories/` is replayed: keep the old ones when a
//! change is patched (`ctx.patched`), and add the new shapes with
//! `VBRIDGE_WRITE_HISTORY=1`, which rewrites the files of the newest patch
//! ([`CURRENT`]).
//! - `candidate_verification.json`: before the audit-log patch;
//! - `candidate_verification_audit.json`: with `audit-log-v1`;
//! - `candidate_verification_lanes_*.json`: with `lanes-bounded-v1`: a
//!   reordered happy path, a write deferred then one refused for good, and a
//!   run that continued as new.
//! - `candidate_verification_logs_*.json`: with `write-logs-v1`: the same
//!   three shapes (the deferred one also holds an audit append made while a
//!   write was owed), and queued writes replaced by a later one.
//! - `candidate_verification_rest_*.json`: with `rest-close-v1`: the same four,
//!   a run that closed at rest, and the run a late event reopened.
//! - `candidate_verification_review_*.json`: with `review-v1`: the same six,
//!   a review escalated twice then decided (`escalated`), and overrides with a
//!   refused downgrade (`overridden`; from `reversal`, the downgrade is a
//!   later start: a later contradicting decision is a reversal).
//! - `candidate_verification_controls_*.json`: with `controls-v1`: the same
//!   eight, a kill switch off and on (`banner`), and a pause, writes held and
//!   coalesced, then resumed (`paused`), and a dead letter re-driven (`redriven`).
//! - `candidate_verification_reversal_*.json`: with `provider-reversal-v1`:
//!   the same eleven, and a provider's reversal held then overridden to
//!   failed by an admin (`reversal`, saved by `reversal::il_route_...`).
//! - `candidate_verification_notices_*.json`: with `provider-notices-v1`:
//!   the same twelve, and a provider's retake of a pending verification,
//!   its ATS write, then the decision that clears it (`notice`, saved by
//!   `providers::notices::...`).
//! - `candidate_verification_hiring_*.json`: with `hiring-loop-v1`: the same
//!   thirteen, and the hiring loop (saved by `hiring::...`): an ATS trigger
//!   started at the provider and invited, across a worker killed mid-start
//!   (`trigger`), an expired session replaced and re-invited (`reinvite`),
//!   and a needs_review stepped up, then the step-up's own queued (`step_up`),
//!   and an interview booked while the gate was closed, its reminder sent
//!   on a timer, then cancelled (`bypass`).
//! - `candidate_verification_retake_*.json`: with `hiring-retake-v1`: the
//!   same seventeen, and a retake of a Persona inquiry the bridge started,
//!   mailed with a fresh one-time link once (`retake`, saved by
//!   `hiring::a_retake_...`).
//! - `candidate_verification_batch_*.json`: with `event-batch-v1`: the same
//!   nineteen and the erased run, and the relay's batches (saved by
//!   `batch::...`): a backlog of one verification as one signal and one
//!   write (`batch`), batches before and after a continue-as-new
//!   (`batch_continued`), and a batch with a re-delivery inside, sent again
//!   after the relay was killed before marking it (`batch_duplicate`).
//! - `candidate_verification_local_*.json`: with `backlog-local-write-v1`:
//!   the same twenty-three; in `local_batch` the backlog's one write is a
//!   local activity (its marker), the others' writes are activities.
//! - `reconciliation_healed.json`: a `Reconciliation` run that found a drift
//!   and healed it.
//! - `audit_retention_ran.json`: an `AuditRetention` run the schedule started
//!   (saved by `retention::the_nightly_schedule_cuts_...`).
//! - `interview_poll_ran.json`: an `InterviewPoll` run the schedule started
//!   (saved by `hiring::greenhouses_polled_interviews_...`).

use crate::harness::{Options, TestApp, at};
use std::time::Duration;
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use vbridge::devtools::client::{decision, started};
use vbridge_workflows::CandidateVerification;
use vbridge_workflows::verification::{
    BATCH_PATCH, HIRING_PATCH, LOCAL_WRITE_PATCH, NOTICES_PATCH, RETAKE_PATCH, REVERSAL_PATCH,
};

const HISTORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/histories");
/// The shapes the saved histories must cover.
const REQUIRED: &[&str] = &[
    "candidate_verification.json",
    "candidate_verification_audit.json",
    "candidate_verification_lanes_happy.json",
    "candidate_verification_lanes_deferred_failed.json",
    "candidate_verification_lanes_continued.json",
    "candidate_verification_logs_happy.json",
    "candidate_verification_logs_deferred_failed.json",
    "candidate_verification_logs_continued.json",
    "candidate_verification_logs_coalesced.json",
    "candidate_verification_rest_happy.json",
    "candidate_verification_rest_deferred_failed.json",
    "candidate_verification_rest_continued.json",
    "candidate_verification_rest_coalesced.json",
    "candidate_verification_rest_closed.json",
    "candidate_verification_rest_reopened.json",
    "candidate_verification_review_happy.json",
    "candidate_verification_review_deferred_failed.json",
    "candidate_verification_review_continued.json",
    "candidate_verification_review_coalesced.json",
    "candidate_verification_review_closed.json",
    "candidate_verification_review_reopened.json",
    "candidate_verification_review_escalated.json",
    "candidate_verification_review_overridden.json",
    "candidate_verification_controls_happy.json",
    "candidate_verification_controls_deferred_failed.json",
    "candidate_verification_controls_continued.json",
    "candidate_verification_controls_coalesced.json",
    "candidate_verification_controls_closed.json",
    "candidate_verification_controls_reopened.json",
    "candidate_verification_controls_escalated.json",
    "candidate_verification_controls_overridden.json",
    "candidate_verification_controls_banner.json",
    "candidate_verification_controls_paused.json",
    "candidate_verification_controls_redriven.json",
    "candidate_verification_reversal_happy.json",
    "candidate_verification_reversal_deferred_failed.json",
    "candidate_verification_reversal_continued.json",
    "candidate_verification_reversal_coalesced.json",
    "candidate_verification_reversal_closed.json",
    "candidate_verification_reversal_reopened.json",
    "candidate_verification_reversal_escalated.json",
    "candidate_verification_reversal_overridden.json",
    "candidate_verification_reversal_banner.json",
    "candidate_verification_reversal_paused.json",
    "candidate_verification_reversal_redriven.json",
    "candidate_verification_reversal_reversal.json",
    "candidate_verification_notices_happy.json",
    "candidate_verification_notices_deferred_failed.json",
    "candidate_verification_notices_continued.json",
    "candidate_verification_notices_coalesced.json",
    "candidate_verification_notices_closed.json",
    "candidate_verification_notices_reopened.json",
    "candidate_verification_notices_escalated.json",
    "candidate_verification_notices_overridden.json",
    "candidate_verification_notices_banner.json",
    "candidate_verification_notices_paused.json",
    "candidate_verification_notices_redriven.json",
    "candidate_verification_notices_reversal.json",
    "candidate_verification_notices_notice.json",
    "candidate_verification_hiring_happy.json",
    "candidate_verification_hiring_deferred_failed.json",
    "candidate_verification_hiring_continued.json",
    "candidate_verification_hiring_coalesced.json",
    "candidate_verification_hiring_closed.json",
    "candidate_verification_hiring_reopened.json",
    "candidate_verification_hiring_escalated.json",
    "candidate_verification_hiring_overridden.json",
    "candidate_verification_hiring_banner.json",
    "candidate_verification_hiring_paused.json",
    "candidate_verification_hiring_redriven.json",
    "candidate_verification_hiring_reversal.json",
    "candidate_verification_hiring_notice.json",
    "candidate_verification_hiring_trigger.json",
    "candidate_verification_hiring_reinvite.json",
    "candidate_verification_hiring_step_up.json",
    "candidate_verification_hiring_bypass.json",
    "candidate_verification_retake_happy.json",
    "candidate_verification_retake_deferred_failed.json",
    "candidate_verification_retake_continued.json",
    "candidate_verification_retake_coalesced.json",
    "candidate_verification_retake_closed.json",
    "candidate_verification_retake_reopened.json",
    "candidate_verification_retake_escalated.json",
    "candidate_verification_retake_overridden.json",
    "candidate_verification_retake_banner.json",
    "candidate_verification_retake_paused.json",
    "candidate_verification_retake_redriven.json",
    "candidate_verification_retake_reversal.json",
    "candidate_verification_retake_notice.json",
    "candidate_verification_retake_trigger.json",
    "candidate_verification_retake_reinvite.json",
    "candidate_verification_retake_step_up.json",
    "candidate_verification_retake_bypass.json",
    "candidate_verification_retake_retake.json",
    "candidate_verification_retake_erased.json",
    "candidate_verification_batch_happy.json",
    "candidate_verification_batch_deferred_failed.json",
    "candidate_verification_batch_continued.json",
    "candidate_verification_batch_coalesced.json",
    "candidate_verification_batch_closed.json",
    "candidate_verification_batch_reopened.json",
    "candidate_verification_batch_escalated.json",
    "candidate_verification_batch_overridden.json",
    "candidate_verification_batch_banner.json",
    "candidate_verification_batch_paused.json",
    "candidate_verification_batch_redriven.json",
    "candidate_verification_batch_reversal.json",
    "candidate_verification_batch_notice.json",
    "candidate_verification_batch_trigger.json",
    "candidate_verification_batch_reinvite.json",
    "candidate_verification_batch_step_up.json",
    "candidate_verification_batch_bypass.json",
    "candidate_verification_batch_retake.json",
    "candidate_verification_batch_erased.json",
    "candidate_verification_batch_batch.json",
    "candidate_verification_batch_batch_continued.json",
    "candidate_verification_batch_batch_duplicate.json",
    "candidate_verification_local_happy.json",
    "candidate_verification_local_deferred_failed.json",
    "candidate_verification_local_continued.json",
    "candidate_verification_local_coalesced.json",
    "candidate_verification_local_closed.json",
    "candidate_verification_local_reopened.json",
    "candidate_verification_local_escalated.json",
    "candidate_verification_local_overridden.json",
    "candidate_verification_local_banner.json",
    "candidate_verification_local_paused.json",
    "candidate_verification_local_redriven.json",
    "candidate_verification_local_reversal.json",
    "candidate_verification_local_notice.json",
    "candidate_verification_local_trigger.json",
    "candidate_verification_local_reinvite.json",
    "candidate_verification_local_step_up.json",
    "candidate_verification_local_bypass.json",
    "candidate_verification_local_retake.json",
    "candidate_verification_local_erased.json",
    "candidate_verification_local_batch.json",
    "candidate_verification_local_batch_continued.json",
    "candidate_verification_local_batch_duplicate.json",
    "reconciliation_healed.json",
    "audit_retention_ran.json",
    "interview_poll_ran.json",
];

/// The newest patch's prefix: fresh histories are saved under it.
pub(crate) const CURRENT: &str = "local";

fn replayer() -> WorkflowReplayer {
    let opts = WorkflowReplayerOptions::new()
        .register_workflow::<CandidateVerification>()
        .expect("registering")
        .register_workflow::<vbridge_workflows::reconcile::Reconciliation>()
        .expect("registering")
        .register_workflow::<vbridge_workflows::retention::AuditRetention>()
        .expect("registering")
        .register_workflow::<vbridge_workflows::interview_poll::InterviewPoll>()
        .expect("registering")
        .build();
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
    for name in REQUIRED {
        assert!(files.iter().any(|f| f.ends_with(name)), "tests/histories/{name} is missing");
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let history = WorkflowHistory::from_json(text.as_bytes()).expect("SDK JSON history");
        replayer()
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} no longer replays against the workflow code: {e}", f.display()));
        // The branches each file is kept for are really in it.
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // `candidate_verification_{patch}_{shape}.json`: what each shape must hold.
        let shape = name
            .trim_start_matches("candidate_verification_")
            .split_once('_')
            .map(|(_, shape)| shape.trim_end_matches(".json"))
            .unwrap_or("");
        let expect: &[&str] = match shape {
            "deferred_failed" if name.contains("_lanes_") => {
                &["AtsTransientFailure", "TimerStartedEventAttributes", "AtsPermanentRejection"]
            }
            "deferred_failed" => &[
                "AtsTransientFailure",
                "TimerStartedEventAttributes",
                "AtsPermanentRejection",
                "AuditActivities::append_decisions",
            ],
            "continued" => &["WorkflowExecutionContinuedAsNewEventAttributes"],
            "closed" => &["WorkflowExecutionCompletedEventAttributes"],
            "reopened" => &["AuditActivities::seed"],
            "escalated" => &[
                "ReviewActivities::escalate",
                "review_decide",
                "WorkflowExecutionUpdateCompletedEventAttributes",
                "TimerCanceledEventAttributes",
            ],
            "overridden" => &["\"override\"", "WorkflowExecutionUpdateAcceptedEventAttributes"],
            "banner" => &["\"gating\"", "AtsActivities::write_verification"],
            "paused" => &["\"pause\"", "VerificationPaused"],
            "redriven" => &["\"retry_writes\"", "AtsPermanentRejection"],
            "reversal" => &["\"override\"", "ReviewDueAt", "WorkflowExecutionUpdateCompletedEventAttributes"],
            "notice" => &["AtsActivities::write_verification", "WorkflowExecutionSignaledEventAttributes"],
            "bypass" => {
                &["HiringActivities::send_mail", "TimerCanceledEventAttributes", "AtsActivities::write_verification"]
            }
            "trigger" | "reinvite" | "step_up" | "retake" => {
                &["HiringActivities::start_verification", "HiringActivities::send_mail"]
            }
            "healed" => &["ReconcileActivities::diff_page", "AtsActivities::write_verification", "record_report"],
            "retention_ran" => &["RetentionActivities::retain", "WorkflowExecutionCompletedEventAttributes"],
            "poll_ran" => &["InterviewActivities::poll", "WorkflowExecutionCompletedEventAttributes"],
            "erased" => &["\"erase\"", "WorkflowExecutionContinuedAsNewEventAttributes"],
            // (The backlog's one write is counted below: with the local-write
            // patch it is a local activity, named in a payload.)
            "batch" => &["\"event_batch\""],
            "batch_duplicate" => &["\"event_batch\"", "AtsActivities::write_verification"],
            "batch_continued" => &["\"event_batch\"", "WorkflowExecutionContinuedAsNewEventAttributes"],
            _ => &[],
        };
        for needle in expect {
            assert!(text.contains(needle), "{name} does not cover {needle}");
        }
        if shape == "reversal" {
            // The branch is in the payloads (base64): the patch's marker, the
            // provider_reversal record and its review item.
            let payloads = decoded_payloads(&text);
            // The run's newest patch marker (each implies the reversal patch).
            let marker = newest_marker(&name).unwrap_or(REVERSAL_PATCH);
            for needle in [marker, "\"kind\":\"provider_reversal\"", r#"\"flags\":[\"provider_reversal\"]"#] {
                assert!(payloads.contains(needle), "{name} does not cover {needle}");
            }
        }
        if shape == "notice" {
            let payloads = decoded_payloads(&text);
            let marker = newest_marker(&name).unwrap_or(NOTICES_PATCH);
            for needle in [marker, "\"kind\":\"retake_requested\"", "\"verification_action_required\":\"retake\""] {
                assert!(payloads.contains(needle), "{name} does not cover {needle}");
            }
        }
        let hiring: &[&str] = match shape {
            "trigger" => {
                &["\"kind\":\"verification_requested\"", "\"kind\":\"verification_started\"", "\"kind\":\"mail_sent\""]
            }
            "reinvite" => &["\"kind\":\"verification_expired\"", "\"kind\":\"reinvite\"", "replaces"],
            "step_up" => &["step_up_of", "\"kind\":\"review_routed\"", "step-up:"],
            "retake" => &["\"kind\":\"retake_requested\"", "\"kind\":\"retake\""],
            "bypass" => &[
                "\"kind\":\"gate_bypass\"",
                "\"kind\":\"bypass_notice\"",
                "\"kind\":\"reminder\"",
                "\"kind\":\"interview_cancelled\"",
                "\"kind\":\"interview_reached\"",
                "\"verification_gate_bypass\":\"true\"",
            ],
            _ => &[],
        };
        if !hiring.is_empty() {
            let payloads = decoded_payloads(&text);
            let marker = newest_marker(&name).unwrap_or(HIRING_PATCH);
            for needle in [marker].iter().chain(hiring) {
                assert!(payloads.contains(needle), "{name} does not cover {needle}");
            }
        }
        if shape == "banner" {
            let signal = text.find("\"gating\"").unwrap_or(usize::MAX);
            let last_write = text.rfind("AtsActivities::write_verification").unwrap_or(0);
            assert!(last_write > signal, "{name} does not cover a banner write after the gating signal");
        }
        if shape.starts_with("batch") {
            let payloads = decoded_payloads(&text);
            let marker = newest_marker(&name).unwrap_or(BATCH_PATCH);
            assert!(payloads.contains(marker), "{name} does not cover {marker}");
            let batches = text.matches("\"event_batch\"").count();
            match shape {
                // One signal of three events, one write of the state it ends
                // in: an activity, or with the local-write patch a local
                // activity (its marker's data names it, base64 in the file).
                "batch" => {
                    let write = "AtsActivities::write_verification";
                    let (scheduled, local) = (text.matches(write).count(), payloads.matches(write).count());
                    assert_eq!(
                        (batches, scheduled + local),
                        (1, 1),
                        "{name} does not cover a batch coalesced into one write"
                    );
                    if marker == LOCAL_WRITE_PATCH {
                        assert!(
                            local == 1 && text.contains("core_local_activity"),
                            "{name} does not cover a backlog's write as a local activity"
                        );
                    }
                }
                "batch_duplicate" => {
                    assert_eq!(batches, 2, "{name} does not cover a batch sent again");
                    assert!(payloads.contains("duplicate event id"), "{name} does not cover a duplicate");
                }
                _ => {}
            }
        }
        if name.ends_with("_coalesced.json") {
            let writes = text.matches("AtsActivities::write_verification").count();
            let signals = text.matches("WorkflowExecutionSignaledEventAttributes").count();
            assert!(writes < signals, "{name} does not cover a replaced write ({writes} writes, {signals} events)");
        }
    }
}

/// The marker of the newest patch a saved history's file name says it has,
/// for the patches from the notices on (each implies the older ones).
fn newest_marker(name: &str) -> Option<&'static str> {
    [
        ("_local_", LOCAL_WRITE_PATCH),
        ("_batch_", BATCH_PATCH),
        ("_retake_", RETAKE_PATCH),
        ("_hiring_", HIRING_PATCH),
        ("_notices_", NOTICES_PATCH),
    ]
    .into_iter()
    .find(|(part, _)| name.contains(part))
    .map(|(_, patch)| patch)
}

/// Every payload's data in a history, decoded, one per line.
pub(crate) fn decoded_payloads(text: &str) -> String {
    use base64::Engine;
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "data"
                        && let Some(d) = v.as_str()
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(d)
                    {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                        out.push('\n');
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(&serde_json::from_str(text).unwrap_or_default(), &mut out);
    out
}

pub(crate) async fn history_json(app: &TestApp, id: &str, run_id: Option<String>) -> Vec<u8> {
    let info = match run_id {
        Some(r) => WorkflowExecutionInfo::builder().namespace("default").workflow_id(id).run_id(r).build(),
        None => WorkflowExecutionInfo::builder().namespace("default").workflow_id(id).build(),
    };
    let handle: WorkflowHandle<_, CandidateVerification> = WorkflowHandle::new(app.temporal_client.clone(), info);
    handle.fetch_history(WorkflowFetchHistoryOptions::default()).to_json().await.expect("fetching history")
}

pub(crate) async fn check_and_save(json: &[u8], name: &str) {
    replayer().replay_workflow(WorkflowHistory::from_json(json).unwrap()).await.expect("replay");
    if std::env::var("VBRIDGE_WRITE_HISTORY").as_deref() == Ok("1") {
        let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(json).unwrap()).unwrap();
        std::fs::write(format!("{HISTORIES}/{name}"), pretty).unwrap();
    }
}

#[tokio::test]
async fn fresh_histories_of_every_branch_replay_and_can_be_saved() {
    let app = TestApp::spawn_with(
        "replay",
        Options {
            extra_env: vec![
                ("VBRIDGE_CONTINUE_AS_NEW_AFTER".into(), "150".into()),
                // A short hold, so that the deferred write's entry is logged
                // by the audit lane while the write is still owed.
                ("VBRIDGE_AUDIT_HOLD_MS".into(), "300".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let wait = Duration::from_secs(60);

    // A reordered happy path.
    app.send(&decision("cand-p", "app-p", "evt-p-2", &at(-5), "needs_review")).await;
    app.send(&started("cand-p", "app-p", "evt-p-1", &at(-10))).await;
    app.send(&decision("cand-p", "app-p", "evt-p-3", &at(-1), "verified")).await;
    app.wait_synced("cand-p", "app-p", "verified").await;
    let json = history_json(&app, "verification:cand-p:app-p", None).await;
    check_and_save(&json, &format!("candidate_verification_{CURRENT}_happy.json")).await;

    // A write deferred after a spent round, then one refused for good.
    app.ats_fault(serde_json::json!({"mode": "status", "status": 503, "count": 14})).await;
    app.send(&started("cand-f", "app-f", "evt-f-1", &at(-10))).await;
    app.wait_synced("cand-f", "app-f", "pending").await;
    app.ats_fault(serde_json::json!({"mode": "status", "status": 422})).await;
    app.send(&decision("cand-f", "app-f", "evt-f-2", &at(-5), "verified")).await;
    app.wait_for("the refused write", wait, || async {
        (app.state("cand-f", "app-f").await.ok()?.ats_sync == "failed").then_some(())
    })
    .await;
    app.ats_clear_fault().await;
    let json = history_json(&app, "verification:cand-f:app-f", None).await;
    check_and_save(&json, &format!("candidate_verification_{CURRENT}_deferred_failed.json")).await;

    // A run that continued as new: its history ends in the continue-as-new.
    app.send(&started("cand-c", "app-c", "evt-c-0", &at(-50))).await;
    for i in 0..200 {
        app.send(&started("cand-c", "app-c", &format!("evt-c-late-{i}"), &at(-30))).await;
    }
    app.wait_for("a continue-as-new", wait, || async {
        (app.state("cand-c", "app-c").await.ok()?.continued_as_new >= 1).then_some(())
    })
    .await;
    let latest: serde_json::Value =
        serde_json::from_slice(&history_json(&app, "verification:cand-c:app-c", None).await).unwrap();
    let first_run =
        latest["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"]["continued_execution_run_id"]
            .as_str()
            .expect("the latest run continued another")
            .to_owned();
    let json = history_json(&app, "verification:cand-c:app-c", Some(first_run)).await;
    check_and_save(&json, &format!("candidate_verification_{CURRENT}_continued.json")).await;
}
