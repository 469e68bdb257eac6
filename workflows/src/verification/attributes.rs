//! The search attributes a verification keeps (and the Temporal UI's
//! current details): their keys, and what changed since the last upsert.

use super::CandidateVerification;
use chrono::DateTime;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate, Timestamp};

pub const SA_VERIFICATION_STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("VerificationState");
pub const SA_CANDIDATE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("CandidateId");
pub const SA_APPLICATION_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ApplicationId");
pub const SA_ATS_SYNC: SearchAttributeKey<String> = SearchAttributeKey::keyword("AtsSyncStatus");
pub const SA_REVIEW_DUE_AT: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("ReviewDueAt");
pub const SA_PAUSED: SearchAttributeKey<bool> = SearchAttributeKey::bool("VerificationPaused");
/// Set when a run starts, from its first event's `signals.job.region`.
pub const SA_REGION: SearchAttributeKey<String> = SearchAttributeKey::keyword("Region");

/// The search attributes the bridge registers (name, Temporal type).
pub const SEARCH_ATTRIBUTES: &[(&str, &str)] = &[
    ("VerificationState", "Keyword"),
    ("CandidateId", "Keyword"),
    ("ApplicationId", "Keyword"),
    ("AtsSyncStatus", "Keyword"),
    ("ReviewDueAt", "Datetime"),
    ("VerificationPaused", "Bool"),
    ("Region", "Keyword"),
];

impl CandidateVerification {
    /// The search attributes that changed since the last upsert of this run
    /// (all of them on its first).
    pub(super) fn changed_attributes(&mut self) -> Vec<SearchAttributeUpdate> {
        let now = (self.view.state.clone(), self.view.ats_sync.clone());
        let mut updates = vec![];
        match &self.upserted {
            Some((state, sync)) => {
                if *state != now.0 {
                    updates.push(SA_VERIFICATION_STATE.value_set(now.0.clone()));
                }
                if *sync != now.1 {
                    updates.push(SA_ATS_SYNC.value_set(now.1.clone()));
                }
            }
            None => {
                updates = self.sync_attributes();
                updates.push(SA_CANDIDATE_ID.value_set(self.candidate_id.clone()));
                updates.push(SA_APPLICATION_ID.value_set(self.application_id.clone()));
            }
        }
        self.upserted = Some(now);
        if let Some(paused) = self.paused_changed() {
            updates.push(SA_PAUSED.value_set(paused));
            self.upserted_paused = Some(paused);
        }
        if let Some(due) = self.review_due_changed() {
            if let Some(t) = rfc3339_timestamp(&due) {
                updates.push(SA_REVIEW_DUE_AT.value_set(t));
            }
            self.upserted_due = due;
        }
        updates
    }

    /// The pause, when it differs from the one last upserted (a run with
    /// [`CONTROLS_PATCH`](super::CONTROLS_PATCH) upserts it once, then on change).
    pub(super) fn paused_changed(&self) -> Option<bool> {
        (self.patches().controls && self.upserted_paused != Some(self.view.paused)).then_some(self.view.paused)
    }

    /// The review due time, when it differs from the one last upserted.
    /// (Leaving review does not unset `ReviewDueAt`: this SDK sends an empty
    /// payload for an unset that the server refuses. Queries pair it with
    /// `VerificationState = 'needs_review'`.)
    pub(super) fn review_due_changed(&self) -> Option<String> {
        let due = self.view.review.as_ref().map(|r| r.due_at.clone()).filter(|d| !d.is_empty())?;
        (self.patches().review && due != self.upserted_due).then_some(due)
    }

    pub(super) fn attributes_changed(&self) -> bool {
        self.upserted.as_ref().is_none_or(|(state, sync)| *state != self.view.state || *sync != self.view.ats_sync)
            || self.review_due_changed().is_some()
            || self.paused_changed().is_some()
            || (self.patches().review && self.details() != self.details_set)
    }

    /// One line for the Temporal UI's current details: state, ATS sync, the
    /// review's due time, the last event.
    pub(super) fn details(&self) -> String {
        let mut d = format!("state: {} · ATS: {}", self.view.state, self.view.ats_sync);
        if self.view.pending_writes > 0 {
            d.push_str(&format!(" ({} write(s) owed)", self.view.pending_writes));
        }
        if let Some(r) = &self.view.review {
            d.push_str(&format!(" · review in {} due {}", r.queue, r.due_at));
            if r.escalations > 0 {
                d.push_str(&format!(" (escalated {}x)", r.escalations));
            }
        }
        if self.view.paused {
            d.push_str(" · PAUSED: ATS writes held");
        }
        if !self.view.banner.is_empty() {
            d.push_str(&format!(" · banner \"{}\"", self.view.banner));
        }
        if !self.view.last_event_id.is_empty() {
            d.push_str(&format!(" · last event {}", self.view.last_event_id));
        }
        d
    }

    pub(super) fn sync_attributes(&self) -> Vec<SearchAttributeUpdate> {
        vec![
            SA_VERIFICATION_STATE.value_set(self.view.state.clone()),
            SA_ATS_SYNC.value_set(self.view.ats_sync.clone()),
        ]
    }
}

pub(super) fn rfc3339_timestamp(at: &str) -> Option<Timestamp> {
    let t = DateTime::parse_from_rfc3339(at).ok()?;
    Some(Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32))
}
