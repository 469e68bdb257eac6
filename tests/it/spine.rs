//! The spine end to end: signed webhook → store → relay → workflow → ATS.

use crate::harness::{Options, SECRET, TestApp, at};
use serde_json::json;
use std::time::Duration;
use vbridge::devtools::client::{decision, started};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn started_then_decision_reach_the_ats_with_templated_fields() {
    let app = TestApp::spawn("happy").await;
    let s = started("cand-h", "app-h", "evt-h-1", &at(-10));
    let d = decision("cand-h", "app-h", "evt-h-2", &at(-5), "verified");
    let r1 = app.send(&s).await;
    assert_eq!(r1.status, 202, "{:?}", r1.body);
    assert_eq!(r1.body["status"], "accepted");
    assert_eq!(r1.body["trace_id"].as_str(), r1.trace_id.as_deref(), "trace id answered in body and header");
    let r2 = app.send(&d).await;
    assert_eq!(r2.status, 202);

    let view = app.wait_synced("cand-h", "app-h", "verified").await;
    assert_eq!(view.last_event_id, "evt-h-2");
    assert_eq!(view.policy_version, "1.3");

    let writes = app.writes().await;
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0].fields.get("verification_state").map(String::as_str), Some("pending"));
    assert_eq!(writes[0].fields.get("verification_last_event_id").map(String::as_str), Some("evt-h-1"));
    let f = &writes[1].fields;
    assert_eq!(f.get("verification_state").map(String::as_str), Some("verified"));
    assert_eq!(f.get("evidence_pack_url").map(String::as_str), Some("https://evidence.example/packs/evt-h-2"));
    assert!(f.contains_key("verification_decided_at"));
    assert_eq!(writes[1].candidate_id, "cand-h");
    assert_eq!(writes[1].verification_check_id, "chk-cand-h-app-h");
    // The trace id of the webhook follows the event to the ATS write.
    assert_eq!(Some(writes[1].trace_id.as_str()), r2.trace_id.as_deref());
    let held = app.ats_check("app-h", "chk-cand-h-app-h").await.expect("the ATS holds the check");
    assert_eq!(held["fields"]["verification_state"], "verified");

    let timeline = app.timeline("cand-h", "app-h").await.unwrap();
    assert_eq!(timeline.len(), 4, "{timeline:?}");
    assert_eq!(timeline.iter().filter(|t| t.kind == "applied").count(), 2);
    assert_eq!(timeline.iter().filter(|t| t.kind == "ats_write").count(), 2);
}

#[tokio::test]
async fn five_deliveries_give_one_accepted_four_duplicates_and_one_write_per_event() {
    let app = TestApp::spawn("dup").await;
    let s = started("cand-d", "app-d", "evt-d-1", &at(-10));
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(app.send(&s).await);
    }
    let accepted = statuses.iter().filter(|r| r.status == 202 && r.body["status"] == "accepted").count();
    let dups = statuses.iter().filter(|r| r.status == 200 && r.body["status"] == "duplicate").count();
    assert_eq!(
        (accepted, dups),
        (1, 4),
        "{:?}",
        statuses.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>()
    );
    let d = decision("cand-d", "app-d", "evt-d-2", &at(-5), "failed");
    for _ in 0..5 {
        app.send(&d).await;
    }
    app.wait_synced("cand-d", "app-d", "failed").await;
    let writes = app.writes().await;
    assert_eq!(writes.len(), 2, "one ATS write per distinct event: {writes:?}");
    let put_requests = app.ats_requests().await.iter().filter(|r| r.method == "PUT").count();
    assert_eq!(put_requests, 2, "duplicates never reach the ATS");

    // Every delivery is a row; the duplicate rows are written after their answer.
    let rows = app
        .wait_for("10 delivery rows", WAIT, || async {
            let rows = app.deliveries(Some("cand-d")).await;
            (rows.len() == 10).then_some(rows)
        })
        .await;
    let count = |r: &str| rows.iter().filter(|d| d.processing_result == r).count();
    assert_eq!((count("accepted"), count("duplicate")), (2, 8));
    assert!(rows.iter().all(|r| r.signature_valid && !r.body_sha256.is_empty() && !r.trace_id.is_empty()));
}

