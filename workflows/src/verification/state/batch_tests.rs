//! A batch of events (the relay's `event_batch` signal), from tables: each
//! event applied as if it came alone; with the batch patch, a backlog's own
//! writes of a check coalesce into one.

use super::tests::{WF, decided, queue, started, today, verification};
use super::*;

#[test]
fn a_batch_applies_each_event_as_alone_and_coalesces_its_own_writes_of_a_check() {
    struct Row {
        what: &'static str,
        patches: Patches,
        /// Events applied one by one before the batch (their writes owed).
        before: Vec<EventSignal>,
        batch: Vec<EventSignal>,
        /// The relay marked it a backlog.
        backlog: bool,
        /// The batch's timeline entries: (kind, how the reason starts).
        entries: &'static [(&'static str, &'static str)],
        state: &'static str,
        /// The queue after: (check, state, writes it replaced).
        queue: &'static [(&'static str, &'static str, u32)],
    }
    let (t0, t1, t5) = ("2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-01T10:05:00Z");
    let unbatched = Patches { batch: false, ..today() };
    let rows = [
        Row {
            what: "a batch's writes of a check coalesce into one, the first too",
            patches: today(),
            before: vec![],
            batch: vec![started("e1", t0), decided("e2", "verified", t1)],
            backlog: true,
            entries: &[("applied", ""), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "verified", 1)],
        },
        Row {
            what: "a review routed inside a batch still coalesces into the batch's one write",
            patches: today(),
            before: vec![],
            batch: vec![started("e1", t0), decided("e2", "needs_review", t1), decided("e3", "verified", t5)],
            backlog: true,
            entries: &[("applied", ""), ("applied", ""), ("review_routed", ""), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "verified", 2)],
        },
        Row {
            what: "a batch that is no backlog queues its writes as that many signals: the first owed write is kept",
            patches: today(),
            before: vec![],
            batch: vec![started("e1", t0), decided("e2", "verified", t1)],
            backlog: false,
            entries: &[("applied", ""), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "pending", 0), ("chk-1", "verified", 0)],
        },
        Row {
            what: "without the batch patch, a backlog is that many signals: the first owed write is kept",
            patches: unbatched,
            before: vec![],
            batch: vec![started("e1", t0), decided("e2", "verified", t1)],
            backlog: true,
            entries: &[("applied", ""), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "pending", 0), ("chk-1", "verified", 0)],
        },
        Row {
            what: "a write owed before the batch keeps its place; the batch's coalesce behind it",
            patches: today(),
            before: vec![started("e1", t0)],
            batch: vec![decided("e2", "needs_review", t1), decided("e3", "verified", t5)],
            backlog: true,
            entries: &[("applied", ""), ("review_routed", ""), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "pending", 0), ("chk-1", "verified", 1)],
        },
        Row {
            what: "a duplicate inside a batch is recorded as one and never applied twice",
            patches: today(),
            before: vec![],
            batch: vec![started("e1", t0), started("e1", t0), decided("e2", "verified", t1)],
            backlog: true,
            entries: &[("applied", ""), ("skipped", "duplicate event id"), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "verified", 1)],
        },
        Row {
            what: "an event of a batch already applied alone is a duplicate (a re-sent batch)",
            patches: today(),
            before: vec![started("e1", t0), decided("e2", "verified", t1)],
            batch: vec![started("e1", t0), decided("e2", "verified", t1)],
            backlog: true,
            entries: &[("skipped", "duplicate event id"), ("skipped", "duplicate event id")],
            state: "verified",
            queue: &[("chk-1", "pending", 0), ("chk-1", "verified", 0)],
        },
        Row {
            what: "a stale event inside a batch is skipped, the later one applied",
            patches: today(),
            before: vec![],
            batch: vec![started("e1", t1), started("e0", t0), decided("e2", "verified", t5)],
            backlog: true,
            entries: &[("applied", ""), ("skipped", "stale"), ("applied", "")],
            state: "verified",
            queue: &[("chk-1", "verified", 1)],
        },
    ];
    for row in rows {
        let mut v = verification(row.patches);
        let now = "2026-01-01T12:00:00.000Z";
        for ev in row.before {
            v.apply(now, WF, None, ev);
        }
        let from = v.timeline.len();
        v.apply_batch(now, WF, None, row.batch, row.backlog);
        let got: Vec<(String, String)> =
            v.timeline.iter().skip(from).map(|t| (t.kind.clone(), t.reason.clone())).collect();
        // Each entry's kind, and its reason starting with the one wanted.
        let matches = got.len() == row.entries.len()
            && got.iter().zip(row.entries).all(|((k, r), (wk, wr))| k == wk && r.starts_with(wr));
        assert!(matches, "{}: {got:?}, wanted {:?}", row.what, row.entries);
        assert_eq!(v.view.state, row.state, "{}", row.what);
        let want: Vec<_> = row.queue.iter().map(|(c, s, n)| (c.to_string(), s.to_string(), *n)).collect();
        assert_eq!(queue(&v), want, "{}", row.what);
        assert_eq!(v.batch_floor, None, "{}: the floor is lifted after the batch", row.what);
        assert_eq!(v.view.pending_writes as usize, v.pending.len(), "{}", row.what);
    }
}

