//! The ATSs' way in (docs/contract.md §8): `POST /webhooks/ats/greenhouse`
//! and `/webhooks/ats/ashby`. The core's adapter checks the signature on the
//! raw bytes and reads the stage change; here the policy's `verification`
//! extension decides whether it starts anything and at which tier:
//! - a stage not named in `verification.trigger.stages`, a tier with
//!   `verify: false`, or a bridge with no `verification` extension: the
//!   delivery is recorded and answered `ignored` with the reason, and no
//!   workflow is started;
//! - a trigger: the candidate's address goes to the hiring rows (never to the
//!   audit log, the Temporal history or a log line), and the canonical
//!   `verification.requested` event, carrying the tier, takes the one
//!   pipeline (duplicates by the ATS's key, the commit before the answer,
//!   the relay's signal-with-start).

use super::{Arrival, Intake, IntakeError, NotApplied, Notices, Receipt, sha256_hex};
use crate::store::DeliveryRecord;
use serde_json::{Value, json};
use vbridge_activities::interviews::Taken;
use vbridge_core::domain::{EventType, TraceId};
use vbridge_core::hiring::Tier;
use vbridge_core::intake::ats::{AtsAdapter, AtsKind, AtsMapping, Interview, StageChange};

/// The configured ATS webhooks (none by default: their routes answer 404).
#[derive(Default)]
pub struct AtsHooks {
    adapters: Vec<Box<dyn AtsAdapter>>,
}

impl AtsHooks {
    pub fn new(adapters: Vec<Box<dyn AtsAdapter>>) -> AtsHooks {
        AtsHooks { adapters }
    }

    pub fn get(&self, kind: AtsKind) -> Option<&dyn AtsAdapter> {
        self.adapters.iter().find(|a| a.kind() == kind).map(|a| &**a)
    }

    /// Add `adapter` unless its ATS is configured already (`vbridge dev`
    /// fills the unconfigured routes with dev secrets); whether it was added.
    pub fn add_missing(&mut self, adapter: Box<dyn AtsAdapter>) -> bool {
        let missing = self.get(adapter.kind()).is_none();
        if missing {
            self.adapters.push(adapter);
        }
        missing
    }

    pub fn configured(&self) -> Vec<AtsKind> {
        self.adapters.iter().map(|a| a.kind()).collect()
    }
}

/// Why a stage change starts nothing (the `ignored` reason).
pub const NOT_CONFIGURED: &str = "hiring_not_configured";
pub const NOT_A_TRIGGER: &str = "stage_not_a_trigger";
pub const NO_VERIFICATION: &str = "tier_requires_no_verification";
/// Why an interview is not applied: the bridge verifies no one for it.
pub const UNKNOWN_APPLICATION: &str = "unknown_application";

/// The route an ATS's deliveries come in on.
pub fn route_path(kind: AtsKind) -> &'static str {
    match kind {
        AtsKind::Greenhouse => "/webhooks/ats/greenhouse",
        AtsKind::Ashby => "/webhooks/ats/ashby",
    }
}