#[tokio::test]
async fn decision_before_started_ends_in_the_right_state() {
    let app = TestApp::spawn("reorder").await;
    let s = started("cand-r", "app-r", "evt-r-1", &at(-10));
    let d = decision("cand-r", "app-r", "evt-r-2", &at(-5), "needs_review");
    assert_eq!(app.send(&d).await.status, 202);
    app.wait_synced("cand-r", "app-r", "needs_review").await;
    assert_eq!(app.send(&s).await.status, 202);
    app.wait_for("the late started event to be handled", WAIT, || async {
        let t = app.timeline("cand-r", "app-r").await.ok()?;
        t.iter().any(|e| e.event_id == "evt-r-1").then_some(())
    })
    .await;
    let view = app.state("cand-r", "app-r").await.unwrap();
    assert_eq!(view.state, "needs_review");
    let t = app.timeline("cand-r", "app-r").await.unwrap();
    let first = t.iter().find(|e| e.event_id == "evt-r-2" && e.kind == "applied").unwrap();
    assert_eq!((first.state_before.as_str(), first.state_after.as_str()), ("unverified", "needs_review"));
    assert!(first.reason.contains("implied pending"), "{}", first.reason);
    let late = t.iter().find(|e| e.event_id == "evt-r-1").unwrap();
    assert_eq!(late.kind, "skipped");
    let writes = app.writes().await;
    assert_eq!(writes.len(), 1, "the skipped started event writes nothing: {writes:?}");
    assert_eq!(writes[0].fields["verification_state"], "needs_review");
}

#[tokio::test]
async fn a_stale_event_is_skipped() {
    let app = TestApp::spawn("stale").await;
    app.send(&started("cand-s", "app-s", "evt-s-1", &at(-30))).await;
    app.send(&decision("cand-s", "app-s", "evt-s-2", &at(-10), "needs_review")).await;
    app.wait_synced("cand-s", "app-s", "needs_review").await;
    // Allowed by the policy (needs_review -> verified), but it happened earlier.
    let old = decision("cand-s", "app-s", "evt-s-3", &at(-20), "verified");
    assert_eq!(app.send(&old).await.status, 202);
    let entry = app
        .wait_for("the stale event in the timeline", WAIT, || async {
            app.timeline("cand-s", "app-s").await.ok()?.into_iter().find(|e| e.event_id == "evt-s-3")
        })
        .await;
    assert_eq!(entry.kind, "skipped");
    assert!(entry.reason.starts_with("stale"), "{}", entry.reason);
    assert_eq!(app.state("cand-s", "app-s").await.unwrap().state, "needs_review");
    assert_eq!(app.writes().await.len(), 2);
}

#[tokio::test]
async fn a_bad_signature_gets_401_a_counted_refusal_and_no_workflow() {
    let app = TestApp::spawn("badsig").await;
    let body = started("cand-b", "app-b", "evt-b-1", &at(-1));
    let bytes = serde_json::to_vec(&body).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let wrong = vbridge::intake::signature::Secret::parse("not-the-secret", 1).unwrap();
    let r = app.client.send_il(&wrong, ts, bytes.clone()).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "invalid_signature");
    let unsigned = app.client.send_raw(bytes.clone(), vec![]).await.unwrap();
    assert_eq!((unsigned.status, unsigned.body["error"]["code"].as_str()), (401, Some("missing_signature")));
    let right = vbridge::intake::signature::Secret::parse(SECRET, 1).unwrap();
    let replayed = app.client.send_il(&right, ts - 301, bytes.clone()).await.unwrap();
    assert_eq!((replayed.status, replayed.body["error"]["code"].as_str()), (401, Some("timestamp_out_of_tolerance")));

    // Refused deliveries are counted per window, off the answer path: one
    // `deliveries_refused` record per code here, in the `rejected` chain.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let filter = vbridge::store::refused::Filter { candidate_id: Some("cand-b".into()), ..Default::default() };
    let rows = app
        .wait_for("three refusals recorded", WAIT, || async {
            let rows = store.refused_deliveries(&filter, None, 10).await.ok()?;
            (rows.len() == 3).then_some(rows)
        })
        .await;
    let mut codes: Vec<_> = rows.iter().map(|r| r.code.clone()).collect();
    codes.sort();
    assert_eq!(codes, vec!["invalid_signature", "missing_signature", "timestamp_out_of_tolerance"]);
    assert!(rows.iter().all(|r| r.source == "window" && !r.signature_valid), "{rows:?}");
    assert!(app.deliveries(Some("cand-b")).await.is_empty(), "no delivery row for an unauthenticated one");
    // A good delivery of another candidate does go through, so the relay is alive.
    app.send(&started("cand-b2", "app-b", "evt-b-2", &at(-1))).await;
    app.wait_synced("cand-b2", "app-b", "pending").await;
    assert!(!app.workflow_exists("cand-b", "app-b").await, "no workflow for a rejected delivery");
    let metrics = app.metrics().await;
    assert!(metrics.contains("webhook_signature_invalid_count 3"), "{metrics}");
}

