//! The pure state of a verification, from tables: no Temporal, no context.

use super::*;
use vbridge_proto::{AtsWriteRequest, StateView};

pub(super) const WF: &str = "candidate-verification/cand-1/app-1";

/// Every patch (the behaviour of a run started today).
pub(super) fn today() -> Patches {
    Patches::ask(|_| true)
}

/// No patch (a run recorded before the first).
pub(super) fn oldest() -> Patches {
    Patches::default()
}

pub(super) fn input() -> WorkflowInput {
    WorkflowInput {
        candidate_id: "cand-1".into(),
        application_id: "app-1".into(),
        policy_yaml: vbridge_core::DEFAULT_POLICY_YAML.into(),
        ..Default::default()
    }
}

pub(super) fn verification(patches: Patches) -> CandidateVerification {
    let mut v = CandidateVerification::from_input(input());
    v.patches = Some(patches);
    v
}

pub(super) fn event(id: &str, event_type: &str, decision: &str, at: &str) -> EventSignal {
    EventSignal {
        event_id: id.into(),
        event_type: event_type.into(),
        decision_state: decision.into(),
        occurred_at: at.into(),
        verification_check_id: "chk-1".into(),
        ..Default::default()
    }
}

pub(super) fn started(id: &str, at: &str) -> EventSignal {
    event(id, "verification.started", "", at)
}

pub(super) fn decided(id: &str, state: &str, at: &str) -> EventSignal {
    event(id, "verification.decision", state, at)
}

pub(super) fn apply(v: &mut CandidateVerification, ev: EventSignal) -> Vec<SearchAttributeUpdate> {
    v.apply("2026-01-01T12:00:00.000Z", WF, None, ev)
}

#[test]
fn an_event_is_applied_once_in_order_and_otherwise_recorded_as_skipped_or_refused() {
    struct Row {
        what: &'static str,
        patches: Patches,
        before: Vec<EventSignal>,
        event: EventSignal,
        kind: &'static str,
        state: &'static str,
        reason: &'static str,
        writes: usize,
        upserts: usize,
    }
    let t0 = "2026-01-01T10:00:00Z";
    let t1 = "2026-01-01T10:01:00Z";
    let t5 = "2026-01-01T10:05:00Z";
    let rows = [
        Row {
            what: "a first event moves the state and queues its write",
            patches: today(),
            before: vec![],
            event: started("e1", t0),
            kind: "applied",
            state: "pending",
            reason: "",
            writes: 1,
            upserts: 0,
        },
        Row {
            what: "before write-logs, an applied event upserts its attributes itself",
            patches: oldest(),
            before: vec![],
            event: started("e1", t0),
            kind: "applied",
            state: "pending",
            reason: "",
            writes: 1,
            upserts: 2,
        },
        Row {
            what: "an event id seen before is a duplicate",
            patches: today(),
            before: vec![started("e1", t0)],
            event: started("e1", t1),
            kind: "skipped",
            state: "pending",
            reason: "duplicate event id",
            writes: 0,
            upserts: 0,
        },
        Row {
            what: "an event that occurred before the last applied one is stale",
            patches: today(),
            before: vec![started("e1", t0), decided("e2", "verified", t5)],
            event: decided("e3", "failed", t1),
            kind: "skipped",
            state: "verified",
            reason: "stale",
            writes: 0,
            upserts: 0,
        },
        Row {
            what: "an unreadable time is refused",
            patches: today(),
            before: vec![],
            event: started("e1", "yesterday"),
            kind: "refused",
            state: "unverified",
            reason: "RFC 3339",
            writes: 0,
            upserts: 0,
        },
        Row {
            what: "with review (before reversals), a webhook that would move the state back is refused",
            patches: Patches { reversal: false, ..today() },
            before: vec![started("e1", t0), decided("e2", "verified", t1)],
            event: decided("e3", "needs_review", t5),
            kind: "refused",
            state: "verified",
            reason: "a webhook cannot downgrade",
            writes: 0,
            upserts: 0,
        },
        Row {
            what: "before review, the same webhook is skipped",
            patches: Patches { review: false, controls: false, reversal: false, ..today() },
            before: vec![started("e1", t0), decided("e2", "verified", t1)],
            event: decided("e3", "needs_review", t5),
            kind: "skipped",
            state: "verified",
            reason: "would move back",
            writes: 0,
            upserts: 0,
        },
    ];
    for row in rows {
        let mut v = verification(row.patches);
        for ev in row.before {
            apply(&mut v, ev);
        }
        let (entries, writes) = (v.timeline.len(), v.pending.len());
        let upserts = apply(&mut v, row.event.clone());
        let last = v.timeline.back().expect("every event leaves an entry");
        assert_eq!(v.timeline.len(), entries + 1, "{}: one entry", row.what);
        assert_eq!(last.kind, row.kind, "{}: {}", row.what, last.reason);
        assert!(last.reason.contains(row.reason), "{}: {:?}", row.what, last.reason);
        assert_eq!((v.view.state.as_str(), v.machine.state.as_str()), (row.state, row.state), "{}", row.what);
        assert_eq!(v.pending.len() - writes, row.writes, "{}: writes queued", row.what);
        assert_eq!(upserts.len(), row.upserts, "{}: attributes upserted by the handler", row.what);
        assert!(v.seen.contains(&row.event.event_id), "{}: the id is remembered", row.what);
    }
}

