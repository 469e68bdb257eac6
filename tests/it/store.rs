//! The event store against a real SQLite file.

use std::sync::Arc;
use vbridge::store::{Committed, DeliveryRecord, EventStore, Intent};

async fn store(name: &str) -> (Arc<dyn EventStore>, String) {
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    (vbridge::store::open(&url).await.unwrap(), url)
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

#[tokio::test]
async fn concurrent_first_deliveries_of_one_key_commit_once() {
    let (s, _) = store("race").await;
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

#[tokio::test]
async fn outbox_is_in_commit_order_and_marks_stick() {
    let (s, _) = store("outbox").await;
    for i in 0..20 {
        s.commit(rec(&format!("k{i}"), &format!("e{i}"))).await.unwrap();
    }
    let items = s.unforwarded(0, 100).await.unwrap();
    let seqs: Vec<i64> = items.iter().map(|i| i.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted);
    assert_eq!(seqs.len(), 20);
    s.mark_forwarded(seqs[..5].to_vec()).await.unwrap();
    // Marking twice is harmless (a re-forward after a crash).
    s.mark_forwarded(seqs[..5].to_vec()).await.unwrap();
    assert_eq!(s.unforwarded(0, 100).await.unwrap().len(), 15);
    assert_eq!(s.unforwarded(seqs[10], 100).await.unwrap().len(), 9);
}

#[tokio::test]
async fn the_database_refuses_update_and_delete() {
    let (s, url) = store("appendonly").await;
    s.commit(rec("k", "e")).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let upd = sqlx::query("UPDATE deliveries SET processing_result = 'rejected'").execute(&pool).await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM deliveries").execute(&pool).await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn a_decision_appended_twice_is_stored_once_and_chains_verify() {
    let (s, _) = store("decisions").await;
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