#[tokio::test]
async fn standard_webhooks_signatures_are_accepted() {
    let app = TestApp::spawn("stdwh").await;
    let body = started("cand-w", "app-w", "evt-w-1", &at(-1));
    let r = app.client.send_standard("msg_1", &body).await.unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    app.wait_synced("cand-w", "app-w", "pending").await;
}

#[tokio::test]
async fn contract_error_answers() {
    let app = TestApp::spawn("errors").await;
    // 400 names the field.
    let mut b = decision("cand-e", "app-e", "evt-e-1", &at(-1), "verified");
    b.as_object_mut().unwrap().remove("decision_state");
    let r = app.send(&b).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_payload")));
    assert_eq!(r.body["error"]["field"], "decision_state");
    // Malformed JSON, signed.
    let r =
        app.client.send_il(&app.client.secret, chrono::Utc::now().timestamp(), b"{not json".to_vec()).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_payload")));
    // 415.
    let r = app
        .http
        .post(format!("{}/webhooks/verification", app.bridge_url))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "unsupported_media_type");
    // 413.
    let big = json!({"event_id": "x".repeat(300_000)});
    let r = app.send(&big).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (413, Some("payload_too_large")));
    // 409: same key, another event id.
    let first = started("cand-e", "app-e", "evt-e-2", &at(-1));
    assert_eq!(app.send(&first).await.status, 202);
    let mut other = started("cand-e", "app-e", "evt-e-3", &at(-1));
    other["idempotency_key"] = first["idempotency_key"].clone();
    let r = app.send(&other).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (409, Some("idempotency_conflict")));
    // Unknown event type: recorded and answered `ignored`, never forwarded.
    let mut unknown = started("cand-e", "app-e", "evt-e-4", &at(-1));
    unknown["event_type"] = json!("verification.expired");
    let r = app.send(&unknown).await;
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("ignored")));

    app.wait_synced("cand-e", "app-e", "pending").await;
    let rows = app.deliveries(Some("cand-e")).await;
    let results: Vec<(&str, Option<&str>)> =
        rows.iter().map(|r| (r.processing_result.as_str(), r.reject_code.as_deref())).collect();
    assert_eq!(
        results,
        vec![
            ("rejected", Some("invalid_payload")),
            ("accepted", None),
            ("rejected", Some("idempotency_conflict")),
            ("ignored", None),
        ]
    );
    assert!(rows.iter().filter(|r| r.processing_result == "rejected").all(|r| r.payload.is_none()));
    assert_eq!(app.timeline("cand-e", "app-e").await.unwrap().iter().filter(|t| t.kind == "applied").count(), 1);
}

