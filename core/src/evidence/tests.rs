//! Packs built, signed and broken from tables: each way of breaking one is
//! named by its place.

use super::*;
use crate::chain::{GENESIS, Keyring, make_link};
use serde_json::json;

fn audit_keys() -> Keyring {
    Keyring::parse(&"a1".repeat(32)).unwrap()
}

fn key(n: u8) -> EvidenceKey {
    EvidenceKey::from_seed([n; 32])
}

/// A chain of `n` records of `stream` (alternating deliveries and
/// decisions; keyed when `keyed`), linked as the store links them.
fn chain(stream: &str, n: i64, keyed: bool) -> Chain {
    let keys = audit_keys();
    let audit = keyed.then(|| keys.signing().unwrap());
    let mut prev = GENESIS.to_owned();
    let mut records = vec![];
    for pos in 1..=n {
        let (table, record) = if pos % 2 == 1 {
            let signal = json!({"evidence_pack_url": format!("https://evidence.example/p/{pos}")}).to_string();
            (
                Table::Delivery,
                json!({"event_id": format!("evt-{pos}"), "processing_result": "accepted", "signal": signal}),
            )
        } else if pos == 4 {
            (
                Table::Decision,
                json!({"record_id": format!("dec-{pos}"), "kind": "ats_write",
                "idempotency_key": "ik-1", "write_targets": "PUT /applications/a/verification-checks/k",
                "reason": "HTTP 200", "recorded_at": "2026-12-03T10:00:00Z"}),
            )
        } else {
            (
                Table::Decision,
                json!({"record_id": format!("dec-{pos}"), "kind": "overridden",
                "state_before": "needs_review", "state_after": "verified", "override_actor": "ops@example.org",
                "override_reason_code": "manual_check_ok", "reason": "documents seen", "recorded_at": "2026-12-03T10:00:00Z"}),
            )
        };
        let (key_id, hash) = make_link(audit, stream, pos, &prev, &record);
        records.push(entry(table, stream, pos, &prev, &hash, &key_id, &record));
        prev = hash;
    }
    Chain { stream: stream.into(), starts_at: None, head: Head { chain_pos: n, hash: prev }, records }
}

fn pack(chains: Vec<Chain>) -> Pack {
    let mut p = Pack {
        format: FORMAT.into(),
        candidate_id: "cand-1".into(),
        exported_at: "2026-12-03T12:00:00Z".into(),
        exported_by: "auditor".into(),
        policy: PolicyRef { version: "1.0.0".into(), sha256: "ab".repeat(32) },
        summary: summarize(&chains, &Reveal { key: None, notes: true }),
        timeline: timeline(&chains, &Reveal { key: None, notes: true }),
        chains,
        field_key: String::new(),
        erasures: vec![],
        signature: Signature::default(),
    };
    key(7).sign(&mut p);
    p
}

fn bytes(p: &Pack) -> Vec<u8> {
    serde_json::to_vec_pretty(p).unwrap()
}

fn check(p: &Pack) -> Verified {
    verify(&bytes(p), Some(&key(7).public()), &Keyring::none())
}

#[test]
fn a_signed_pack_verifies_offline_and_its_summary_reads_the_records() {
    let p = pack(vec![chain("cand-1:app-1", 5, false), chain("cand-1:app-2", 4, true)]);
    let v = check(&p);
    assert!(v.ok(), "{:#?}", v.problems);
    assert!(v.trusted_key);
    assert_eq!((v.chains, v.records, v.keyed_links_by_digest), (2, 9, 4));
    let with_keys = verify(&bytes(&p), Some(&key(7).public()), &audit_keys());
    assert!(with_keys.ok() && with_keys.keyed_links_checked == 4, "{with_keys:#?}");
    let s = &p.summary;
    assert_eq!(s.ats_writes.len(), 2);
    assert_eq!((s.ats_writes[0].idempotency_key.as_str(), s.ats_writes[0].answer.as_str()), ("ik-1", "HTTP 200"));
    let o = &s.decisions[0];
    assert_eq!(
        (o.actor.as_str(), o.reason_code.as_str(), o.kind.as_str()),
        ("ops@example.org", "manual_check_ok", "overridden")
    );
    assert!(s.evidence_links.contains(&"https://evidence.example/p/1".to_owned()));
}