#[test]
fn a_policy_that_does_not_parse_refuses_every_event() {
    let mut v = CandidateVerification::from_input(WorkflowInput { policy_yaml: "not: [a policy".into(), ..input() });
    v.patches = Some(today());
    apply(&mut v, started("e1", "2026-01-01T10:00:00Z"));
    let last = v.timeline.back().unwrap();
    assert_eq!(last.kind, "refused");
    assert!(last.reason.starts_with("policy pinned in this workflow is invalid"), "{}", last.reason);
    assert_eq!((v.view.state.as_str(), v.pending.len()), ("unverified", 0));
}

fn write(check: &str, state: &str) -> AtsWriteRequest {
    AtsWriteRequest {
        verification_check_id: check.into(),
        fields: [("verification_state".to_owned(), state.to_owned())].into(),
        ..Default::default()
    }
}

/// The queue as (check, state, writes it replaced).
pub(super) fn queue(v: &CandidateVerification) -> Vec<(String, String, u32)> {
    v.pending
        .iter()
        .map(|w| {
            let r = w.request.as_ref().unwrap();
            (r.verification_check_id.clone(), r.fields["verification_state"].clone(), r.superseded)
        })
        .collect()
}

#[test]
fn a_queued_write_of_a_check_is_replaced_by_a_later_one_but_never_the_first_owed() {
    // (what, patches, paused, a write in flight, writes queued, the queue after)
    type Row = (
        &'static str,
        Patches,
        bool,
        bool,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str, u32)],
    );
    let rows: &[Row] = &[
        (
            "the first owed write is kept",
            today(),
            false,
            false,
            &[("A", "p"), ("A", "v")],
            &[("A", "p", 0), ("A", "v", 0)],
        ),
        (
            "a later write replaces the one queued behind the first",
            today(),
            false,
            false,
            &[("A", "p"), ("A", "v"), ("A", "f")],
            &[("A", "p", 0), ("A", "f", 1)],
        ),
        (
            "before write-logs nothing is replaced",
            oldest(),
            false,
            false,
            &[("A", "p"), ("A", "v"), ("A", "f")],
            &[("A", "p", 0), ("A", "v", 0), ("A", "f", 0)],
        ),
        (
            "writes of other checks keep their place",
            today(),
            false,
            false,
            &[("A", "p"), ("B", "x"), ("A", "v"), ("B", "y")],
            &[("A", "p", 0), ("B", "y", 1), ("A", "v", 0)],
        ),
        (
            "paused with nothing in flight, the first is replaced too",
            today(),
            true,
            false,
            &[("A", "p"), ("A", "v")],
            &[("A", "v", 1)],
        ),
        (
            "paused with a write in flight, the first is kept",
            today(),
            true,
            true,
            &[("A", "p"), ("A", "v")],
            &[("A", "p", 0), ("A", "v", 0)],
        ),
    ];
    for (what, patches, paused, in_flight, writes, want) in rows {
        let mut v = verification(*patches);
        v.view.paused = *paused;
        v.ats_in_flight = *in_flight;
        for (check, state) in *writes {
            v.queue_write(write(check, state));
        }
        let want: Vec<_> = want.iter().map(|(c, s, n)| (c.to_string(), s.to_string(), *n)).collect();
        assert_eq!(queue(&v), want, "{what}");
    }
}