#[tokio::test]
async fn ats_503_for_a_while_shows_pending_sync_then_writes_once() {
    let app = TestApp::spawn("ats503").await;
    app.ats_fault(json!({"mode": "status", "status": 503})).await;
    app.send(&started("cand-5", "app-5", "evt-5-1", &at(-1))).await;
    let view = app
        .wait_for("pending-sync while the ATS answers 503", WAIT, || async {
            let v = app.state("cand-5", "app-5").await.ok()?;
            let failed = app.ats_requests().await.iter().filter(|r| r.status == 503).count();
            (v.ats_sync == "pending-sync" && failed >= 2).then_some(v)
        })
        .await;
    assert_eq!(view.state, "pending");
    assert!(app.writes().await.is_empty());
    app.ats_clear_fault().await;
    app.wait_synced("cand-5", "app-5", "pending").await;
    let writes = app.writes().await;
    assert_eq!(writes.len(), 1, "{writes:?}");
    let puts: Vec<_> = app.ats_requests().await.into_iter().filter(|r| r.method == "PUT").collect();
    let keys: std::collections::BTreeSet<_> = puts.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "every retry carries the same Idempotency-Key");
    let t = app.timeline("cand-5", "app-5").await.unwrap();
    let w = t.iter().find(|e| e.kind == "ats_write").unwrap();
    assert!(w.attempt >= 2, "written on a retry, attempt {}", w.attempt);
}

#[tokio::test]
async fn ats_429_honours_retry_after_and_a_permanent_4xx_is_not_retried() {
    let app = TestApp::spawn("ats4xx").await;
    app.ats_fault(json!({"mode": "retry_after", "seconds": 2, "count": 1})).await;
    app.send(&started("cand-4", "app-4", "evt-4-1", &at(-2))).await;
    app.wait_synced("cand-4", "app-4", "pending").await;
    let puts: Vec<_> = app.ats_requests().await.into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    let gap = chrono::DateTime::parse_from_rfc3339(&puts[1].at).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&puts[0].at).unwrap();
    assert!(gap.num_milliseconds() >= 1900, "Retry-After: 2 was not honoured (gap {gap})");

    app.ats_fault(json!({"mode": "status", "status": 422})).await;
    app.send(&decision("cand-4", "app-4", "evt-4-2", &at(-1), "verified")).await;
    let entry = app
        .wait_for("the permanent rejection in the timeline", WAIT, || async {
            app.timeline("cand-4", "app-4").await.ok()?.into_iter().find(|e| e.kind == "ats_failed")
        })
        .await;
    assert!(entry.reason.contains("422"), "{}", entry.reason);
    let view = app.state("cand-4", "app-4").await.unwrap();
    assert_eq!((view.state.as_str(), view.ats_sync.as_str()), ("verified", "failed"));
    let rejected = app.ats_requests().await.iter().filter(|r| r.status == 422).count();
    assert_eq!(rejected, 1, "a permanent 4xx is not retried");
    let metrics = app.metrics().await;
    assert!(metrics.contains("vbridge_ats_write_permanent_rejection_count 1"), "{metrics}");
}

#[tokio::test]
async fn sigkill_after_commit_before_forward_applies_once_after_restart() {
    // Receiver only: the event is committed and acked, but nothing forwards it.
    let mut app = TestApp::spawn_with("kill", Options { roles: Some("receiver"), ..Default::default() }).await;
    let r = app.send(&started("cand-k", "app-k", "evt-k-1", &at(-1))).await;
    assert_eq!(r.status, 202);
    app.kill_bridge();
    assert!(!app.workflow_exists("cand-k", "app-k").await);
    let rows = app.deliveries(Some("cand-k")).await;
    assert_eq!((rows.len(), rows[0].forwarded), (1, false));

    // Crash window two: forwarded to Temporal, then killed before marking it.
    app.start_bridge(&[("VBRIDGE_ROLES", "receiver,relay"), ("VBRIDGE_FAULT", "crash-after-forward")]).await;
    let status = app.wait_bridge_exit(Duration::from_secs(60)).await;
    assert!(!status.success(), "the fault injection aborts the process");
    assert!(app.workflow_exists("cand-k", "app-k").await, "the forward reached Temporal before the crash");
    assert!(!app.deliveries(Some("cand-k")).await[0].forwarded, "the crash came before the mark");

    // A clean restart re-forwards; the workflow drops the second copy.
    app.start_bridge(&[("VBRIDGE_ROLES", "receiver,relay,worker")]).await;
    app.wait_synced("cand-k", "app-k", "pending").await;
    app.wait_for("the forward to be marked", WAIT, || async {
        app.deliveries(Some("cand-k")).await[0].forwarded.then_some(())
    })
    .await;
    let t = app.timeline("cand-k", "app-k").await.unwrap();
    assert_eq!(t.iter().filter(|e| e.kind == "applied").count(), 1, "{t:?}");
    assert_eq!(t.iter().filter(|e| e.reason == "duplicate event id").count(), 1, "{t:?}");
    assert_eq!(app.writes().await.len(), 1, "exactly one ATS write in effect");
}

