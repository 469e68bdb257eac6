//! Operations controls against the real Temporal: the kill switch and the
//! interview-scheduling gate, and pause/resume (one verification, and all
//! open ones by a batch signal).

use crate::harness::{AUDITOR_TOKEN, OPS_TOKEN, REVIEWER_TOKEN, TestApp, at};
use crate::replay::{CURRENT, check_and_save, history_json};
use serde_json::{Value, json};
use std::time::Duration;
use vbridge::controls::gate::Answer;
use vbridge::devtools::client::{decision, started};

const WAIT: Duration = Duration::from_secs(60);
const BANNER: &str = "Verification gating disabled - events still logging";

async fn gate(app: &TestApp, a: &str) -> Answer {
    let r = app.get_as(&format!("/v1/applications/{a}/gate"), Some(REVIEWER_TOKEN)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn put_gating(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http.put(format!("{}/v1/controls/gating", app.bridge_url)).bearer_auth(token).json(&body).send().await.unwrap()
}

/// The banner field the ATS holds for an application's check, if any.
async fn ats_banner(app: &TestApp, c: &str, a: &str) -> Option<String> {
    let held = app.ats_check(a, &format!("chk-{c}-{a}")).await?;
    held["fields"]["verification_banner"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn gating_off_opens_the_gate_and_writes_the_banner_and_on_takes_it_back() {
    let app = TestApp::spawn("gating").await;
    assert_eq!(app.send(&started("cand-p", "app-p", "evt-p-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&started("cand-v", "app-v", "evt-v-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision("cand-v", "app-v", "evt-v-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced("cand-p", "app-p", "pending").await;
    app.wait_synced("cand-v", "app-v", "verified").await;

    // Gating on (the policy's default): only verified candidates pass.
    let g = app
        .wait_for("the gate to see the write", WAIT, || async {
            let g = gate(&app, "app-v").await;
            (g.reason == "verified").then_some(g)
        })
        .await;
    assert!(g.allow_interview_scheduling && g.ats_sync.as_deref() == Some("synced") && g.banner.is_none());
    let p = gate(&app, "app-p").await;
    assert_eq!((p.allow_interview_scheduling, p.reason.as_str()), (false, "pending"));
    let u = gate(&app, "app-nobody").await;
    assert_eq!((u.allow_interview_scheduling, u.reason.as_str()), (false, "unknown-application"));

    // Only ops turns it off, and only with a reason.
    assert_eq!(put_gating(&app, AUDITOR_TOKEN, json!({"enabled": false, "reason": "x"})).await.status(), 403);
    assert_eq!(put_gating(&app, OPS_TOKEN, json!({"enabled": false})).await.status(), 400);
    let r = put_gating(&app, OPS_TOKEN, json!({"enabled": false, "reason": "provider outage INC-7"})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["enabled"].as_bool(), body["actor"].as_str()), (Some(false), Some("it-ops")));
    assert!(body["broadcast"].as_str().is_some(), "a batch signal carries the banner: {body}");

    // The gate lets everyone through at once, with the banner.
    let p = gate(&app, "app-p").await;
    assert_eq!((p.allow_interview_scheduling, p.reason.as_str()), (true, "gating-disabled"));
    assert_eq!(p.banner.as_deref(), Some(BANNER));
    assert_eq!(p.state.as_deref(), Some("pending"), "the state is still reported");
    // Open verifications get the banner in the ATS.
    for (c, a) in [("cand-p", "app-p"), ("cand-v", "app-v")] {
        app.wait_for(&format!("the banner in the ATS for {a}"), WAIT, || async {
            (ats_banner(&app, c, a).await.as_deref() == Some(BANNER)).then_some(())
        })
        .await;
    }
    // Events are still taken and written; a verification started now carries it too.
    assert_eq!(app.send(&started("cand-n", "app-n", "evt-n-1", &at(-1))).await.status, 202);
    app.wait_synced("cand-n", "app-n", "pending").await;
    assert_eq!(ats_banner(&app, "cand-n", "app-n").await.as_deref(), Some(BANNER));

    // Back on: the banner is removed, the gate holds again.
    let r = put_gating(&app, OPS_TOKEN, json!({"enabled": true, "reason": "provider recovered"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(gate(&app, "app-p").await.reason, "pending");
    for (c, a) in [("cand-p", "app-p"), ("cand-v", "app-v"), ("cand-n", "app-n")] {
        app.wait_for(&format!("the banner gone from {a}"), WAIT, || async {
            (ats_banner(&app, c, a).await.as_deref() == Some("")).then_some(())
        })
        .await;
    }
    let now: Value = app.get_as("/v1/controls/gating", Some(AUDITOR_TOKEN)).await.json().await.unwrap();
    assert_eq!(now["enabled"], true);
    assert_eq!(now["changed"]["reason"], "provider recovered");

    // Each change is in the audit log's `controls` chain, with its actor and reason.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let changes: Vec<_> =
        store.decisions(None, None).await.unwrap().into_iter().filter(|d| d.record.kind == "control_changed").collect();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|d| d.stream == "controls" && d.record.override_actor == "it-ops"));
    assert_eq!(changes[0].record.state_after, "verification_gating_enabled=false");
    assert_eq!(changes[0].record.reason, "provider outage INC-7");
    // Only the controls chain: the workflows may still be appending to theirs.
    let controls = store.verify_streams(Some(&["controls".to_owned()])).await.unwrap();
    assert!(controls.broken.is_none() && controls.records == 2, "{controls:?}");
    let history = history_json(&app, &vbridge_core::domain::workflow_id("cand-v", "app-v"), None).await;
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_banner.json")).await;
}

#[tokio::test]
async fn a_paused_verification_records_events_and_writes_its_latest_state_once_on_resume() {
    let app = TestApp::spawn("pause").await;
    let (c, a) = ("cand-z", "app-z");
    assert_eq!(app.send(&started(c, a, "evt-z-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    let before = app.writes().await.len();

    let r = app
        .post_as(
            &format!("/v1/verifications/{c}/{a}/pause"),
            Some(OPS_TOKEN),
            None,
            &json!({"reason": "ATS migration"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["paused"], true);
    assert_eq!(
        app.post_as(&format!("/v1/verifications/{c}/{a}/pause"), Some(REVIEWER_TOKEN), None, &json!({})).await.status(),
        403
    );
    app.wait_for("the pause", WAIT, || async { app.state(c, a).await.ok().filter(|v| v.paused) }).await;

    // Two moves while paused: a provider decision, then a reviewer's.
    assert_eq!(app.send(&decision(c, a, "evt-z-2", &at(-9), "needs_review")).await.status, 202);
    app.wait_for("needs_review applied", WAIT, || async {
        app.state(c, a).await.ok().filter(|v| v.state == "needs_review")
    })
    .await;
    let body = json!({"decision": "verified", "reason_code": "doc-anomaly"});
    assert_eq!(
        app.post_as(&format!("/v1/reviews/{c}/{a}/decision"), Some(REVIEWER_TOKEN), None, &body).await.status(),
        200
    );
    let view = app.state(c, a).await.unwrap();
    assert_eq!(
        (view.state.as_str(), view.paused, view.pending_writes),
        ("verified", true, 1),
        "one coalesced write owed"
    );
    // Both moves reach the audit log while the ATS hears nothing.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("both moves in the log", WAIT, || async {
        let d = store.decisions(Some(c), Some(a)).await.ok()?;
        let kinds: Vec<String> = d.into_iter().map(|d| d.record.kind).collect();
        (kinds.iter().any(|k| k == "review_decided") && kinds.iter().any(|k| k == "paused")).then_some(())
    })
    .await;
    assert_eq!(app.writes().await.len(), before, "no ATS write while paused");
    // The search attribute and the current details show it.
    let id = vbridge_core::domain::workflow_id(c, a);
    app.wait_for("VerificationPaused in visibility", WAIT, || async {
        let out = app.temporal_cli(&["workflow", "list", "--query", "VerificationPaused = true"]);
        out.contains(&id).then_some(())
    })
    .await;
    let details = app.temporal_cli(&["workflow", "metadata", "--workflow-id", &id]);
    assert!(details.contains("PAUSED"), "{details}");

    // Resume: one write, the latest state with everything the moves set.
    let r = app.post_as(&format!("/v1/verifications/{c}/{a}/resume"), Some(OPS_TOKEN), None, &json!({})).await;
    assert_eq!(r.status(), 200);
    app.wait_synced(c, a, "verified").await;
    let writes = app.writes().await;
    assert_eq!(writes.len(), before + 1, "the backlog is written once, not one by one");
    let last = writes.last().unwrap();
    assert_eq!(last.fields["verification_state"], "verified");
    assert_eq!(last.fields["override_actor"], "it-reviewer");
    assert!(last.fields.contains_key("reviewer_queue_link") && last.fields.contains_key("evidence_pack_url"));

    // Every open verification at once, by a batch signal (the CLI).
    let (c2, a2) = ("cand-y", "app-y");
    assert_eq!(app.send(&started(c2, a2, "evt-y-1", &at(-10))).await.status, 202);
    app.wait_synced(c2, a2, "pending").await;
    let out = app.vbridge_cli(&["pause", "--all", "--reason", "incident INC-9", "--actor", "cli-ops"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (cc, aa) in [(c, a), (c2, a2)] {
        app.wait_for(&format!("{cc} paused by the batch"), WAIT, || async {
            app.state(cc, aa).await.ok().filter(|v| v.paused)
        })
        .await;
    }
    let out = app.vbridge_cli(&["resume", "--all", "--reason", "over", "--actor", "cli-ops"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.wait_for("all resumed", WAIT, || async {
        let (x, y) = (app.state(c, a).await.ok()?, app.state(c2, a2).await.ok()?);
        (!x.paused && !y.paused).then_some(())
    })
    .await;
    let timeline = app.timeline(c2, a2).await.unwrap();
    assert!(timeline.iter().any(|t| t.kind == "paused" && t.override_actor == "cli-ops"));

    // One region: the `Region` search attribute comes from the first event's job.
    for (cc, aa, region) in [("cand-e", "app-e", "emea"), ("cand-w", "app-w", "amer")] {
        let mut ev = started(cc, aa, &format!("evt-{aa}-1"), &at(-10));
        ev["signals"] = json!({"job": {"region": region}});
        assert_eq!(app.send(&ev).await.status, 202);
        app.wait_synced(cc, aa, "pending").await;
    }
    let emea = vbridge_core::domain::workflow_id("cand-e", "app-e");
    app.wait_for("Region in visibility", WAIT, || async {
        app.temporal_cli(&["workflow", "list", "--query", "Region = 'emea'"]).contains(&emea).then_some(())
    })
    .await;
    let out =
        app.vbridge_cli(&["pause", "--region", "emea", "--reason", "EMEA ATS cutover", "--actor", "cli-ops"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.wait_for("the emea verification paused", WAIT, || async {
        app.state("cand-e", "app-e").await.ok().filter(|v| v.paused)
    })
    .await;
    assert!(!app.state("cand-w", "app-w").await.unwrap().paused, "another region is not paused");
    assert!(!app.state(c, a).await.unwrap().paused);
    let history = history_json(&app, &id, None).await;
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_paused.json")).await;
}

#[tokio::test]
async fn a_refused_write_is_a_dead_letter_until_re_driven_with_its_own_key() {
    let app = TestApp::spawn("deadletter").await;
    let (c, a) = ("cand-d", "app-d");
    assert_eq!(app.send(&started(c, a, "evt-d-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    // The ATS refuses the next write for good (a mapping it cannot take).
    app.ats_fault(json!({"mode": "status", "status": 422, "count": 1})).await;
    assert_eq!(app.send(&decision(c, a, "evt-d-2", &at(-9), "verified")).await.status, 202);
    let letter = app
        .wait_for("the dead letter", WAIT, || async {
            let r = app.get_as("/v1/writes/failed", Some(OPS_TOKEN)).await;
            let body: Value = r.json().await.ok()?;
            body["items"].as_array()?.first().cloned()
        })
        .await;
    assert_eq!((letter["candidate_id"].as_str(), letter["state"].as_str()), (Some(c), Some("verified")));
    assert!(letter["reason"].as_str().unwrap().contains("422"));
    let key = letter["idempotency_key"].as_str().unwrap().to_owned();
    assert_eq!(app.state(c, a).await.unwrap().ats_sync, "failed");
    assert_eq!(app.get_as("/v1/writes/failed", Some(REVIEWER_TOKEN)).await.status(), 403);
    let listed = app.vbridge_cli(&["writes", "failed", "--json"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&key));

    // Fixed: re-drive it; it goes with its own key, and leaves the list.
    let r = app
        .post_as("/v1/writes/retry", Some(OPS_TOKEN), None, &json!({"idempotency_key": key, "reason": "mapping fixed"}))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["retried"], 1);
    app.wait_synced(c, a, "verified").await;
    let last = app.writes().await.into_iter().last().unwrap();
    assert_eq!((last.idempotency_key.as_str(), last.fields["verification_state"].as_str()), (key.as_str(), "verified"));
    app.wait_for("the dead letter resolved", WAIT, || async {
        let body: Value = app.get_as("/v1/writes/failed", Some(OPS_TOKEN)).await.json().await.ok()?;
        body["items"].as_array()?.is_empty().then_some(())
    })
    .await;
    let timeline = app.timeline(c, a).await.unwrap();
    assert!(timeline.iter().any(|t| t.kind == "ats_retry" && t.override_actor == "it-ops"));
    let again = app.post_as("/v1/writes/retry", Some(OPS_TOKEN), None, &json!({"idempotency_key": key})).await;
    assert_eq!(again.status(), 409, "nothing left to re-drive under that key");
    let history = history_json(&app, &vbridge_core::domain::workflow_id(c, a), None).await;
    check_and_save(&history, &format!("candidate_verification_{CURRENT}_redriven.json")).await;
}

#[tokio::test]
async fn through_a_429_storm_the_gate_says_pending_sync_and_writes_resume_by_themselves() {
    let app = TestApp::spawn("storm").await;
    let (c, a) = ("cand-s", "app-s");
    assert_eq!(app.send(&started(c, a, "evt-s-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    // Every write is throttled for a while, each with Retry-After.
    app.ats_fault(json!({"mode": "retry_after", "seconds": 1, "count": 4})).await;
    assert_eq!(app.send(&decision(c, a, "evt-s-2", &at(-9), "verified")).await.status, 202);
    let g = app
        .wait_for("the gate in degraded mode", WAIT, || async {
            let g = gate(&app, a).await;
            (g.state.as_deref() == Some("verified")).then_some(g)
        })
        .await;
    assert_eq!((g.reason.as_str(), g.ats_sync.as_deref()), ("pending-sync", Some("pending-sync")), "{g:?}");
    assert!(g.allow_interview_scheduling, "the bridge knows the candidate is verified");
    assert_eq!(app.state(c, a).await.unwrap().ats_sync, "pending-sync");
    // Nobody does anything: the writes resume by themselves.
    app.wait_synced(c, a, "verified").await;
    let throttled = app.ats_requests().await.iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 4);
    let g = app
        .wait_for("the gate back to verified", WAIT, || async {
            let g = gate(&app, a).await;
            (g.reason == "verified").then_some(g)
        })
        .await;
    assert_eq!(g.ats_sync.as_deref(), Some("synced"));
}

#[tokio::test]
async fn outside_the_canary_a_verification_never_blocks_scheduling() {
    use vbridge_core::canary::bucket;
    let dir = std::env::temp_dir().join(format!("vbridge-canary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = vbridge_core::DEFAULT_POLICY_YAML.replacen(
        "observability:",
        "  canary:\n    percent: 50\n    regions: [\"emea\"]\nobservability:",
        1,
    );
    assert!(vbridge_core::Policy::parse(&policy).is_ok(), "the canary extension parses");
    let path = dir.join("policy-canary.yaml");
    std::fs::write(&path, policy).unwrap();
    let app = crate::harness::TestApp::spawn_with(
        "canary",
        crate::harness::Options {
            extra_env: vec![("VBRIDGE_POLICY".into(), path.display().to_string())],
            ..Default::default()
        },
    )
    .await;
    // A requisition inside the 50 % and one outside it.
    let inside = (0..).map(|i| format!("REQ-{i}")).find(|r| bucket(r) < 50).unwrap();
    let outside = (0..).map(|i| format!("REQ-{i}")).find(|r| bucket(r) >= 50).unwrap();
    let cases = [("app-in", &inside, "emea"), ("app-bucket", &outside, "emea"), ("app-region", &inside, "amer")];
    for (a, req, region) in cases {
        let mut ev = started(&format!("cand-{a}"), a, &format!("evt-{a}"), &at(-5));
        ev["external_ats_ids"] = json!({"requisition_id": req});
        ev["signals"] = json!({"job": {"region": region, "role": "engineering"}});
        assert_eq!(app.send(&ev).await.status, 202);
        app.wait_synced(&format!("cand-{a}"), a, "pending").await;
    }
    let g = gate(&app, "app-in").await;
    assert_eq!((g.allow_interview_scheduling, g.reason.as_str()), (false, "pending"), "in the canary: gated");
    for a in ["app-bucket", "app-region"] {
        let g = gate(&app, a).await;
        assert_eq!((g.allow_interview_scheduling, g.reason.as_str()), (true, "not-in-canary"), "{a}");
        assert_eq!(g.state.as_deref(), Some("pending"), "still verified and written like the others");
    }
    assert_eq!(gate(&app, "app-nobody").await.reason, "unknown-application");
}

#[tokio::test]
async fn reconciliation_finds_an_edit_behind_the_bridge_s_back_and_heals_it() {
    let app = TestApp::spawn("reconcile").await;
    for (c, a) in [("cand-r1", "app-r1"), ("cand-r2", "app-r2")] {
        assert_eq!(app.send(&started(c, a, &format!("evt-{a}-1"), &at(-10))).await.status, 202);
        assert_eq!(app.send(&decision(c, a, &format!("evt-{a}-2"), &at(-9), "verified")).await.status, 202);
        app.wait_synced(c, a, "verified").await;
    }
    // Someone flips one ATS field by hand.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("both checks in the expectation", WAIT, || async {
        (store.expected_count().await.ok()? == 2).then_some(())
    })
    .await;
    let rogue = app
        .http
        .put(format!("{}/applications/app-r1/verification-checks/chk-cand-r1-app-r1", app.sandbox_url))
        .header("Idempotency-Key", "rogue-edit-1")
        .json(&json!({"candidate_id": "cand-r1", "fields": {"verification_state": "failed"}}))
        .send()
        .await
        .unwrap();
    assert!(rogue.status().is_success());

    // A dry run over the API reports the drift and heals nothing.
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(2), Some(1)));
    assert_eq!(
        (report["healed"].as_u64(), report["dry_run"].as_bool()),
        (Some(0), Some(true)),
        "a dry run heals nothing"
    );
    assert_eq!(report["items"][0]["found"]["verification_state"], "failed");
    assert_eq!(app.ats_check("app-r1", "chk-cand-r1-app-r1").await.unwrap()["fields"]["verification_state"], "failed");

    // The CLI's run heals it through the idempotent write path, and says so.
    let out = app.vbridge_cli(&["reconcile", "run", "--actor", "cli-ops"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verification_state") && stdout.contains("healed"), "{stdout}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((summary["drifted"].as_u64(), summary["healed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        app.ats_check("app-r1", "chk-cand-r1-app-r1").await.unwrap()["fields"]["verification_state"],
        "verified"
    );
    let heal = app.writes().await.into_iter().last().unwrap();
    assert!(heal.idempotency_key.starts_with("rec-"), "{}", heal.idempotency_key);

    // Reports are in the audit log's reconciliation chain; the nightly schedule exists.
    let reports: Vec<_> =
        store.decisions(None, None).await.unwrap().into_iter().filter(|d| d.record.kind == "reconciled").collect();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|d| d.stream == "reconciliation"));
    let task_queue = format!("it-reconcile-{}", std::process::id());
    let schedule =
        app.temporal_cli(&["schedule", "describe", "--schedule-id", &format!("vbridge-reconciliation-{task_queue}")]);
    assert!(schedule.contains("Reconciliation"), "{schedule}");
    let run = summary["run_id"].as_str().unwrap();
    check_and_save(&history_json(&app, run, None).await, "reconciliation_healed.json").await;
}
