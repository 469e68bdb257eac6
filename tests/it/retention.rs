//! Retention as it runs in production, and the floor under it: a bridge that
//! ran days ago (under libfaketime) is cut by the nightly Temporal Schedule at
//! the real time, and verify stays green with its seal; a cut below the
//! policy's `eventLog.retentionDays` is refused, and one made anyway is named
//! by verify and by the seal; on Postgres, no role granted rights on the
//! tables can lift the append-only guards.

use crate::audit::{days_ago, one_day_policy, seal_beside, two_chains, verify_cli};
use crate::harness::{Options, TestApp, days_and_minutes_ago, faketime_env, postgres_url, raw_sql};
use std::time::Duration;
use vbridge::devtools::client::{decision, started};
use vbridge_core::record::RecordKind;

const WAIT: Duration = Duration::from_secs(90);

/// Every record the store holds: (deliveries, decisions).
async fn counts(store: &dyn vbridge::store::EventStore) -> (usize, usize) {
    (store.deliveries(None, None).await.unwrap().len(), store.decisions(None, None).await.unwrap().len())
}

#[tokio::test]
async fn the_nightly_schedule_cuts_a_bridge_run_days_ago_verify_stays_green_and_no_cut_goes_below_the_floor() {
    let name = "retention-floor";
    let mut extra_env = faketime_env("-3d");
    extra_env.push(("VBRIDGE_POLICY".into(), one_day_policy()));
    let mut app = TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await;

    // Three days ago by the bridge's clock: good deliveries and the
    // workflow's decisions, refused deliveries, refused operator requests.
    let sent = app.send_days_ago(&started("cand-r", "app-r", "evt-r-1", &days_and_minutes_ago(3, 10)), 3).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    app.send_days_ago(&decision("cand-r", "app-r", "evt-r-2", &days_and_minutes_ago(3, 5), "verified"), 3).await;
    app.wait_synced("cand-r", "app-r", "verified").await;
    let forged = vbridge::intake::signature::Secret::parse("not-the-secret", 1).unwrap();
    let ts = (chrono::Utc::now() - chrono::Duration::days(3)).timestamp();
    for i in 0..3 {
        let body = serde_json::to_vec(&started("victim", "app-v", &format!("evt-x-{i}"), &days_ago(3))).unwrap();
        assert_eq!(app.client.send_il(&forged, ts, body).await.unwrap().status, 401);
        assert_eq!(app.get_as("/v1/reviews", None).await.status(), 401);
    }
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    app.wait_for("the old records stored and forwarded", WAIT, || async {
        // Refusals reach the audit log aggregated, once per window.
        let streams: Vec<String> = store.decisions(None, None).await.ok()?.into_iter().map(|d| d.stream).collect();
        let ok = store.unforwarded(10).await.ok()?.is_empty()
            && ["access", "rejected", "cand-r:app-r"].iter().all(|c| streams.iter().any(|s| s == c));
        ok.then_some(())
    })
    .await;
    let old = store.deliveries(None, None).await.unwrap();
    assert!(
        old.iter().all(|d| d.received_at < days_ago(2)),
        "the bridge ran three days back: {:?}",
        old[0].received_at
    );

    // Back to the real clock.
    app.kill_bridge();
    app.start_bridge(&[("LD_PRELOAD", ""), ("FAKETIME", "")]).await;
    let seal = seal_beside(&app.database_url());
    let before = counts(store.as_ref()).await;

    // Below the floor: refused with its reason, and nothing is removed.
    let refused = app.vbridge_cli(&["audit", "retention", "--days", "0"]).await;
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("retentionDays (1)") && why.contains("--days 0"), "{why}");
    assert_eq!(counts(store.as_ref()).await, before, "a refused retention removed records");

    // The bridge created its nightly schedule; triggered now, it cuts every
    // kind of chain under the policy's floor.
    let schedule = format!("vbridge-retention-it-{name}-{}", std::process::id());
    let described = app.temporal_cli(&["schedule", "describe", "--schedule-id", &schedule, "-o", "json"]);
    assert!(described.contains("AuditRetention"), "the schedule starts the retention workflow: {described}");
    app.temporal_cli(&["schedule", "trigger", "--schedule-id", &schedule]);
    let cut = app
        .wait_for("the scheduled retention's records", WAIT, || async {
            let ret: Vec<String> = store
                .decisions(None, None)
                .await
                .ok()?
                .into_iter()
                .filter(|d| d.record.kind == RecordKind::Retention)
                .map(|d| d.stream)
                .collect();
            (ret.len() >= 3).then_some(ret)
        })
        .await;
    for chain in ["access", "rejected", "cand-r:app-r"] {
        assert!(
            cut.iter().any(|s| s == chain),
            "{chain} was not cut (a retention record lives in the chain it cut): {cut:?}"
        );
    }
    assert!(store.deliveries(Some("cand-r"), None).await.unwrap().is_empty(), "the old deliveries are gone");

    // Verify, with the seal made before the cut, stays green.
    let (code, report) = verify_cli(&app.database_url(), &["--seal", &seal.display().to_string()]);
    assert_eq!(code, Some(0), "a legitimate retention never breaks verify: {report}");
    assert!(report["broken_chains"].as_array().unwrap().is_empty(), "{report}");

    // The run's history replays against today's workflow code (and is kept,
    // with VBRIDGE_WRITE_HISTORY=1, as tests/histories/audit_retention_ran.json).
    let listed = app.temporal_cli(&["workflow", "list", "--query", "WorkflowType='AuditRetention'", "-o", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = runs[0]["execution"]["workflowId"].as_str().or(runs[0]["execution"]["workflow_id"].as_str());
    let id = id.unwrap_or_else(|| panic!("no AuditRetention run listed: {listed}")).to_owned();
    let json = crate::replay::history_json(&app, &id, None).await;
    crate::replay::check_and_save(&json, "audit_retention_ran.json").await;
}

#[tokio::test]
async fn verify_and_the_seal_name_a_retention_that_cut_below_the_floor() {
    // Records made now, sealed, then cut by a retention that ignored the
    // floor (the store API takes any cut-off; the CLI and the schedule never
    // pass one below the floor).
    let (s, url) = two_chains("below-floor").await;
    s.append_decisions(vec![vbridge_proto::DecisionRecord {
        record_id: "dec-young".into(),
        recorded_at: vbridge::now_rfc3339(),
        kind: RecordKind::Applied.into(),
        candidate_id: "c1".into(),
        application_id: "a".into(),
        ..Default::default()
    }])
    .await
    .unwrap();
    let seal = seal_beside(&url);
    let seqs: Vec<i64> = s.unforwarded(100).await.unwrap().iter().map(|f| f.seq).collect();
    s.mark_forwarded(seqs).await.unwrap();
    assert_eq!(verify_cli(&url, &["--seal", &seal.display().to_string()]).0, Some(0));

    let greedy = vbridge_core::chain::floor::Cut {
        cutoff: (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339(),
        retention_days: 1,
    };
    s.retain(&greedy).await.unwrap();
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    let problems: Vec<String> = report["broken_chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{} {}", b["stream"], b["problem"]))
        .collect();
    assert!(problems.iter().any(|p| p.contains("c1:a") && p.contains("younger than the floor")), "{problems:?}");

    let (code, report) = verify_cli(&url, &["--seal", &seal.display().to_string()]);
    assert_eq!(code, Some(1), "{report}");
    let sealed: Vec<&str> = report["broken_chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["record"].as_str().unwrap_or("").starts_with("sealed head"))
        .filter_map(|b| b["problem"].as_str())
        .collect();
    assert!(sealed.iter().any(|p| p.contains("younger than the floor")), "the seal names the young cut: {report}");
}

/// Run statements in one transaction as `url`'s role (simple protocol, so
/// `SET LOCAL` holds for the statements after it). The database's error.
async fn as_role(url: &str, script: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.map_err(|e| e.to_string())?;
    sqlx::raw_sql(script).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn on_postgres_a_role_granted_all_on_every_table_cannot_lift_the_append_only_guards() {
    let owner_url = postgres_url().await;
    let owner = vbridge::config::open_store(&owner_url).await.unwrap();
    for i in 0..3 {
        owner
            .append_decisions(vec![vbridge_proto::DecisionRecord {
                record_id: format!("dec-guard-{i}"),
                recorded_at: days_ago(3),
                kind: RecordKind::Applied.into(),
                candidate_id: "c".into(),
                application_id: "a".into(),
                ..Default::default()
            }])
            .await
            .unwrap();
    }
    owner.commit(crate::audit::old_refused_delivery()).await.unwrap();
    let role = format!("vbridge_all_{}", std::process::id());
    let _ = raw_sql(&owner_url, &format!("DROP OWNED BY {role}")).await;
    let _ = raw_sql(&owner_url, &format!("DROP ROLE IF EXISTS {role}")).await;
    raw_sql(&owner_url, &format!("CREATE ROLE {role} LOGIN")).await.unwrap();
    raw_sql(&owner_url, &format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")).await.unwrap();
    raw_sql(&owner_url, &format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")).await.unwrap();
    let url = owner_url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(url, owner_url);

    // The flag retention sets is a session setting anyone can set: not enough.
    for attack in [
        "BEGIN; SET LOCAL vbridge.retention = 'on'; DELETE FROM decisions; COMMIT;",
        "BEGIN; SET LOCAL vbridge.retention = 'on'; UPDATE deliveries SET reject_code = 'x'; COMMIT;",
        "BEGIN; SET LOCAL vbridge.retention = 'on'; UPDATE decisions SET reason = 'rewritten'; COMMIT;",
        "BEGIN; SET LOCAL vbridge.retention = 'on'; \
         INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at) VALUES ('c:a', 9, 'x', 8, 'x'); \
         COMMIT;",
        "SET vbridge.retention = 'on'; DELETE FROM deliveries;",
    ] {
        let e = as_role(&url, attack).await.expect_err(attack);
        assert!(e.contains("append-only"), "{attack}: {e}");
    }
    assert_eq!(counts(owner.as_ref()).await, (1, 3), "nothing was removed");
    let (code, report) = verify_cli(&owner_url, &[]);
    assert_eq!(code, Some(0), "{report}");

    // Retention itself still lifts them, through its function.
    let cut = owner.retain(&crate::audit::one_day_cut()).await.unwrap();
    assert_eq!(cut.records_removed, 4, "{cut:?}");
    assert_eq!(verify_cli(&owner_url, &[]).0, Some(0));
    drop(owner);
    let _ = raw_sql(&owner_url, &format!("DROP OWNED BY {role}")).await;
    let _ = raw_sql(&owner_url, &format!("DROP ROLE IF EXISTS {role}")).await;
}