#[test]
fn each_way_of_breaking_a_pack_is_named_by_its_place() {
    type Break = fn(&mut Pack);
    let rows: &[(&str, Break, &str, &str)] = &[
        (
            "an edited record, re-signed by the bridge's key",
            |p| {
                let e = &mut p.chains[0].records[1];
                e.linked = e.linked.replace("documents seen", "documents not seen");
                p.summary = summarize(&p.chains, &p.reveal());
                p.timeline = timeline(&p.chains, &p.reveal());
                key(7).sign(p);
            },
            "cand-1:app-1 position 2 (decision dec-2)",
            "does not match its digest",
        ),
        (
            "an edited record, not re-signed",
            |p| {
                let e = &mut p.chains[0].records[2];
                e.linked = e.linked.replace("evt-3", "evt-x");
            },
            "cand-1:app-1 position 3 (delivery evt-x)",
            "does not match its digest",
        ),
        (
            "an edited record with its digest made again",
            |p| {
                let e = &mut p.chains[0].records[2];
                e.linked = e.linked.replace("accepted", "rejected");
                e.sha256 = hex::encode(Sha256::digest(e.linked.as_bytes()));
                p.summary = summarize(&p.chains, &p.reveal());
                p.timeline = timeline(&p.chains, &p.reveal());
                key(7).sign(p);
            },
            "cand-1:app-1 position 3 (delivery evt-3)",
            "does not match its link",
        ),
        (
            "a dropped record",
            |p| drop(p.chains[0].records.remove(1)),
            "cand-1:app-1 position 3",
            "position 2 is missing",
        ),
        ("two records reordered", |p| p.chains[0].records.swap(1, 2), "cand-1:app-1 position 3", "out of order"),
        (
            "the last record dropped",
            |p| drop(p.chains[0].records.pop()),
            "head of cand-1:app-1",
            "dropped from its end",
        ),
        (
            "a timeline that lies",
            |p| p.timeline[0].kind = "verified".into(),
            "the timeline",
            "does not match the records",
        ),
        (
            "a summary that lies",
            |p| p.summary.decisions[0].actor = "someone@else".into(),
            "the summary",
            "does not match the records",
        ),
        ("a changed export time", |p| p.exported_at = "2020-01-01T00:00:00Z".into(), "the signature", "changed after"),
        ("another bridge's key", |p| key(9).sign(p), "the signature", "not the trusted key"),
    ];
    for (what, break_it, place, problem) in rows {
        let mut p = pack(vec![chain("cand-1:app-1", 5, false)]);
        break_it(&mut p);
        let v = check(&p);
        assert!(
            v.problems.iter().any(|x| x.place.starts_with(place) && x.what.contains(problem)),
            "{what}: {:#?}",
            v.problems
        );
    }
}

#[test]
fn a_keyed_link_is_checked_by_the_audit_key_when_the_checker_holds_it() {
    let mut p = pack(vec![chain("cand-1:app-1", 3, true)]);
    // Edited with a digest made again and the pack re-signed: only the
    // audit key tells.
    let e = &mut p.chains[0].records[1];
    e.linked = e.linked.replace("documents seen", "documents forged");
    e.sha256 = hex::encode(Sha256::digest(e.linked.as_bytes()));
    p.summary = summarize(&p.chains, &p.reveal());
    p.timeline = timeline(&p.chains, &p.reveal());
    key(7).sign(&mut p);
    assert!(check(&p).ok(), "without the audit key, the digest is all a checker has");
    let v = verify(&bytes(&p), Some(&key(7).public()), &audit_keys());
    assert!(v.problems.iter().any(|x| x.what.contains("under audit key")), "{:#?}", v.problems);
}