#[tokio::test]
async fn temporal_down_webhooks_are_acked_and_forwarded_when_it_returns() {
    let mut app = TestApp::spawn_with("tdown", Options { persist_temporal: true, ..Default::default() }).await;
    app.send(&started("cand-t", "app-t", "evt-t-1", &at(-3))).await;
    app.wait_synced("cand-t", "app-t", "pending").await;

    app.temporal.stop();
    let mut replies = vec![];
    for i in 0..5 {
        let cand = format!("cand-t{i}");
        replies.push(app.send(&started(&cand, "app-t", &format!("evt-t{i}"), &at(-2))).await);
    }
    replies.push(app.send(&decision("cand-t", "app-t", "evt-t-2", &at(-1), "verified")).await);
    assert!(replies.iter().all(|r| r.status == 202), "acking goes on while Temporal is down");
    let rows = app.deliveries(None).await;
    assert_eq!(rows.iter().filter(|r| !r.forwarded).count(), 6);

    app.temporal.restart().await.expect("restarting Temporal on the same port and database");
    app.wait_synced("cand-t", "app-t", "verified").await;
    for i in 0..5 {
        app.wait_synced(&format!("cand-t{i}"), "app-t", "pending").await;
    }
    app.wait_for("all forwarded", WAIT, || async {
        app.deliveries(None).await.iter().all(|r| r.forwarded).then_some(())
    })
    .await;
    assert_eq!(app.writes().await.len(), 7);
}

#[tokio::test]
async fn continues_as_new_and_keeps_its_state() {
    let app = TestApp::spawn_with(
        "can",
        Options { extra_env: vec![("VBRIDGE_CONTINUE_AS_NEW_AFTER".into(), "60".into())], ..Default::default() },
    )
    .await;
    app.send(&started("cand-c", "app-c", "evt-c-0", &at(-50))).await;
    app.send(&decision("cand-c", "app-c", "evt-c-1", &at(-40), "needs_review")).await;
    app.wait_synced("cand-c", "app-c", "needs_review").await;
    // Many distinct late events: each is skipped but grows the history.
    for i in 0..70 {
        app.send(&started("cand-c", "app-c", &format!("evt-c-late-{i}"), &at(-30))).await;
    }
    let view = app
        .wait_for("a continue-as-new", WAIT, || async {
            let v = app.state("cand-c", "app-c").await.ok()?;
            (v.continued_as_new >= 1).then_some(v)
        })
        .await;
    assert_eq!(view.state, "needs_review");
    // After continue-as-new, an event seen in the first run comes back
    // through the relay (same event id, a new idempotency key, as a provider
    // re-sending it would): the carried ids skip it as a duplicate.
    let mut again = decision("cand-c", "app-c", "evt-c-1", &at(-40), "needs_review");
    again["idempotency_key"] = "idem-evt-c-1-resent".into();
    assert_eq!(app.send(&again).await.status, 202, "a new key is a new delivery");
    let entries = app
        .wait_for("the re-sent event handled", WAIT, || async {
            let t = app.timeline("cand-c", "app-c").await.ok()?;
            let e: Vec<_> = t.into_iter().filter(|e| e.event_id == "evt-c-1").collect();
            e.iter().any(|e| e.kind == "skipped").then_some(e)
        })
        .await;
    let skipped = entries.iter().find(|e| e.kind == "skipped").unwrap();
    assert_eq!(skipped.reason, "duplicate event id");
    app.send(&decision("cand-c", "app-c", "evt-c-final", &at(-1), "verified")).await;
    app.wait_synced("cand-c", "app-c", "verified").await;
    assert_eq!(app.writes().await.len(), 3);
}