#[test]
fn a_replacing_write_keeps_the_replaced_ones_other_fields_and_carries_the_banner() {
    let mut v = verification(today());
    v.view.banner = "verification paused by ops".into();
    v.queue_write(write("A", "pending"));
    let mut first = write("A", "verified");
    first.fields.insert("verification_decided_at".into(), "t1".into());
    v.queue_write(first);
    v.queue_write(write("A", "failed"));
    let merged = v.pending[1].request.as_ref().unwrap();
    assert_eq!(merged.fields["verification_state"], "failed", "the latest state wins");
    assert_eq!(merged.fields["verification_decided_at"], "t1", "a field only the replaced write had stays");
    assert_eq!(merged.fields[crate::verification::BANNER_FIELD], "verification paused by ops");
    let mut before_controls = verification(Patches { controls: false, reversal: false, ..today() });
    before_controls.view.banner = "ignored".into();
    before_controls.queue_write(write("A", "pending"));
    assert!(
        !before_controls.pending[0].request.as_ref().unwrap().fields.contains_key(crate::verification::BANNER_FIELD)
    );
}

fn entries(v: &mut CandidateVerification, n: usize) {
    for i in 0..n {
        v.timeline.push_back(TimelineEntry { kind: "applied".into(), event_id: format!("e{i}"), ..Default::default() });
    }
}

#[test]
fn claims_hand_each_unlogged_entry_to_one_activity_at_a_time_in_bounded_batches() {
    // (what, patches, entries, entries already logged, claims in a row: their sizes)
    type Row = (&'static str, Patches, usize, &'static [usize], &'static [usize]);
    let rows: &[Row] = &[
        ("a claim takes at most CLAIM_MAX records", today(), CLAIM_MAX + 50, &[], &[CLAIM_MAX, 50, 0]),
        ("before write-logs a claim takes everything", oldest(), CLAIM_MAX + 50, &[], &[CLAIM_MAX + 50, 0]),
        ("entries a write logged are not claimed", today(), 5, &[1, 3], &[3, 0]),
        ("nothing to claim", today(), 0, &[], &[0]),
    ];
    for (what, patches, n, logged, sizes) in rows {
        let mut v = verification(*patches);
        entries(&mut v, *n);
        for i in *logged {
            v.timeline[*i].logged = true;
        }
        let mut all = BTreeSet::new();
        for size in *sizes {
            let (indices, records) = v.claim(WF);
            assert_eq!((indices.len(), records.len()), (*size, *size), "{what}");
            assert!(indices.iter().all(|i| all.insert(*i)), "{what}: an entry claimed twice");
        }
        assert!(!v.has_unclaimed(), "{what}");
    }
}

#[test]
fn a_released_claim_is_logged_or_free_again_with_the_same_record_ids() {
    let mut v = verification(today());
    entries(&mut v, 3);
    let (indices, records) = v.claim(WF);
    v.release(&indices, false);
    assert!(v.claimed.is_empty() && v.has_unclaimed(), "a failed append frees its entries");
    let (again, retried) = v.claim(WF);
    assert_eq!(again, indices);
    let ids = |r: &[DecisionRecord]| r.iter().map(|r| r.record_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&retried), ids(&records), "a retried append names the same records");
    assert_eq!(records[2].record_id, decision_record_id(WF, 2));
    v.release(&again, true);
    assert_eq!((v.recorded, v.has_unclaimed(), v.claimed.len()), (3, false, 0), "a stored append is recorded");
    let mut reopened = verification(today());
    reopened.record_salt = "run-2".into();
    entries(&mut reopened, 3);
    let (_, salted) = reopened.claim(WF);
    assert_ne!(salted[0].record_id, records[0].record_id, "a reopened run never reuses an old record id");
}

#[test]
fn the_timeline_keeps_what_is_not_yet_logged_and_is_bounded_once_it_is() {
    // (entries, of which logged first, kept, timeline base, recorded)
    let rows = [
        (150, 0, 150, 0, 0),
        (150, 30, 120, 30, 30),
        (150, 120, TIMELINE_KEEP, 50, 120),
        (150, 150, TIMELINE_KEEP, 50, 150),
        (80, 80, 80, 0, 80),
    ];
    for (n, logged, kept, base, recorded) in rows {
        let mut v = verification(today());
        entries(&mut v, n);
        for t in v.timeline.iter_mut().take(logged) {
            t.logged = true;
        }
        v.advance_recorded();
        assert_eq!(
            (v.timeline.len(), v.timeline_base, v.recorded),
            (kept, base, recorded as u32),
            "{n} entries, {logged} logged"
        );
        assert_eq!(v.timeline.front().unwrap().event_id, format!("e{base}"), "the oldest go first");
    }
}