#[test]
fn garbage_and_untrusted_files_are_refused_with_a_reason() {
    let v = verify(b"{\"format\": 1}", None, &Keyring::none());
    assert!(!v.ok() && v.problems[0].what.contains("not an evidence pack"));
    let p = pack(vec![chain("cand-2:app-1", 1, false)]);
    let v = verify(&bytes(&p), None, &Keyring::none());
    assert!(!v.trusted_key);
    assert!(v.problems.iter().any(|x| x.what.contains("not one of the candidate's chains")), "{:#?}", v.problems);
    assert!(EvidenceKey::parse("zz").is_err() && EvidenceKey::parse(&"00".repeat(31)).is_err());
    let k = EvidenceKey::parse(&"01".repeat(32)).unwrap();
    assert_eq!(PublicKey::parse(&k.public().document().to_string()).unwrap(), k.public());
}

#[test]
fn the_sample_pack_shipped_in_the_docs_verifies_with_its_published_key() {
    let pack = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/evidence/sample-pack.json"));
    let key = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/evidence/sample-key.json"));
    let v = verify(pack, Some(&PublicKey::parse(key).unwrap()), &Keyring::none());
    assert!(v.ok() && v.trusted_key && v.records > 5, "{v:#?}");
}

/// One override whose note is sealed under `field` (docs/privacy.md).
fn sealed_note_chain(field: &crate::seal::FieldKey) -> Chain {
    let note = crate::seal::seal(field, "cand-1", [3; 12], "called the candidate");
    let record = json!({"record_id": "dec-1", "kind": "override", "candidate_id": "cand-1",
        "override_actor": "admin", "override_reason_code": "doc-anomaly", "reason": "override",
        "detail": json!({"note": note}).to_string(), "recorded_at": "2026-12-03T10:00:00Z"});
    let (key_id, hash) = make_link(None, "cand-1:app-1", 1, GENESIS, &record);
    let records = vec![entry(Table::Decision, "cand-1:app-1", 1, GENESIS, &hash, &key_id, &record)];
    Chain { stream: "cand-1:app-1".into(), starts_at: None, head: Head { chain_pos: 1, hash }, records }
}

#[test]
fn a_sealed_note_shows_with_the_packs_field_key_and_erased_without_it_and_the_links_hold_either_way() {
    let field = crate::seal::FieldKey::from_bytes(&[9; 32]).unwrap();
    let chains = vec![sealed_note_chain(&field)];
    let signed = |field_key: String, format: &str| {
        let mut p = pack(chains.clone());
        p.format = format.into();
        p.field_key = field_key;
        p.summary = summarize(&p.chains, &p.reveal());
        p.timeline = timeline(&p.chains, &p.reveal());
        key(7).sign(&mut p);
        p
    };
    let keyed = signed(field.to_hex(), FORMAT);
    assert!(check(&keyed).ok(), "{:#?}", check(&keyed).problems);
    assert_eq!(keyed.summary.decisions[0].note, "called the candidate");
    assert_eq!(keyed.timeline[0].note, "called the candidate");
    let erased = signed(String::new(), FORMAT);
    assert!(check(&erased).ok(), "an erased candidate's pack still verifies");
    assert_eq!(erased.summary.decisions[0].note, crate::seal::ERASED);
    // A pack that shows the note without carrying the key that opens it lies.
    let mut lying = erased.clone();
    lying.summary.decisions[0].note = "called the candidate".into();
    key(7).sign(&mut lying);
    assert!(check(&lying).problems.iter().any(|p| p.place == "the summary"), "{:#?}", check(&lying));
    // Another key opens nothing: the note shows erased, not other text.
    let other = signed(crate::seal::FieldKey::from_bytes(&[8; 32]).unwrap().to_hex(), FORMAT);
    assert_eq!(other.summary.decisions[0].note, crate::seal::ERASED);
    // A key that is not a key is named.
    let bad = signed("zz".into(), FORMAT);
    assert!(check(&bad).problems.iter().any(|p| p.place == "the field key"));
    // Format /1 packs carried no notes, and still verify as they were made.
    let v1 = signed(field.to_hex(), FORMAT_V1);
    assert!(check(&v1).ok() && v1.summary.decisions[0].note.is_empty());
}
