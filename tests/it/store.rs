//! The event store suite, against a real SQLite file and a real Postgres.

use crate::harness::{postgres_url, raw_sql};
use std::sync::Arc;
use vbridge::store::{Committed, DeliveryRecord, EventStore, Intent};

#[derive(Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

/// Each test runs once per backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Kind::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Kind::Postgres).await
            }
        }
    )*};
}

on_both!(
    concurrent_first_deliveries_of_one_key_commit_once,
    outbox_is_in_commit_order_and_marks_stick,
    the_database_refuses_update_and_delete,
    a_decision_appended_twice_is_stored_once_and_chains_verify,
    two_stores_on_one_database_keep_keys_unique_and_chains_whole,
    a_burst_of_new_candidates_commits_in_chain_order_sealed_under_their_keys,
    retention_cuts_old_records_and_the_chains_still_verify,
    a_refused_op_fails_alone_and_its_group_commits,
    the_review_queue_follows_the_log_in_due_order_and_never_goes_back,
    the_controls_projections_follow_the_log,
);

async fn store(kind: Kind, name: &str) -> (Arc<dyn EventStore>, String) {
    let url = match kind {
        Kind::Sqlite => {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("store-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join("events.db").display())
        }
        Kind::Postgres => postgres_url().await,
    };
    (vbridge::config::open_store(&url).await.unwrap(), url)
}

fn rec(key: &str, event_id: &str) -> DeliveryRecord {
    DeliveryRecord {
        received_at: vbridge::now_rfc3339(),
        event_id: Some(event_id.into()),
        event_type: Some("verification.started".into()),
        candidate_id: Some("c".into()),
        application_id: Some("a".into()),
        idempotency_key: Some(key.into()),
        signature_valid: true,
        trace_id: "t".into(),
        body_sha256: "00".into(),
        payload: Some("{}".into()),
        signal: Some("{}".into()),
        intent: Intent::Fresh,
        ..Default::default()
    }
}

async fn concurrent_first_deliveries_of_one_key_commit_once(kind: Kind) {
    let (s, _) = store(kind, "race").await;
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.commit(rec("same-key", "evt-1")).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    let mut dup = 0;
    for h in handles {
        match h.await.unwrap() {
            Committed::Accepted { .. } => accepted += 1,
            Committed::Duplicate { .. } => dup += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((accepted, dup), (1, 49));
    let conflict = s.commit(rec("same-key", "evt-2")).await.unwrap();
    assert!(matches!(conflict, Committed::Conflict { .. }), "{conflict:?}");
    let rows = s.deliveries(Some("c"), None).await.unwrap();
    assert_eq!(rows.len(), 51);
    assert_eq!(rows.iter().filter(|r| r.payload.is_some()).count(), 50, "the conflict row keeps no payload");
}

async fn outbox_is_in_commit_order_and_marks_stick(kind: Kind) {
    let (s, _) = store(kind, "outbox").await;
    for i in 0..20 {
        s.commit(rec(&format!("k{i}"), &format!("e{i}"))).await.unwrap();
    }
    let items = s.unforwarded(100).await.unwrap();
    let seqs: Vec<i64> = items.iter().map(|i| i.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted);
    assert_eq!(seqs.len(), 20);
    s.mark_forwarded(seqs[..5].to_vec()).await.unwrap();
    // Marking twice is harmless (a re-forward after a crash).
    s.mark_forwarded(seqs[..5].to_vec()).await.unwrap();
    assert_eq!(s.unforwarded(100).await.unwrap().len(), 15);
    assert_eq!(s.unforwarded(100).await.unwrap()[0].seq, seqs[5], "the outbox keeps commit order");
    assert!(s.oldest_unforwarded().await.unwrap().is_some());
    s.mark_forwarded(seqs[5..].to_vec()).await.unwrap();
    assert!(s.unforwarded(100).await.unwrap().is_empty());
    assert_eq!(s.oldest_unforwarded().await.unwrap(), None);
}

async fn the_database_refuses_update_and_delete(kind: Kind) {
    let (s, url) = store(kind, "appendonly").await;
    s.commit(rec("k", "e")).await.unwrap();
    s.append_decisions(vec![vbridge_proto::DecisionRecord {
        record_id: "d".into(),
        candidate_id: "c".into(),
        application_id: "a".into(),
        ..Default::default()
    }])
    .await
    .unwrap();
    for sql in [
        "UPDATE deliveries SET processing_result = 'rejected'",
        "DELETE FROM deliveries",
        "UPDATE decisions SET reason = 'x'",
        "DELETE FROM decisions",
    ] {
        let e = raw_sql(&url, sql).await.expect_err(sql);
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    if matches!(kind, Kind::Postgres) {
        let e = raw_sql(&url, "TRUNCATE deliveries CASCADE").await.expect_err("truncate");
        assert!(e.contains("append-only"), "{e}");
    }
}

async fn a_decision_appended_twice_is_stored_once_and_chains_verify(kind: Kind) {
    let (s, _) = store(kind, "decisions").await;
    s.commit(rec("k1", "e1")).await.unwrap();
    let d = vbridge_proto::DecisionRecord {
        record_id: "dec-1".into(),
        kind: "applied".into(),
        candidate_id: "c".into(),
        application_id: "a".into(),
        event_id: "e1".into(),
        ..Default::default()
    };
    s.append_decisions(vec![d.clone()]).await.unwrap();
    s.append_decisions(vec![d.clone(), d]).await.unwrap();
    let stored = s.decisions(Some("c"), None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].chain_pos, 2, "the delivery is position 1 of the same stream");
    let report = s.verify_chains().await.unwrap();
    assert_eq!((report.records, report.broken), (2, None));
}

/// Two processes' stores (two writers) on one database, racing on the same
/// keys and the same streams.
async fn two_stores_on_one_database_keep_keys_unique_and_chains_whole(kind: Kind) {
    let (a, url) = store(kind, "twostores").await;
    let b = vbridge::config::open_store(&url).await.unwrap();
    let mut handles = vec![];
    for i in 0..60 {
        for s in [a.clone(), b.clone(), a.clone()] {
            handles.push(tokio::spawn(
                async move { s.commit(rec(&format!("k{}", i % 20), &format!("e{}", i % 20))).await },
            ));
        }
    }
    let mut accepted = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            Committed::Accepted { .. } => accepted += 1,
            Committed::Duplicate { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 20, "each key accepted exactly once across both writers");
    let report = a.verify_chains().await.unwrap();
    assert_eq!((report.records, report.broken), (180, None), "one unbroken chain, no forks");
}

/// Many first deliveries of new candidates at once: the writer's groups
/// hold many, and write them in one statement per table. Each is accepted
/// and owed; each candidate's key is made once and opens its bodies; and in
/// every chain seq order is chain order (the relay forwards in seq order).
async fn a_burst_of_new_candidates_commits_in_chain_order_sealed_under_their_keys(kind: Kind) {
    let (s, _) = store(kind, "bulk").await;
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut r = rec(&format!("bulk-k{i}"), &format!("bulk-e{i}"));
                r.candidate_id = Some(format!("bulk-c{}", i % 20));
                r.payload = Some(format!("{{\"n\":{i}}}"));
                s.commit(r).await
            })
        })
        .collect();
    for h in handles {
        let c = h.await.unwrap().unwrap();
        assert!(matches!(c, Committed::Accepted { .. }), "{c:?}");
    }
    let rows = s.deliveries(None, None).await.unwrap();
    assert_eq!(rows.len(), 200);
    let mut positions: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for r in &rows {
        positions.entry(r.stream.clone().unwrap()).or_default().push(r.chain_pos.unwrap());
    }
    assert_eq!(positions.len(), 20);
    for (stream, pos) in positions {
        assert_eq!(pos, (1..=10).collect::<Vec<i64>>(), "{stream}: seq order is chain order");
    }
    for c in 0..20 {
        let cand = format!("bulk-c{c}");
        let key = s.existing_field_key(&cand).await.unwrap();
        assert!(key.is_some(), "{cand} has its key");
        for r in rows.iter().filter(|r| r.content.candidate_id.as_deref() == Some(cand.as_str())) {
            let stored = r.content.payload.as_deref().unwrap();
            assert!(vbridge_core::seal::is_sealed(stored), "{stored}");
            let n = r.content.event_id.as_deref().unwrap().trim_start_matches("bulk-e");
            assert_eq!(vbridge_core::seal::reveal(key.as_ref(), &cand, stored), format!("{{\"n\":{n}}}"));
        }
    }
    let owed = s.unforwarded(1000).await.unwrap();
    assert_eq!(owed.len(), 200, "every accepted delivery is owed to the relay");
    let report = s.verify_chains().await.unwrap();
    assert_eq!((report.records, report.broken), (200, None));
    // Each test is a process of its own (nextest): the counters are this test's.
    assert!(vbridge::metrics::STORE_BULK_GROUPS.get() > 0, "some group wrote its deliveries in bulk");
    assert_eq!(vbridge::metrics::STORE_BULK_FALLBACKS.get(), 0, "no key raced: nothing ran again one by one");
}