#[test]
fn event_ids_remembered_are_bounded_oldest_first() {
    for (ids, kept) in [(10, 10), (SEEN_KEEP, SEEN_KEEP), (SEEN_KEEP + 7, SEEN_KEEP)] {
        let mut v = verification(today());
        for i in 0..ids {
            v.seen.insert(format!("e{i}"));
            v.seen_order.push_back(format!("e{i}"));
        }
        v.trim();
        assert_eq!((v.seen.len(), v.seen_order.len()), (kept, kept), "{ids} ids");
        let oldest_kept = ids - kept;
        assert!(v.seen.contains(&format!("e{oldest_kept}")) && v.seen.contains(&format!("e{}", ids - 1)));
        assert_eq!(v.seen.contains("e0"), oldest_kept == 0, "{ids} ids");
    }
}

#[test]
fn a_run_continued_as_new_starts_where_the_last_one_stopped() {
    let mut v = verification(today());
    apply(&mut v, started("e1", "2026-01-01T10:00:00Z"));
    apply(&mut v, decided("e2", "verified", "2026-01-01T10:05:00Z"));
    v.record_salt = "run-1".into();
    v.failed.push_back(write("A", "failed"));
    v.view.banner = "held".into();
    let (claimed, _) = v.claim(WF);
    v.release(&claimed[..1], true);
    let next = v.next_input();
    assert!(!next.reopen, "a continued run has its state: it does not seed");
    let mut after = CandidateVerification::from_input(next);
    after.patches = Some(today());
    assert_eq!(after.view.continued_as_new, v.view.continued_as_new + 1);
    after.view.continued_as_new = v.view.continued_as_new;
    assert_eq!(after.view, v.view, "the view carries over");
    assert_eq!(after.machine.state, v.machine.state);
    assert_eq!(after.machine.last_occurred_at, v.machine.last_occurred_at, "stale events stay stale");
    assert_eq!((after.seen.clone(), after.seen_order.clone()), (v.seen.clone(), v.seen_order.clone()));
    assert_eq!(after.pending, v.pending, "the writes owed are owed still");
    assert_eq!(after.failed, v.failed, "dead letters can still be re-driven");
    assert_eq!(
        (after.timeline.clone(), after.timeline_base, after.recorded),
        (v.timeline.clone(), v.timeline_base, v.recorded)
    );
    assert_eq!(after.record_salt, "run-1");
    assert!(after.claimed.is_empty() && after.has_unclaimed(), "what was in flight is claimed again");
    assert!(!after.seeding);
}