#[tokio::test]
async fn a_write_whose_attempts_are_spent_waits_and_is_retried_not_dropped() {
    let app = TestApp::spawn("defer").await;
    // The policy allows 12 attempts per round; fail 14 requests: round one is
    // spent, the write waits on a durable timer, round two succeeds.
    app.ats_fault(json!({"mode": "status", "status": 503, "count": 14})).await;
    app.send(&started("cand-f", "app-f", "evt-f-1", &at(-1))).await;
    let deferred = app
        .wait_for("an ats_deferred entry", WAIT, || async {
            app.timeline("cand-f", "app-f").await.ok()?.into_iter().find(|e| e.kind == "ats_deferred")
        })
        .await;
    assert!(deferred.reason.contains("round 1"), "{}", deferred.reason);
    assert_eq!(app.state("cand-f", "app-f").await.unwrap().ats_sync, "pending-sync");
    app.wait_synced("cand-f", "app-f", "pending").await;
    let requests = app.ats_requests().await;
    assert_eq!(requests.iter().filter(|r| r.status == 503).count(), 14);
    assert_eq!(app.writes().await.len(), 1);
}

#[tokio::test]
async fn events_for_a_finished_verification_leave_it_in_the_right_state() {
    let app = TestApp::spawn("finished").await;
    app.send(&started("cand-z", "app-z", "evt-z-1", &at(-30))).await;
    app.send(&decision("cand-z", "app-z", "evt-z-2", &at(-20), "verified")).await;
    app.wait_synced("cand-z", "app-z", "verified").await;
    // A later contradicting decision (verified -> failed) and a later
    // needs_review are the provider's reversals: held for an admin, never
    // applied (a webhook never downgrades); a later start is refused.
    app.send(&decision("cand-z", "app-z", "evt-z-3", &at(-10), "failed")).await;
    app.send(&decision("cand-z", "app-z", "evt-z-4", &at(-5), "needs_review")).await;
    let t = app
        .wait_for("both late decisions handled", WAIT, || async {
            let t = app.timeline("cand-z", "app-z").await.ok()?;
            (t.iter().any(|e| e.event_id == "evt-z-4")).then_some(t)
        })
        .await;
    let kind = |id: &str| t.iter().find(|e| e.event_id == id).map(|e| e.kind.clone()).unwrap();
    assert_eq!(kind("evt-z-3"), "provider_reversal");
    assert_eq!(kind("evt-z-4"), "provider_reversal");
    app.send(&started("cand-z", "app-z", "evt-z-5", &at(-1))).await;
    let t = app
        .wait_for("the late start handled", WAIT, || async {
            let t = app.timeline("cand-z", "app-z").await.ok()?;
            (t.iter().any(|e| e.event_id == "evt-z-5")).then_some(t)
        })
        .await;
    let late = t.iter().find(|e| e.event_id == "evt-z-5").unwrap();
    assert_eq!(late.kind, "refused");
    assert!(late.reason.contains("cannot downgrade"), "{}", late.reason);
    assert_eq!(app.state("cand-z", "app-z").await.unwrap().state, "verified");
    assert_eq!(app.writes().await.len(), 2);
}

#[tokio::test]
async fn a_store_that_cannot_commit_answers_503_with_retry_after_and_loses_nothing() {
    let app = TestApp::spawn_with(
        "store503",
        Options { extra_env: vec![("VBRIDGE_COMMIT_TIMEOUT_MS".into(), "500".into())], ..Default::default() },
    )
    .await;
    // Another process holds the database's write lock: no commit can happen.
    let holder = crate::harness::WriteLock::take(&app.database_url()).await;
    let body = started("cand-u", "app-u", "evt-u-1", &at(-1));
    let t = std::time::Instant::now();
    let r = app.send(&body).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (503, Some("unavailable")));
    assert!(t.elapsed() < Duration::from_secs(5), "answered within the commit timeout, not left hanging");
    assert_eq!(r.retry_after.as_deref(), Some("2"), "503 carries Retry-After");
    assert!(!app.workflow_exists("cand-u", "app-u").await);
    holder.release().await;
    // The provider's retry is answered 2xx: the delivery that timed out may
    // have landed since (then this is its duplicate); either way it is
    // durable and applied once.
    let r = app.send(&body).await;
    assert!(matches!(r.body["status"].as_str(), Some("accepted" | "duplicate")), "{:?}", r.body);
    app.wait_synced("cand-u", "app-u", "pending").await;
    let t = app.timeline("cand-u", "app-u").await.unwrap();
    assert_eq!(t.iter().filter(|e| e.kind == "applied").count(), 1, "{t:?}");
    assert_eq!(app.writes().await.len(), 1);
}