async fn retention_cuts_old_records_and_the_chains_still_verify(kind: Kind) {
    let (s, url) = store(kind, "retention").await;
    for i in 0..3 {
        let mut r = rec(&format!("old{i}"), &format!("eold{i}"));
        r.received_at = format!("2020-01-0{}T00:00:00.000Z", i + 1);
        s.commit(r).await.unwrap();
    }
    s.append_decisions(vec![vbridge_proto::DecisionRecord {
        record_id: "dec-old".into(),
        recorded_at: "2020-02-01T00:00:00.000Z".into(),
        kind: "applied".into(),
        candidate_id: "c".into(),
        application_id: "a".into(),
        ..Default::default()
    }])
    .await
    .unwrap();
    for i in 0..2 {
        s.commit(rec(&format!("new{i}"), &format!("enew{i}"))).await.unwrap();
    }
    let outbox: Vec<i64> = s.unforwarded(10).await.unwrap().iter().map(|f| f.seq).collect();
    s.mark_forwarded(vec![outbox[0]]).await.unwrap();
    assert_eq!(s.verify_chains().await.unwrap().records, 6);

    // Only the first old delivery was forwarded: the cut stops before the
    // second, which is still owed to Temporal.
    let r = s.retain(&old_cut()).await.unwrap();
    assert_eq!((r.streams_cut, r.records_removed, r.held_by_outbox), (1, 1, 1));
    assert_eq!(s.unforwarded(10).await.unwrap().len(), 4, "nothing owed to Temporal was removed");
    assert_eq!(s.verify_chains().await.unwrap().broken, None, "the cut chain verifies from its checkpoint");

    // Once forwarded, the rest of the old prefix goes. On Postgres, while
    // another session writes the same tables (and so holds their ROW
    // EXCLUSIVE locks): retention takes no table lock, so it does not wait.
    s.mark_forwarded(outbox[1..3].to_vec()).await.unwrap();
    let writer = match kind {
        Kind::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE deliveries, decisions, forwards IN ROW EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Some(c)
        }
        Kind::Sqlite => None,
    };
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.retain(&old_cut()))
        .await
        .expect("retention waited for a table lock")
        .unwrap();
    drop(writer);
    assert_eq!((r.streams_cut, r.records_removed, r.held_by_outbox), (1, 3, 0));
    let report = s.verify_chains().await.unwrap();
    assert_eq!(report.broken, None, "the cut chain verifies from its checkpoint");
    assert_eq!(report.records, 4, "two new deliveries and two retention records");
    assert_eq!(s.deliveries(Some("c"), None).await.unwrap().len(), 2);
    let decisions = s.decisions(Some("c"), None).await.unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions.iter().all(|d| d.record.kind == "retention"));
    assert!(decisions[1].record.reason.contains("removed 3 records"), "{}", decisions[1].record.reason);
    // The guards are back: nothing else may delete, or write a checkpoint.
    let e = raw_sql(&url, "DELETE FROM deliveries").await.expect_err("guards restored");
    assert!(e.contains("append-only"), "{e}");
    let e = raw_sql(&url, "DELETE FROM chain_checkpoints").await.expect_err("checkpoints guarded");
    assert!(e.contains("retention") || e.contains("append-only"), "{e}");
    // A second run has nothing old left to cut.
    let again = s.retain(&old_cut()).await.unwrap();
    assert_eq!(again.records_removed, 0);
    assert_eq!(s.verify_chains().await.unwrap().broken, None);
}