impl Intake {
    /// Take one delivery on an ATS's route.
    pub async fn receive_ats<'h>(
        &self,
        adapter: &dyn AtsAdapter,
        header: impl Fn(&str) -> Option<&'h str>,
        arrival: Arrival,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let kind = adapter.kind();
        let path = route_path(kind);
        let mut rec = Self::record(trace_id);
        let bytes = self.bytes_of(&rec, arrival, path)?;
        rec.body_sha256 = sha256_hex(&bytes);
        if let Err(e) = adapter.verify(&header, &bytes) {
            self.metrics.signature_refused();
            return Err(self.refuse_later(rec, None, e.into(), path));
        }
        rec.signature_valid = true;
        let value = self.json_object(rec.clone(), &bytes).await?;
        match adapter.map(&header, &value) {
            AtsMapping::StageChange(change) => self.stage_change(rec, change, trace_id).await,
            AtsMapping::Interview(interview) => self.interview(rec, interview, trace_id).await,
            AtsMapping::Anonymized(a) => {
                let r = super::erasure::Requested {
                    key: a.stored_key(),
                    source: kind.as_str(),
                    event: a.ats_event,
                    candidate: a.candidate_id,
                    trigger: crate::erasure::Trigger::GreenhouseAnonymized,
                    reason_code: "ats_anonymized",
                };
                self.erasure_requested(rec, r, trace_id).await
            }
            AtsMapping::Ignored(i) => {
                let ids = i.candidate_id.as_ref().zip(i.application_id.as_ref());
                let delivery = NotApplied {
                    key: i.event_key.as_deref().map(|k| vbridge_core::intake::ats::stored_key(kind, k)),
                    source: kind.as_str(),
                    event: i.ats_event.clone(),
                    occurred_at: None,
                    ids: ids.map(|(c, a)| (c.to_string(), a.to_string())),
                    record: i.to_record(kind),
                    reason: i.reason.as_str(),
                };
                self.not_applied(rec, delivery, trace_id).await
            }
        }
    }

    /// A stage change: the trigger and the tier, then the request or the
    /// reason it starts nothing.
    async fn stage_change(
        &self,
        rec: DeliveryRecord,
        change: StageChange,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let tier = match self.policy.hiring() {
            None => Err(NOT_CONFIGURED),
            Some(h) if !h.triggers(&change.stage) => Err(NOT_A_TRIGGER),
            Some(h) => Ok(h.tier_for(&change.job())),
        };
        let tier = match tier {
            Ok(t) if t.verify => t,
            refused => {
                let reason = refused.err().unwrap_or(NO_VERIFICATION);
                let tier = refused.ok().map(|t| t.name.as_str());
                tracing::info!(ats = change.ats.as_str(), reason, tier, "stage change starts nothing");
                let delivery = NotApplied {
                    key: Some(change.stored_key()),
                    source: change.ats.as_str(),
                    event: change.ats_event.clone(),
                    occurred_at: change.occurred_at.map(|t| t.to_rfc3339()),
                    ids: Some((change.candidate_id.to_string(), change.application_id.to_string())),
                    record: summary(&change, tier, Some(reason)),
                    reason,
                };
                return self.not_applied(rec, delivery, trace_id).await;
            }
        };
        if let (Some(email), Some(outreach)) = (&change.email, &self.outreach) {
            let recruiter = change.recruiter_email.as_ref().map(|e| e.as_str());
            let (c, a) = (change.candidate_id.as_str(), change.application_id.as_str());
            if let Err(e) = outreach.put_contact(c, a, email.as_str(), recruiter).await {
                tracing::error!(error = %e, "cannot keep the candidate's address; asking the ATS to retry");
                return Err(IntakeError::Unavailable);
            }
        } else if change.email.is_none() {
            tracing::warn!(
                ats = change.ats.as_str(),
                "a trigger without the candidate's address: no invite can be mailed"
            );
        }
        let body = request_body(&change, tier, self.policy.key_field(), &rec.received_at);
        self.take(rec, body, trace_id, Notices::Events).await
    }
}

impl Intake {
    /// An interview booked, moved or cancelled: the gate's answer now says
    /// whether it is a bypass (counted here, once, as
    /// `interview_scheduled_unverified_count`); the workflow records it and
    /// plans the reminders. An application the bridge has no verification
    /// for is recorded and `ignored` (`unknown_application`).
    async fn interview(&self, rec: DeliveryRecord, i: Interview, trace_id: &TraceId) -> Result<Receipt, IntakeError> {
        let Some(candidate) = self.candidate_of(&i).await? else {
            let delivery = NotApplied {
                key: Some(i.stored_key()),
                source: i.ats.as_str(),
                event: i.ats_event.clone(),
                occurred_at: i.occurred_at.map(|t| t.to_rfc3339()),
                ids: None,
                record: serde_json::json!({"ats": i.ats.as_str(), "ats_event": i.ats_event,
                    "application_id": i.application_id.as_str(), "interview": i.schedule_id,
                    "ignored": UNKNOWN_APPLICATION}),
                reason: UNKNOWN_APPLICATION,
            };
            return self.not_applied(rec, delivery, trace_id).await;
        };
        self.book(rec, &i, &candidate, trace_id).await
    }

    /// The candidate an interview is for: the body's, when the bridge
    /// verifies them for this application; else the one the gate knows for
    /// it; none when the bridge verifies no one for the application.
    async fn candidate_of(&self, i: &Interview) -> Result<Option<String>, IntakeError> {
        let a = i.application_id.as_str();
        let unavailable = |e: crate::store::StoreError| {
            tracing::error!(error = %e, "cannot read the store; asking the ATS to retry");
            IntakeError::Unavailable
        };
        Ok(match &i.candidate_id {
            Some(c) => self.store.knows(c.as_str(), a).await.map_err(unavailable)?.then(|| c.to_string()),
            None => match self.store.gate_row(a).await.map_err(unavailable)? {
                Some(r) => Some(r.candidate_id),
                // Not projected yet (no state written): the candidate of
                // the application's accepted deliveries.
                None => self.store.deliveries(None, Some(a)).await.map_err(unavailable)?.into_iter().find_map(|d| {
                    (d.content.processing_result == "accepted").then_some(d.content.candidate_id).flatten()
                }),
            },
        })
    }