#[tokio::test]
async fn on_postgres_the_spine_works_end_to_end() {
    let database_url = Some(crate::harness::postgres_url().await);
    let app = TestApp::spawn_with("pg-spine", Options { database_url, ..Default::default() }).await;
    let s = started("cand-g", "app-g", "evt-g-1", &at(-10));
    let d = decision("cand-g", "app-g", "evt-g-2", &at(-5), "needs_review");
    assert_eq!(app.send(&d).await.status, 202);
    assert_eq!(app.send(&s).await.status, 202);
    assert_eq!(app.send(&d).await.status, 200);
    app.wait_synced("cand-g", "app-g", "needs_review").await;
    let writes = app.writes().await;
    assert_eq!(writes.len(), 1, "{writes:?}");
    let rows = app.deliveries(Some("cand-g")).await;
    let results: Vec<&str> = rows.iter().map(|r| r.processing_result.as_str()).collect();
    assert_eq!(results, vec!["accepted", "accepted", "duplicate"]);
}

#[tokio::test]
async fn two_instances_on_one_postgres_accept_each_key_once_and_write_once() {
    let database_url = Some(crate::harness::postgres_url().await);
    let mut app = TestApp::spawn_with("pg-two", Options { database_url, ..Default::default() }).await;
    let second = app.spawn_second_bridge().await;
    let both = [app.client.clone(), second.client.clone()];
    let clients = &both;
    // 15 candidates, 2 events each, every event delivered 4 times, split
    // across both receivers and all sent at once.
    let mut sends = vec![];
    for i in 0..15 {
        let cand = format!("cand-two-{i}");
        let s = started(&cand, "app-2", &format!("evt-two-{i}-s"), &at(-10));
        let d = decision(&cand, "app-2", &format!("evt-two-{i}-d"), &at(-5), "verified");
        for k in 0..4 {
            sends.push((k % 2, s.clone()));
            sends.push(((k + 1) % 2, d.clone()));
        }
    }
    let replies =
        futures::future::join_all(sends.iter().map(|(c, body)| async move { clients[*c].send(body).await.unwrap() }))
            .await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let dups = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((accepted, dups), (30, 90), "each idempotency key accepted exactly once");

    let mut applied = 0;
    for i in 0..15 {
        // A decision may land before its started event: then the started one is skipped.
        applied += app.wait_synced(&format!("cand-two-{i}"), "app-2", "verified").await.applied_events as usize;
    }
    let writes = app.writes().await;
    let keys: std::collections::BTreeSet<_> = writes.iter().map(|w| w.idempotency_key.clone()).collect();
    assert_eq!(writes.len(), keys.len(), "no event written twice");
    assert_eq!(writes.len(), applied, "one ATS write per applied event");
    assert!(applied >= 15);
    let verified = writes.iter().filter(|w| w.fields["verification_state"] == "verified").count();
    assert_eq!(verified, 15);
    app.wait_for("every accepted event marked forwarded", WAIT, || async {
        let rows = app.deliveries(None).await;
        rows.iter().filter(|r| r.processing_result == "accepted").all(|r| r.forwarded).then_some(())
    })
    .await;
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let report = store.verify_chains().await.unwrap();
    assert_eq!(report.broken, None);
    drop(second);
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm_and_loses_nothing() {
    let mut app = TestApp::spawn("sigterm").await;
    assert_eq!(app.send(&started("cand-q", "app-q", "evt-q-1", &at(-1))).await.status, 202);
    app.wait_synced("cand-q", "app-q", "pending").await;
    let pid = app.bridge.as_ref().expect("bridge running").id();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let status = app.wait_bridge_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "vbridge serve exits 0 on SIGTERM, got {status}");
    // A restart picks up where it left off.
    app.start_bridge(&[]).await;
    assert_eq!(app.send(&decision("cand-q", "app-q", "evt-q-2", &at(0), "verified")).await.status, 202);
    app.wait_synced("cand-q", "app-q", "verified").await;
    assert_eq!(app.writes().await.len(), 2);
}