#[test]
fn a_run_starts_from_its_input_with_defaults_filled_in() {
    // (what, input, seeding, state, ATS sync, continue-as-new after, banner)
    let carried = Snapshot {
        view: Some(StateView {
            state: "verified".into(),
            ats_sync: "pending".into(),
            continued_as_new: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let rows = [
        ("a new verification", input(), false, "unverified", SYNCED, default_tuning().continue_as_new_after, ""),
        (
            "a reopened one seeds itself",
            WorkflowInput { reopen: true, ..input() },
            true,
            "unverified",
            SYNCED,
            2_000,
            "",
        ),
        (
            "a continued one carries its state, not a new banner",
            WorkflowInput { reopen: true, carried: Some(carried), banner: "new".into(), ..input() },
            false,
            "verified",
            "pending",
            2_000,
            "",
        ),
        (
            "zero knobs take the defaults; a first run takes the banner",
            WorkflowInput {
                tuning: Some(vbridge_proto::Tuning { continue_as_new_after: 0, audit_hold_ms: 0, ..default_tuning() }),
                banner: "held".into(),
                ..input()
            },
            false,
            "unverified",
            SYNCED,
            2_000,
            "held",
        ),
    ];
    for (what, input, seeding, state, sync, after, banner) in rows {
        let v = CandidateVerification::from_input(input);
        assert_eq!(v.seeding, seeding, "{what}");
        assert_eq!(
            (v.view.state.as_str(), v.view.ats_sync.as_str(), v.view.banner.as_str()),
            (state, sync, banner),
            "{what}"
        );
        assert_eq!(v.tuning.continue_as_new_after, after, "{what}");
        assert_eq!(v.tuning.audit_hold_ms, default_tuning().audit_hold_ms, "{what}");
        assert_eq!((v.view.candidate_id.as_str(), v.view.policy_version.is_empty()), ("cand-1", false), "{what}");
    }
}

#[test]
fn a_reopened_run_takes_the_seed_of_its_audit_log_but_keeps_its_own_identity() {
    // (seeded state, the state the run starts in)
    for (seeded, state) in [("verified", VerificationState::Verified), ("", VerificationState::Unverified)] {
        let mut v = CandidateVerification::from_input(WorkflowInput { reopen: true, ..input() });
        v.decide_patches(|_| true);
        assert!(v.seeding, "a run with rest-close reads its seed");
        let seed = Snapshot {
            view: Some(StateView {
                state: seeded.into(),
                candidate_id: "someone-else".into(),
                last_occurred_at: "2026-01-01T10:05:00Z".into(),
                ..Default::default()
            }),
            seen_event_ids: vec!["e1".into(), "e2".into()],
            ..Default::default()
        };
        v.seed(seed, "run-2".into());
        assert!(!v.seeding);
        assert_eq!((v.machine.state, v.view.state.as_str()), (state, state.as_str()), "seeded {seeded:?}");
        assert_eq!(v.view.candidate_id, "cand-1");
        assert!(v.machine.last_occurred_at.is_some(), "an older re-delivery is stale");
        assert_eq!((v.seen.len(), v.seen_order.len(), v.record_salt.as_str()), (2, 2, "run-2"));
        apply(&mut v, started("e2", "2026-01-01T11:00:00Z"));
        assert_eq!(v.timeline.back().unwrap().reason, "duplicate event id", "a seen id is not applied again");
    }
    let mut before_rest = CandidateVerification::from_input(WorkflowInput { reopen: true, ..input() });
    before_rest.decide_patches(|p| p == crate::verification::WRITE_LOGS_PATCH);
    assert!(!before_rest.seeding, "a run before rest-close never seeds");
}

#[test]
fn a_retake_of_a_started_and_invited_check_mails_a_fresh_link_once_per_notice_and_boundedly() {
    use super::super::{MAIL_RETAKE, RETAKES_MAILED};
    let t0 = "2026-01-01T10:00:00Z";
    let retake = |id: &str| event(id, "verification.retake_requested", "", t0);
    let with_start = |patches: Patches, invited: bool| {
        let mut v = verification(patches);
        v.view.starts.push(vbridge_proto::HiringStart {
            key: "st-1".into(),
            session_id: "chk-1".into(),
            provider: "persona".into(),
            invited,
            ..Default::default()
        });
        v
    };
    let mut v = with_start(today(), true);
    apply(&mut v, started("e1", t0));
    apply(&mut v, retake("r1"));
    apply(&mut v, retake("r1"));
    assert_eq!(v.view.outbox.len(), 1, "one message for one notice, its duplicate none");
    let m = &v.view.outbox[0];
    assert_eq!((m.kind.as_str(), m.start_key.as_str(), m.key.as_str()), (MAIL_RETAKE, "st-1", "st-1:retake-1"));
    for i in 2..=(RETAKES_MAILED + 2) {
        apply(&mut v, retake(&format!("r{i}")));
    }
    let keys: Vec<&str> = v.view.outbox.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["st-1:retake-1", "st-1:retake-2", "st-1:retake-3"], "at most {RETAKES_MAILED}");
    assert!(v.timeline.iter().any(|e| e.reason.contains("fresh links were mailed already")));

    // Not before the invite, not for a check the bridge did not start, not
    // in a run before the patch.
    let mut not_invited = with_start(today(), false);
    apply(&mut not_invited, retake("r1"));
    let mut other = with_start(today(), true);
    let mut ev = retake("r1");
    ev.verification_check_id = "chk-other".into();
    apply(&mut other, ev);
    let mut before = with_start(Patches { retake: false, ..today() }, true);
    apply(&mut before, retake("r1"));
    for (what, v) in [("not invited", not_invited), ("another check", other), ("before the patch", before)] {
        assert!(v.view.outbox.is_empty(), "{what}");
    }
}