    /// Commit an interview of a known candidate, judged by the gate now.
    async fn book(
        &self,
        rec: DeliveryRecord,
        i: &Interview,
        candidate: &str,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let a = i.application_id.as_str();
        let gate = crate::controls::gate_answer(self.store.as_ref(), &self.policy, a).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the gate; asking the ATS to retry");
            IntakeError::Unavailable
        })?;
        let body = interview_body(i, candidate, &gate, self.policy.key_field(), &rec.received_at);
        let receipt = self.take(rec, body, trace_id, Notices::Events).await?;
        if matches!(receipt, Receipt::Accepted { .. }) && !gate.allow_interview_scheduling && !i.cancelled {
            self.metrics.interview_unverified.inc();
            // By role and region, as the trigger named them (the store's
            // projection of the application's job); unknown when unread.
            let job = self.store.job(a).await.unwrap_or_default();
            self.metrics.bypass_by_job(job.role.as_deref(), job.region.as_deref());
            tracing::warn!(application_id = a, gate = %gate.reason, "interview booked while the gate is closed");
        }
        Ok(receipt)
    }

    /// An interview read from the ATS's listing (Greenhouse, polled): the
    /// same way in as a pushed one, from the gate's reading to the commit,
    /// under a trace id of its own. One for an application the bridge
    /// verifies no one for is not recorded: the listing is the whole
    /// account's, and no one sent it.
    pub async fn take_polled_interview(&self, i: Interview, raw: &Value) -> Result<Taken, IntakeError> {
        use tracing::Instrument;
        let trace_id = TraceId::new_random();
        let span = tracing::info_span!("polled_interview", trace_id = %trace_id, ats = i.ats.as_str());
        async {
            // Read again (the next run's overlap, an update that did not
            // move it): known already. Not a delivery anyone sent again, so
            // neither recorded nor counted as a webhook duplicate.
            let key = i.stored_key();
            if self.recent.get(&key).is_some() || matches!(self.store.find_key(&key).await, Ok(Some(_))) {
                return Ok(Taken::Duplicate);
            }
            let Some(candidate) = self.candidate_of(&i).await? else { return Ok(Taken::UnknownApplication) };
            let mut rec = Self::record(&trace_id);
            rec.body_sha256 = sha256_hex(raw.to_string().as_bytes());
            // Read with the bridge's own credentials over TLS: authenticated
            // as a signed delivery is.
            rec.signature_valid = true;
            Ok(match self.book(rec, &i, &candidate, &trace_id).await? {
                Receipt::Accepted { .. } => Taken::Accepted,
                Receipt::Duplicate { .. } | Receipt::Ignored { .. } => Taken::Duplicate,
            })
        }
        .instrument(span)
        .await
    }
}

/// The canonical `interview.scheduled` event, in the IL route's body shape
/// (its `verification_check_id` names the interview: no check is involved).
pub fn interview_body(
    i: &Interview,
    candidate: &str,
    gate: &crate::controls::gate::Answer,
    key_field: &str,
    received_at: &str,
) -> Value {
    let key = i.stored_key();
    let occurred_at = i.occurred_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| received_at.to_owned());
    let mut body = json!({
        "event_id": key,
        "event_type": EventType::Interview.as_str(),
        "occurred_at": occurred_at,
        "candidate_id": candidate,
        "application_id": i.application_id.as_str(),
        "verification_check_id": format!("interview-{}", i.schedule_id),
        "signals": {
            "ats": i.ats.as_str(),
            "ats_event": i.ats_event,
            "interview": {
                "id": i.schedule_id,
                "starts_at": i.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                "cancelled": i.cancelled,
                "gate_allowed": gate.allow_interview_scheduling,
                "gate_reason": gate.reason,
            },
        },
    });
    body[key_field] = Value::String(key);
    body
}

/// What the store keeps of a stage change (never the address): the ATS's
/// event, the stage, the job, the tier picked, and why nothing started.
fn summary(change: &StageChange, tier: Option<&str>, ignored: Option<&str>) -> Value {
    let mut v = json!({
        "ats": change.ats.as_str(),
        "ats_event": change.ats_event,
        "stage": change.stage,
        "tier": tier,
        "job": {"role": change.role, "region": change.region, "requisition_id": change.requisition},
        "applied_at": change.applied_at.map(|t| t.to_rfc3339()),
        "has_email": change.email.is_some(),
    });
    if let Some(reason) = ignored {
        v["ignored"] = reason.into();
        v["candidate_id"] = change.candidate_id.as_str().into();
        v["application_id"] = change.application_id.as_str().into();
    }
    v
}

/// The canonical `verification.requested` event, in the IL route's body
/// shape. It names no check yet (the provider makes one when the workflow
/// starts it): its `verification_check_id` is `tier-{tier}`, the request's.
pub fn request_body(change: &StageChange, tier: &Tier, key_field: &str, received_at: &str) -> Value {
    let key = change.stored_key();
    let occurred_at = change.occurred_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| received_at.to_owned());
    let mut body = json!({
        "event_id": key,
        "event_type": EventType::Requested.as_str(),
        "occurred_at": occurred_at,
        "candidate_id": change.candidate_id.as_str(),
        "application_id": change.application_id.as_str(),
        "verification_check_id": format!("tier-{}", tier.name),
        "signals": summary(change, Some(&tier.name), None),
    });
    body[key_field] = Value::String(key);
    body
}