/// A delivery the database refuses (here: a constraint trigger; on Postgres
/// also a NUL byte, which TEXT cannot hold) fails alone: every other delivery
/// committed in the same groups is accepted.
async fn a_refused_op_fails_alone_and_its_group_commits(kind: Kind) {
    let (s, url) = store(kind, "poison").await;
    let trigger = match kind {
        Kind::Sqlite => "CREATE TRIGGER poison BEFORE INSERT ON deliveries WHEN NEW.event_id LIKE 'poison%' \
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            .to_owned(),
        Kind::Postgres => {
            raw_sql(
                &url,
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.event_id LIKE 'poison%' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$",
            )
            .await
            .unwrap();
            "CREATE TRIGGER poison BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION poison()".to_owned()
        }
    };
    raw_sql(&url, &trigger).await.unwrap();
    let mut handles = vec![];
    for i in 0..80 {
        let s = s.clone();
        let kind_is_pg = matches!(kind, Kind::Postgres);
        handles.push(tokio::spawn(async move {
            let mut r = rec(&format!("k{i}"), &format!("e{i}"));
            let bad = match i % 8 {
                0 => {
                    r.event_id = Some(format!("poison-{i}"));
                    true
                }
                1 if kind_is_pg => {
                    r.event_type = Some("verification.\0started".into());
                    true
                }
                _ => false,
            };
            (bad, s.commit(r).await)
        }));
    }
    let (mut good, mut refused) = (0, 0);
    for h in handles {
        match h.await.unwrap() {
            (false, Ok(Committed::Accepted { .. })) => good += 1,
            (true, Err(vbridge::store::StoreError::Refused(_))) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let bad = if matches!(kind, Kind::Postgres) { 20 } else { 10 };
    assert_eq!((good, refused), (80 - bad, bad));
    assert_eq!(s.unforwarded(100).await.unwrap().len(), 80 - bad);
    assert_eq!(s.verify_chains().await.unwrap().broken, None);
}

async fn the_review_queue_follows_the_log_in_due_order_and_never_goes_back(kind: Kind) {
    use vbridge::review::queue::{Cursor, Filter};
    use vbridge_proto::{DecisionRecord, ReviewItem};
    let (store, _) = store(kind, "reviewq").await;
    let routed = |c: &str, due: &str, at: &str, codes: &[&str], escalations: u32| {
        let item = ReviewItem {
            queue: "manual-review".into(),
            reason_codes: codes.iter().map(|c| c.to_string()).collect(),
            due_at: due.into(),
            escalations,
            flags: if codes.is_empty() { vec!["unlisted_reason_code".into()] } else { vec![] },
            ..Default::default()
        };
        DecisionRecord {
            record_id: format!("r-{c}-{at}"),
            recorded_at: at.into(),
            kind: if escalations > 0 { "escalated" } else { "review_routed" }.into(),
            candidate_id: c.into(),
            application_id: "a".into(),
            state_before: "needs_review".into(),
            state_after: "needs_review".into(),
            detail: serde_json::to_string(&item).unwrap(),
            ..Default::default()
        }
    };
    let t = |h: u32| format!("2026-01-01T{h:02}:00:00.000Z");
    store
        .append_decisions(vec![
            routed("c1", &t(12), &t(0), &["doc-anomaly"], 0),
            routed("c2", &t(10), &t(1), &[], 0),
            routed("c3", &t(11), &t(2), &["liveness-low"], 0),
        ])
        .await
        .unwrap();
    let now = t(10); // c2 is due now: overdue
    let all = store.review_queue(&Filter::default(), None, 10, &now).await.unwrap();
    let order: Vec<&str> = all.iter().map(|r| r.candidate_id.as_str()).collect();
    assert_eq!(order, vec!["c2", "c3", "c1"], "due order");
    let counts = store.review_counts(&now).await.unwrap();
    assert_eq!(counts, (3, 1));
    let overdue = Filter { overdue: Some(true), ..Default::default() };
    assert_eq!(store.review_queue(&overdue, None, 10, &now).await.unwrap().len(), 1);
    let by_code = Filter { reason_code: Some("liveness-low".into()), ..Default::default() };
    let found = store.review_queue(&by_code, None, 10, &now).await.unwrap();
    assert_eq!(found.iter().map(|r| r.candidate_id.as_str()).collect::<Vec<_>>(), vec!["c3"]);
    let wild = Filter { reason_code: Some("%".into()), ..Default::default() };
    assert!(store.review_queue(&wild, None, 10, &now).await.unwrap().is_empty(), "LIKE wildcards are literal");
    let after = Cursor { due_at: t(10), candidate_id: "c2".into(), application_id: "a".into() };
    let page = store.review_queue(&Filter::default(), Some(&after), 1, &now).await.unwrap();
    assert_eq!(page.iter().map(|r| r.candidate_id.as_str()).collect::<Vec<_>>(), vec!["c3"]);

    // Escalated, then decided; an older record arriving late changes nothing.
    let decided = DecisionRecord {
        record_id: "r-c1-decided".into(),
        recorded_at: t(5),
        kind: "review_decided".into(),
        candidate_id: "c1".into(),
        application_id: "a".into(),
        state_before: "needs_review".into(),
        state_after: "verified".into(),
        ..Default::default()
    };
    store.append_decisions(vec![routed("c1", &t(13), &t(4), &["doc-anomaly"], 1), decided]).await.unwrap();
    store.append_decisions(vec![routed("c1", &t(20), &t(3), &["doc-anomaly"], 1)]).await.unwrap();
    let open: Vec<String> = store
        .review_queue(&Filter::default(), None, 10, &now)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.candidate_id)
        .collect();
    assert_eq!(open, vec!["c2", "c3"], "the decided item left, and the late record did not bring it back");
}

async fn the_controls_projections_follow_the_log(kind: Kind) {
    use vbridge_proto::DecisionRecord;
    let (store, _) = store(kind, "controlsproj").await;
    let rec = |id: &str, kind: &str, at: &str| DecisionRecord {
        record_id: id.into(),
        recorded_at: at.into(),
        kind: kind.into(),
        candidate_id: "c".into(),
        application_id: "a".into(),
        ..Default::default()
    };
    let target = "application/a/verification-check/k".to_owned();
    store
        .append_decisions(vec![
            DecisionRecord {
                state_before: "pending".into(),
                state_after: "verified".into(),
                ..rec("r1", "applied", "2026-01-01T00:00:01.000Z")
            },
            DecisionRecord {
                state_after: "verified".into(),
                write_targets: target.clone(),
                idempotency_key: "k1".into(),
                reason: "ATS rejected the write with 422".into(),
                ..rec("r2", "ats_failed", "2026-01-01T00:00:02.000Z")
            },
        ])
        .await
        .unwrap();
    // The gate: verified, its write owed.
    let row = store.gate_row("a").await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.ats_sync.as_str()), ("verified", "failed"));
    // The dead letter is open.
    let letters = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].idempotency_key.as_str(), letters[0].state.as_str()), ("k1", "verified"));
    assert_eq!(store.dead_letters(Some("nope"), 10).await.unwrap().len(), 0);

    // A write goes through: synced, the letter is moot, the fields are expected.
    let fields = r#"{"verification_state":"verified","verification_banner":""}"#;
    store
        .append_decisions(vec![DecisionRecord {
            state_after: "verified".into(),
            write_targets: target.clone(),
            detail: fields.into(),
            ..rec("r3", "ats_write", "2026-01-01T00:00:03.000Z")
        }])
        .await
        .unwrap();
    assert_eq!(store.gate_row("a").await.unwrap().unwrap().ats_sync, "synced");
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
    // A provider's reversal's item holds the gate; an admin's move closes it.
    assert!(!store.gate_row("a").await.unwrap().unwrap().reversal_held);
    let item = vbridge_proto::ReviewItem { flags: vec!["provider_reversal".into()], ..Default::default() };
    store
        .append_decisions(vec![DecisionRecord {
            detail: serde_json::to_string(&item).unwrap(),
            ..rec("r3r", "review_routed", "2026-01-01T00:00:03.100Z")
        }])
        .await
        .unwrap();
    assert!(store.gate_row("a").await.unwrap().unwrap().reversal_held);
    store
        .append_decisions(vec![DecisionRecord {
            state_before: "verified".into(),
            state_after: "verified".into(),
            ..rec("r3o", "override", "2026-01-01T00:00:03.200Z")
        }])
        .await
        .unwrap();
    assert!(!store.gate_row("a").await.unwrap().unwrap().reversal_held);
    let more = r#"{"verification_banner":"off"}"#;
    store
        .append_decisions(vec![DecisionRecord {
            write_targets: target,
            detail: more.into(),
            ..rec("r4", "ats_write", "2026-01-01T00:00:04.000Z")
        }])
        .await
        .unwrap();
    let expected = store.expected_page(("", ""), 10).await.unwrap();
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0].fields["verification_state"], "verified", "fields merge in write order");
    assert_eq!(expected[0].fields["verification_banner"], "off");
    assert_eq!(store.expected_count().await.unwrap(), 1);
    assert!(store.expected_page(("a", "k"), 10).await.unwrap().is_empty(), "the page after the last");

    // A control's change and a reconciliation report land in their tables.
    let policy = vbridge_core::Policy::parse(vbridge_core::DEFAULT_POLICY_YAML).unwrap();
    assert!(vbridge::controls::gating_enabled(store.as_ref(), &policy).await.unwrap(), "the policy's default");
    vbridge::controls::set_gating(store.as_ref(), &policy, false, "ops-1", "INC-1", "t").await.unwrap();
    assert!(!vbridge::controls::gating_enabled(store.as_ref(), &policy).await.unwrap());
    let c = store.control("verification_gating_enabled").await.unwrap().unwrap();
    assert_eq!((c.actor.as_str(), c.reason.as_str()), ("ops-1", "INC-1"));
    let source = vbridge::controls::reconcile::StoreSource(store.clone());
    let report =
        vbridge_proto::ReconcileProgress { checked: 3, drifted: 1, healed: 1, done: true, ..Default::default() };
    vbridge_activities::ReconcileSource::record_report(&source, "run-1", &report).await.unwrap();
    let saved: vbridge_proto::ReconcileProgress =
        serde_json::from_str(&store.reconcile_run("run-1").await.unwrap().unwrap()).unwrap();
    assert_eq!((saved.checked, saved.healed), (3, 1));
    assert!(store.verify_chains().await.unwrap().broken.is_none(), "every chain, controls and reconciliation too");

    // An accepted delivery's job (canary gating; intake parses it) is kept
    // per application.
    let mut d = self::rec("job-key-1", "evt-job-1");
    d.job = vbridge_core::canary::Job {
        requisition: Some("R1".into()),
        role: Some("eng".into()),
        region: Some("emea".into()),
    };
    assert!(matches!(store.commit(d).await.unwrap(), Committed::Accepted { .. }));
    let job = store.job("a").await.unwrap();
    assert_eq!(
        (job.requisition.as_deref(), job.role.as_deref(), job.region.as_deref()),
        (Some("R1"), Some("eng"), Some("emea"))
    );
}

/// A retention cut-off in the past (the store takes it as given: the floor
/// is `audit::retention`'s, tested in `retention.rs`).
fn old_cut() -> vbridge_core::chain::floor::Cut {
    vbridge_core::chain::floor::Cut { cutoff: "2024-01-01T00:00:00Z".into(), retention_days: 1 }
}
