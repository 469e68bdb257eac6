//! Interviews (with [`HIRING_PATCH`](super::HIRING_PATCH), docs/contract.md
//! §8): the ATS booked, moved or cancelled an interview for the
//! application. The intake read the gate when it arrived; booked while the
//! gate was closed, it is a bypass: recorded (`gate_bypass`), flagged in the
//! ATS (`verification_gate_bypass`) and sent to the recruiter. Its start sets
//! the verification's deadline (the tier's `hoursBeforeInterview` before
//! it) and the candidate's reminders (`remindersHoursBeforeDeadline`), which
//! the reminder lane sends on durable timers, then, at the deadline, the
//! recruiter's notice that the verification is still open; a cancelled interview cancels
//! them, a decided verification needs none.
//!
//! Pure: [`plan`] picks the next reminder, tested from a table.

use super::CandidateVerification;
use super::hiring::mail_key;
use chrono::{DateTime, Duration as Span, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use vbridge_core::policy::Policy;
use vbridge_core::record::RecordKind;
use vbridge_proto::{EventSignal, MailRequest};

/// The ATS field a bypass flags.
pub const BYPASS_FIELD: &str = "verification_gate_bypass";
/// The mail kinds of this module.
pub const MAIL_REMINDER: &str = vbridge_activity_defs::mail_kind::REMINDER;
pub const MAIL_BYPASS: &str = vbridge_activity_defs::mail_kind::BYPASS;
pub const MAIL_PENDING: &str = vbridge_activity_defs::mail_kind::PENDING;
/// The most messages the outbox holds (a flood of moved interviews must not
/// grow the state).
pub const OUTBOX_KEEP: usize = 16;

/// What the reminder lane wakes up for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    Remind(Reminder),
    /// The interview's time.
    Reached(DateTime<Utc>),
}

/// The next reminder: which (its hours before the deadline), when, and the
/// earlier ones passed over because a later one is due already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub hours: u32,
    pub due: DateTime<Utc>,
    pub passed_over: Vec<u32>,
}

/// The next reminder of a deadline, given those sent (or passed over) and
/// the time: among the unsent, the latest already due (the earlier due ones
/// are passed over, so a late booking sends one reminder, not a burst), else
/// the next one to come; none when all are sent.
pub fn plan(deadline: DateTime<Utc>, hours: &[u32], reminded: &[u32], now: DateTime<Utc>) -> Option<Reminder> {
    let mut unsent: Vec<(u32, DateTime<Utc>)> =
        hours.iter().filter(|h| !reminded.contains(h)).map(|h| (*h, deadline - Span::hours(*h as i64))).collect();
    unsent.sort_by_key(|(_, due)| *due);
    let due_now: Vec<&(u32, DateTime<Utc>)> = unsent.iter().filter(|(_, due)| *due <= now).collect();
    if let Some((h, due)) = due_now.last() {
        let passed_over = due_now[..due_now.len() - 1].iter().map(|(h, _)| *h).collect();
        return Some(Reminder { hours: *h, due: *due, passed_over });
    }
    unsent.first().map(|(h, due)| Reminder { hours: *h, due: *due, passed_over: vec![] })
}