/// With the local-write patch, the writes a backlog queued or replaced are
/// marked to run as local activities; a live batch's, a write queued before
/// the backlog and left alone, and a run without the patch keep activities.
#[test]
fn a_backlogs_own_writes_and_only_those_run_as_local_activities() {
    let (t0, t1, t5) = ("2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-01T10:05:00Z");
    let without = Patches { local_write: false, ..today() };
    // (what, patches, events before, the batch, backlog, the queue's (state, local))
    type Row = (&'static str, Patches, Vec<EventSignal>, Vec<EventSignal>, bool, &'static [(&'static str, bool)]);
    let rows: Vec<Row> = vec![
        (
            "a backlog's one coalesced write runs locally",
            today(),
            vec![],
            vec![started("e1", t0), decided("e2", "verified", t1)],
            true,
            &[("verified", true)],
        ),
        (
            "a lone event of a backlog (a batch of one) runs locally",
            today(),
            vec![],
            vec![decided("e2", "verified", t1)],
            true,
            &[("verified", true)],
        ),
        (
            "a live batch's writes stay activities",
            today(),
            vec![],
            vec![started("e1", t0), decided("e2", "verified", t1)],
            false,
            &[("pending", false), ("verified", false)],
        ),
        (
            "without the patch, a backlog's write stays an activity",
            without,
            vec![],
            vec![started("e1", t0), decided("e2", "verified", t1)],
            true,
            &[("verified", false)],
        ),
        (
            "the first owed write, queued live, keeps its kind; the backlog's behind it runs locally",
            today(),
            vec![started("e1", t0)],
            vec![decided("e2", "verified", t1)],
            true,
            &[("pending", false), ("verified", true)],
        ),
        (
            "a write queued live that the backlog replaced carries the backlog's state, and runs locally",
            today(),
            vec![started("e1", t0), decided("e2", "needs_review", t1)],
            vec![decided("e3", "verified", t5)],
            true,
            &[("pending", false), ("verified", true)],
        ),
    ];
    for (what, patches, before, batch, backlog, want) in rows {
        let mut v = verification(patches);
        let now = "2026-01-01T12:00:00.000Z";
        for ev in before {
            v.apply(now, WF, None, ev);
        }
        v.apply_batch(now, WF, None, batch, backlog);
        let got: Vec<(String, bool)> = v
            .pending
            .iter()
            .map(|w| (w.request.as_ref().unwrap().fields["verification_state"].clone(), w.local))
            .collect();
        let want: Vec<(String, bool)> = want.iter().map(|(s, l)| (s.to_string(), *l)).collect();
        assert_eq!(got, want, "{what}");
    }
}
