//! The keyed chain (`VBRIDGE_AUDIT_KEY`): links made as HMACs under a key the
//! database does not hold, so a writer with full access to the database
//! cannot edit a record and recompute a consistent history. A store written
//! before the key verifies as it did; keys rotate by id.

use crate::audit::{two_chains, verify_cli};
use crate::harness::raw_sql;
use std::process::Command;
use vbridge_core::chain::{self, Keyring};
use vbridge_core::record::RecordKind;

const KEY_1: &str = "1f1e1d1c1b1a19181716151413121110f0e0d0c0b0a090807060504030201000";
const KEY_2: &str = "2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a";

fn verify_with_key(url: &str, key: &str) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["audit", "verify"])
        .env("VBRIDGE_DATABASE_URL", url)
        .env("VBRIDGE_POLICY", crate::audit::one_day_policy())
        .env("VBRIDGE_AUDIT_KEY", key)
        .env("VBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_default())
}

fn problems(report: &serde_json::Value) -> Vec<String> {
    report["broken_chains"].as_array().unwrap().iter().map(|b| format!("{} {}", b["stream"], b["problem"])).collect()
}

/// Three decisions in the chain `k:a`, linked by `store`.
async fn keyed_decisions(store: &dyn vbridge::store::EventStore, tag: &str) {
    for i in 0..3 {
        store
            .append_decisions(vec![vbridge_proto::DecisionRecord {
                record_id: format!("dec-{tag}-{i}"),
                recorded_at: vbridge::now_rfc3339(),
                kind: RecordKind::Applied.into(),
                candidate_id: "k".into(),
                application_id: "a".into(),
                reason: format!("reason {i}"),
                ..Default::default()
            }])
            .await
            .unwrap();
    }
}

/// A database writer rewrites `k:a` from position 2 on, its reason edited
/// and every later link recomputed as plain SHA-256, head included; with
/// `keep_key_id`, the rows keep their key id (a forged HMAC the writer cannot
/// make), else they claim to be plain links.
async fn rewrite_with_plain_hashes(store: &dyn vbridge::store::EventStore, url: &str, keep_key_id: bool) {
    let rows: Vec<_> = store.decisions(Some("k"), Some("a")).await.unwrap();
    let _ = raw_sql(url, "DROP TRIGGER decisions_no_update").await;
    let mut prev = rows[0].hash.clone();
    for (n, row) in rows.iter().enumerate().skip(1) {
        let mut record = row.record.clone();
        if n == 1 {
            record.reason = "rewritten by the database writer".into();
        }
        let hash = chain::link_hash(&row.stream, row.chain_pos, &prev, &record);
        let key_id = if keep_key_id { row.key_id.clone() } else { String::new() };
        raw_sql(
            url,
            &format!(
                "UPDATE decisions SET reason = '{}', prev_hash = '{prev}', hash = '{hash}', key_id = '{key_id}' \
                 WHERE seq = {}",
                record.reason, row.seq
            ),
        )
        .await
        .unwrap();
        prev = hash;
    }
    let last = rows.last().unwrap();
    raw_sql(url, &format!("UPDATE stream_heads SET hash = '{prev}' WHERE stream = '{}'", last.stream)).await.unwrap();
}

#[tokio::test]
async fn a_keyed_chain_catches_a_database_writer_who_recomputes_the_hashes_and_an_older_store_still_verifies() {
    // Written before any key: plain links, as every store so far.
    let (plain, url) = two_chains("keyed").await;
    drop(plain);
    let keys = Keyring::parse(KEY_1).unwrap();
    let store = vbridge::store::open(&url, keys.clone()).await.unwrap();
    keyed_decisions(store.as_ref(), "k1").await;
    let rows = store.decisions(Some("k"), Some("a")).await.unwrap();
    assert!(rows.iter().all(|r| r.key_id == keys.ids()[0]), "new links carry the key's id");
    assert!(
        rows.iter().all(|r| r.hash != chain::link_hash(&r.stream, r.chain_pos, &r.prev_hash, &r.record)),
        "a keyed link is no plain hash"
    );
    let (code, report) = verify_with_key(&url, KEY_1);
    assert_eq!(code, Some(0), "plain links before the key and keyed ones after both verify: {report}");

    // Without the key, the check says what it cannot vouch for.
    let (code, report) = verify_cli(&url, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("k:a") && p.contains("does not hold")), "{report}");

    // Rotation: a new key signs, the old one still verifies.
    drop(store);
    let rotated = format!("{KEY_2},{KEY_1}");
    let store = vbridge::store::open(&url, Keyring::parse(&rotated).unwrap()).await.unwrap();
    keyed_decisions(store.as_ref(), "k2").await;
    let ids: std::collections::BTreeSet<String> =
        store.decisions(Some("k"), Some("a")).await.unwrap().into_iter().map(|r| r.key_id).collect();
    assert_eq!(ids.len(), 2, "both keys' ids are in the chain: {ids:?}");
    assert_eq!(verify_with_key(&url, &rotated).0, Some(0));
    let (code, report) = verify_with_key(&url, KEY_2);
    assert_eq!(code, Some(1), "the retired key's links need it to verify: {report}");

    // The writer recomputes the links without the key: caught either way.
    rewrite_with_plain_hashes(store.as_ref(), &url, true).await;
    let (code, report) = verify_with_key(&url, &rotated);
    assert_eq!(code, Some(1), "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("k:a") && p.contains("edited")), "{report}");
    rewrite_with_plain_hashes(store.as_ref(), &url, false).await;
    let (code, report) = verify_with_key(&url, &rotated);
    assert_eq!(code, Some(1), "{report}");
    assert!(problems(&report).iter().any(|p| p.contains("k:a") && p.contains("without the key")), "{report}");
}

#[tokio::test]
async fn without_a_key_the_same_rewrite_passes_which_is_what_the_key_is_for() {
    // The control: a plain store, the same rewrite, and verify cannot tell
    // (only a seal kept outside the store would).
    let (store, url) = two_chains("plain-rewrite").await;
    keyed_decisions(store.as_ref(), "p").await;
    rewrite_with_plain_hashes(store.as_ref(), &url, false).await;
    let rows = store.decisions(Some("k"), Some("a")).await.unwrap();
    assert_eq!(rows[1].record.reason, "rewritten by the database writer");
    assert_eq!(verify_cli(&url, &[]).0, Some(0), "plain hashes can be recomputed by anyone");
}

#[tokio::test]
async fn config_show_names_the_audit_keys_by_id_never_by_value() {
    let out = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["config", "show"])
        .env("VBRIDGE_WEBHOOK_SECRETS", "s")
        .env("VBRIDGE_ATS_URL", "http://127.0.0.1:9")
        .env("VBRIDGE_AUDIT_KEY", format!("{KEY_2},{KEY_1}"))
        .env("VBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = Keyring::parse(&format!("{KEY_2},{KEY_1}")).unwrap();
    assert_eq!(shown["audit_keys"], serde_json::json!(ids.ids()), "{text}");
    assert!(!text.contains(&KEY_1[..16]) && !text.contains(&KEY_2[..16]), "{text}");

    let short = Command::new(env!("CARGO_BIN_EXE_vbridge"))
        .args(["config", "show"])
        .env("VBRIDGE_WEBHOOK_SECRETS", "s")
        .env("VBRIDGE_ATS_URL", "http://127.0.0.1:9")
        .env("VBRIDGE_AUDIT_KEY", "abcd")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("VBRIDGE_AUDIT_KEY"), "a short key is refused by name");
}