impl CandidateVerification {
    /// An `interview.scheduled` event: record it, keep the interview, and
    /// for a bypass flag the ATS and queue the recruiter's notice.
    pub(super) fn interview(&mut self, policy: &Policy, now: &str, workflow_id: &str, ev: &EventSignal) {
        let seen = !self.seen.insert(ev.event_id.clone());
        if !seen {
            self.seen_order.push_back(ev.event_id.clone());
        }
        let mut entry = self.entry(now, RecordKind::Skipped, ev);
        entry.state_after = self.view.state.clone();
        let Some(i) = ev.interview.clone().filter(|_| !seen) else {
            entry.reason = "duplicate event".into();
            self.timeline.push_back(entry);
            return;
        };
        let current = self.view.interview.as_ref().is_some_and(|c| c.id == i.id);
        if i.cancelled {
            entry.kind = RecordKind::InterviewCancelled.into();
            entry.reason = if current {
                self.view.interview = None;
                format!("interview {} cancelled; its reminders are cancelled", i.id)
            } else {
                format!("interview {} cancelled (not the one the reminders follow)", i.id)
            };
            self.timeline.push_back(entry);
            return;
        }
        let moved = self.view.interview.as_ref().map(|c| (&c.id, &c.starts_at)) != Some((&i.id, &i.starts_at));
        if moved {
            // A new time plans the reminders again.
            self.view.starts.iter_mut().for_each(|s| s.reminded.clear());
        }
        self.view.interview = Some(i.clone());
        let at = if i.starts_at.is_empty() { "no time yet".to_owned() } else { i.starts_at.clone() };
        if i.gate_allowed {
            entry.kind = RecordKind::InterviewScheduled.into();
            entry.reason = format!("interview {} at {at}; the gate was open ({})", i.id, i.gate_reason);
            self.timeline.push_back(entry);
            return;
        }
        entry.kind = RecordKind::GateBypass.into();
        entry.reason = format!(
            "interview {} at {at} booked while the gate was closed ({}); the ATS is flagged and the recruiter told",
            i.id, i.gate_reason
        );
        entry.detail =
            serde_json::json!({"interview": i.id, "starts_at": i.starts_at, "gate": i.gate_reason}).to_string();
        self.timeline.push_back(entry);
        if let Some(check) = self.known_check_id() {
            let fields = BTreeMap::from([(BYPASS_FIELD.to_owned(), "true".to_owned())]);
            let req = self.write_request(policy, workflow_id, (&ev.event_id, &ev.trace_id), &check, fields);
            self.queue_write(req);
            self.view.pending_writes = self.pending.len() as u32;
            self.view.ats_sync = policy.pending_sync_status().to_owned();
        }
        let h = Sha256::digest(format!("{workflow_id}\nbypass\n{}", i.id).as_bytes());
        self.outbox_push(MailRequest {
            key: format!("bp-{}", &hex::encode(h)[..32]),
            kind: MAIL_BYPASS.into(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            trace_id: ev.trace_id.clone(),
            interview_at: i.starts_at,
            state: self.view.state.clone(),
            ..Default::default()
        });
    }

    pub(super) fn outbox_push(&mut self, m: MailRequest) {
        if self.view.outbox.len() < OUTBOX_KEEP && !self.view.outbox.iter().any(|o| o.key == m.key) {
            self.view.outbox.push(m);
        }
    }

    /// The start the reminders are for (the newest open one the candidate
    /// was invited to), its deadline and reminder hours; none when there is
    /// no interview with a time, or nothing to remind of.
    fn reminder_target(&self) -> Option<(usize, DateTime<Utc>, Vec<u32>)> {
        let policy = self.policy.as_ref().ok()?;
        // A decided verification needs no reminder.
        policy.successors(self.machine.state).next()?;
        let interview = self.view.interview.as_ref()?;
        let at = DateTime::parse_from_rfc3339(&interview.starts_at).ok()?.with_timezone(&Utc);
        let hiring = policy.hiring()?;
        let i = self.view.starts.iter().rposition(|s| s.failed.is_empty() && !s.expired && s.invited)?;
        let tier = hiring.tiers().iter().find(|t| t.name == self.view.starts[i].tier)?;
        let deadline = hiring.deadline(tier)?;
        let due = at - Span::hours(deadline.hours_before_interview as i64);
        Some((i, due, deadline.reminders_hours_before_deadline.clone()))
    }

    /// What the reminder lane waits on: it changes when the plan may (the
    /// interview, the reminders sent, a decision, a new start); none when
    /// there is nothing to wait for.
    pub(super) fn reminder_key(&self) -> Option<String> {
        let interview = self.view.interview.as_ref().filter(|i| !i.starts_at.is_empty())?;
        let reminders = self.reminder_target().map(|(i, deadline, _)| {
            let s = &self.view.starts[i];
            format!("{}|{deadline}|{:?}", s.key, s.reminded)
        });
        if reminders.is_none() && interview.reached {
            return None;
        }
        Some(format!("{}|{}|{}|{reminders:?}", interview.id, interview.starts_at, interview.reached))
    }

    /// The lane's next wake-up at `now`: a reminder before the interview,
    /// else the interview's own time (to record whether it was verified by then).
    pub(super) fn next_wake(&self, now: DateTime<Utc>) -> Option<Wake> {
        let interview = self.view.interview.as_ref()?;
        let at = DateTime::parse_from_rfc3339(&interview.starts_at).ok()?.with_timezone(&Utc);
        match self.next_reminder(now) {
            Some(r) if r.due <= at || interview.reached => Some(Wake::Remind(r)),
            _ if !interview.reached => Some(Wake::Reached(at)),
            _ => None,
        }
    }

    /// The interview's time came: record whether the verification was
    /// verified by then.
    pub(super) fn interview_reached(&mut self, now: &str) {
        let Some(i) = self.view.interview.as_mut() else { return };
        i.reached = true;
        let id = i.id.clone();
        let state = self.view.state.clone();
        let verified = state == vbridge_core::domain::VerificationState::Verified.as_str();
        let mut e = self.hiring_entry(now, RecordKind::InterviewReached, "", format!("interview:{id}"));
        e.reason = if verified {
            format!("interview {id}: its time came with the verification verified")
        } else {
            format!("interview {id}: its time came with the verification {state}, not verified")
        };
        self.timeline.push_back(e);
    }

    /// The next reminder at `now`, if any: the candidate's, then, once they
    /// are all sent, the recruiter's notice at the deadline itself (`hours`
    /// 0) that the verification is still open.
    pub(super) fn next_reminder(&self, now: DateTime<Utc>) -> Option<Reminder> {
        let (i, deadline, hours) = self.reminder_target()?;
        let reminded = &self.view.starts[i].reminded;
        plan(deadline, &hours, reminded, now)
            .or_else(|| (!reminded.contains(&0)).then(|| Reminder { hours: 0, due: deadline, passed_over: vec![] }))
    }

    /// Send `r` (queued for the hiring lane), and pass over the earlier ones.
    pub(super) fn remind(&mut self, r: &Reminder) {
        let Some((i, _, _)) = self.reminder_target() else { return };
        let interview_at = self.view.interview.as_ref().map(|v| v.starts_at.clone()).unwrap_or_default();
        let s = &mut self.view.starts[i];
        s.reminded.extend(r.passed_over.iter().copied());
        s.reminded.push(r.hours);
        let (key, tier, trace_id) = (s.key.clone(), s.tier.clone(), s.trace_id.clone());
        let kind = if r.hours == 0 { MAIL_PENDING } else { MAIL_REMINDER };
        self.outbox_push(MailRequest {
            key: mail_key(&key, &format!("{kind}-{}h-{interview_at}", r.hours)),
            kind: kind.into(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            start_key: key,
            trace_id,
            tier,
            interview_at,
            state: self.view.state.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_reminder_is_the_latest_due_or_else_the_next_to_come() {
        let deadline: DateTime<Utc> = "2026-03-12T13:00:00Z".parse().unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // (reminders, sent, now, the next: hours, due, passed over)
        type Row<'a> = (&'a [u32], &'a [u32], &'a str, Option<(u32, &'a str, &'a [u32])>);
        let table: &[Row] = &[
            (&[24, 4], &[], "2026-03-10T00:00:00Z", Some((24, "2026-03-11T13:00:00Z", &[]))),
            (&[24, 4], &[24], "2026-03-11T14:00:00Z", Some((4, "2026-03-12T09:00:00Z", &[]))),
            // Booked late: both due; the 4 h one goes, the 24 h one is passed over.
            (&[24, 4], &[], "2026-03-12T10:00:00Z", Some((4, "2026-03-12T09:00:00Z", &[24]))),
            (&[24, 4], &[24, 4], "2026-03-12T10:00:00Z", None),
            (&[], &[], "2026-03-12T10:00:00Z", None),
            (&[48, 24, 4], &[48], "2026-03-11T13:00:00Z", Some((24, "2026-03-11T13:00:00Z", &[]))),
        ];
        for (hours, sent, now, want) in table {
            let got = plan(deadline, hours, sent, t(now));
            let want = want.map(|(h, due, passed)| Reminder { hours: h, due: t(due), passed_over: passed.to_vec() });
            assert_eq!(got, want, "{hours:?} sent {sent:?} at {now}");
        }
    }
}
