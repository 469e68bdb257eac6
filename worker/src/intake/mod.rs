//! Intake: what happens to one webhook delivery between the HTTP edge and the
//! event store. Signature check, duplicate short-cut ([`recent`]), redaction,
//! parsing (the pure steps are `vbridge_core::intake`'s), then the commit. The
//! HTTP handler only reads the request and maps the outcome to an answer.
//!
//! Deliveries that fail authentication or are not JSON at all (401, 413, 415)
//! are answered at once and only counted, per window, in memory
//! (`crate::audit::refusals`): a flood of junk never reaches the store's
//! writer, so it can never hold up, or crowd out, accepted events.

pub mod ats;
mod erasure;
pub mod polled;
pub mod providers;
pub mod recent;

pub use vbridge_core::intake::{parse, redact, signature};

use crate::audit::refusals::{Claimed, Refusal, Source};
use crate::metrics::Metrics;
use crate::store::{Committed, DeliveryRecord, EventStore, Intent, StoreError};
use parse::{PayloadError, claimed};
use recent::RecentKeys;
use serde_json::Value;
use signature::{Secret, SignatureError};
use std::sync::Arc;
use std::time::Duration;
use vbridge_core::Policy;
use vbridge_core::domain::TraceId;

pub use redact::sha256_hex;

/// The body as the HTTP edge read it.
pub enum Arrival {
    Json(bytes::Bytes),
    NotJson,
    TooLarge {
        limit: usize,
    },
    /// The connection broke while the body was being read.
    Unreadable,
}

/// A delivery the store committed, or recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Accepted {
        event_id: String,
    },
    /// `reason`: why a provider's verified delivery is not applied (§7).
    Ignored {
        event_id: String,
        event_type: String,
        reason: Option<&'static str>,
    },
    Duplicate {
        event_id: String,
        original_trace_id: String,
    },
}

/// The IL scheme's route (docs/contract.md §2).
const IL_PATH: &str = "/webhooks/verification";

/// Why a delivery was refused; each maps to one contract answer.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("Content-Type must be application/json")]
    NotJson,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("idempotency key already used by event {0}")]
    Conflict(String),
    #[error("the event store cannot commit right now; retry later")]
    Unavailable,
}

impl IntakeError {
    /// The `reject_code` kept in the delivery's row.
    fn reject_code(&self) -> &'static str {
        match self {
            IntakeError::NotJson => "unsupported_media_type",
            IntakeError::TooLarge(_) => "payload_too_large",
            IntakeError::Signature(e) => e.code(),
            IntakeError::Payload(_) => "invalid_payload",
            IntakeError::Conflict(_) => "idempotency_conflict",
            IntakeError::Unavailable => "unavailable",
        }
    }
}

pub struct Intake {
    pub policy: Arc<Policy>,
    pub secrets: Arc<Vec<Secret>>,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
    pub recent: RecentKeys,
    /// A commit not done within this answers 503 (the row may still land; the
    /// provider's retry then finds it and is answered `duplicate`).
    pub commit_timeout: Duration,
    /// Unauthenticated refusals, aggregated for the audit log's `rejected`
    /// chain and logged at most once a second (the metrics count them all):
    /// a flood must not become a flood of rows or of log lines.
    pub refusals: Arc<crate::audit::refusals::Refusals>,
    /// Bodies of refused deliveries being read for their claimed ids at
    /// once, at most: past it, a refusal is counted without its claims, so
    /// that unauthenticated work never takes more than these CPUs.
    pub claim_readers: tokio::sync::Semaphore,
    /// The real providers' routes (docs/contract.md §7); none configured by default.
    pub providers: Arc<providers::Providers>,
    /// The ATSs' webhook routes (docs/contract.md §8); none configured by default.
    pub ats: Arc<ats::AtsHooks>,
    /// Where a trigger's candidate address is kept (the hiring rows); none:
    /// not kept, and no invite can be mailed.
    pub outreach: Option<Arc<dyn vbridge_activities::hiring::Outreach>>,
    /// Where an erasure a webhook asks for deletes the candidate's histories
    /// (the client once connected, the namespace); none: the store part only.
    pub temporal: Option<(tokio::sync::watch::Receiver<Option<temporalio_client::Client>>, String)>,
}

/// Refused bodies read for their claims at once, at most.
pub const CLAIM_READERS: usize = 2;

/// A verified delivery on a route of its own that the bridge records and
/// does not apply (`ignored`, with its reason).
pub(crate) struct NotApplied {
    /// The stored key (`"{source}:{key}"`); none when the body has none.
    pub key: Option<String>,
    /// `persona`, `greenhouse`, ...: the route's source.
    pub source: &'static str,
    /// The source's own name for the event.
    pub event: String,
    pub occurred_at: Option<String>,
    /// (candidate, application), when the body names them.
    pub ids: Option<(String, String)>,
    /// What the store keeps of it (never the body).
    pub record: Value,
    pub reason: &'static str,
}

/// Whether the providers' notices are events on a route (see `Intake::take`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notices {
    /// A provider's route: its adapter made the body.
    Events,
    /// The IL route: the names are unknown types.
    Unknown,
}

impl Intake {
    /// Take one delivery. `header` looks a request header up by name.
    pub async fn receive<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        arrival: Arrival,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let mut rec = Self::record(trace_id);
        let bytes = self.bytes_of(&rec, arrival, IL_PATH)?;
        rec.body_sha256 = sha256_hex(&bytes);

        let policy = &self.policy;
        let check = signature::Check {
            signature_header: policy.signature_header(),
            timestamp_header: policy.timestamp_header(),
            max_skew_seconds: policy.max_skew_seconds(),
            replay_protection: policy.raw().webhook_security.replay_protection.required,
            now_unix: chrono::Utc::now().timestamp(),
        };
        let unsigned_allowed = !policy.raw().webhook_security.signature.required;
        match signature::verify(&check, header, &bytes, &self.secrets) {
            Ok(scheme) => {
                rec.signature_valid = true;
                tracing::debug!(scheme = scheme.as_str(), "signature verified");
            }
            Err(SignatureError::MissingSignature) if unsigned_allowed => {}
            Err(e) => {
                self.metrics.signature_refused();
                let body = match self.claim_readers.try_acquire() {
                    Ok(_reading) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                return Err(self.refuse_later(rec, Some(&body), e.into(), IL_PATH));
            }
        }

        let value = self.json_object(rec.clone(), &bytes).await?;
        self.take(rec, value, trace_id, Notices::Unknown).await
    }

    /// A delivery's row as first known: refused until shown otherwise.
    fn record(trace_id: &TraceId) -> DeliveryRecord {
        DeliveryRecord {
            received_at: crate::now_rfc3339(),
            trace_id: trace_id.to_string(),
            intent: Intent::Rejected,
            ..Default::default()
        }
    }

    /// The body's bytes, or the refusal of a body that is not JSON, too
    /// large or unreadable (recorded off the answer path).
    fn bytes_of(&self, rec: &DeliveryRecord, arrival: Arrival, path: &str) -> Result<bytes::Bytes, IntakeError> {
        match arrival {
            Arrival::Json(b) => Ok(b),
            Arrival::NotJson => Err(self.refuse_later(rec.clone(), None, IntakeError::NotJson, path)),
            Arrival::TooLarge { limit } => {
                Err(self.refuse_later(rec.clone(), None, IntakeError::TooLarge(limit), path))
            }
            Arrival::Unreadable => {
                let e = PayloadError::new("body", "could not be read in full (the connection broke)");
                Err(self.refuse_later(rec.clone(), None, e.into(), path))
            }
        }
    }

    /// The body as a JSON object, or the refusal (recorded before the answer).
    async fn json_object(&self, rec: DeliveryRecord, bytes: &[u8]) -> Result<Value, IntakeError> {
        match serde_json::from_slice(bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(self.refuse(rec, &Value::Null, PayloadError::new("body", "must be a JSON object")).await),
            Err(e) => {
                let e = PayloadError::new("body", format!("not valid JSON ({e})"));
                Err(self.refuse(rec, &Value::Null, e).await)
            }
        }
    }

    /// An authenticated body, in the IL route's shape, from the duplicate
    /// short-cut to the commit: the one way in for every route. `notices`:
    /// whether a provider's notice (`verification.retake_requested`,
    /// `verification.expired`) is an event here; only a provider's adapter
    /// makes one, so on the IL route it is an unknown type (`ignored`).
    async fn take(
        &self,
        mut rec: DeliveryRecord,
        mut value: Value,
        trace_id: &TraceId,
        notices: Notices,
    ) -> Result<Receipt, IntakeError> {
        let policy = &self.policy;
        // A key already committed is answered before any other work: no
        // redaction, no validation, no Temporal call, no wait for a commit.
        if let Some(receipt) = self.duplicate_fast_path(&rec, &value).await {
            return Ok(receipt);
        }

        redact::redact(&mut value, policy.redact_fields());
        let mut parsed = match parse::parse(&value, policy) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(rec, &value, e).await),
        };
        if notices == Notices::Unknown && parsed.event_type.is_some_and(|t| t.is_route_only()) {
            parsed.event_type = None;
        }
        let span = tracing::Span::current();
        span.record("event_id", parsed.event_id.as_str());
        span.record("candidate_id", parsed.candidate_id.as_str());

        let mut signal = parsed.to_signal(&rec.received_at, trace_id);
        // The job it names, read once: the signal carries its region, the
        // store keeps it for canary gating.
        rec.job = vbridge_core::canary::job_of(&value);
        signal.region = rec.job.region.clone().unwrap_or_default();
        // A request carries the tier its ATS route picked (see `ats`).
        if parsed.event_type == Some(vbridge_core::domain::EventType::Requested) {
            signal.tier = value.pointer("/signals/tier").and_then(Value::as_str).unwrap_or_default().to_owned();
        }
        if parsed.event_type == Some(vbridge_core::domain::EventType::Interview) {
            signal.interview = value.pointer("/signals/interview").and_then(|v| serde_json::from_value(v.clone()).ok());
        }
        rec.event_id = Some(parsed.event_id.to_string());
        rec.event_type = Some(parsed.event_type_raw.clone());
        rec.occurred_at = Some(signal.occurred_at.clone());
        rec.candidate_id = Some(parsed.candidate_id.to_string());
        rec.application_id = Some(parsed.application_id.to_string());
        rec.idempotency_key = Some(parsed.idempotency_key.to_string());
        rec.delivery_attempt = parsed.delivery_attempt.map(i64::from);
        rec.payload = Some(value.to_string());
        rec.intent = if parsed.event_type.is_some() { Intent::Fresh } else { Intent::FreshIgnored };
        if parsed.event_type.is_some() {
            rec.signal = Some(serde_json::to_string(&signal).expect("signals serialize"));
        }

        let unlisted = parsed.decision_state.and_then(|s| policy.review_route(s)).is_some_and(|route| {
            !vbridge_core::review::flags(&route.required_reason_codes, &parsed.reason_codes).is_empty()
        });
        let key = parsed.idempotency_key.to_string();
        let event_id = parsed.event_id.to_string();
        match self.commit(rec).await? {
            Committed::Accepted { seq } => {
                self.recent.insert(key, event_id.clone(), trace_id.to_string());
                self.metrics.accepted.inc();
                if unlisted {
                    // Accepted and routed to review, flagged (docs/contract.md §2).
                    self.metrics.review_unlisted_reason_code.inc();
                    tracing::warn!(codes = ?parsed.reason_codes, "needs_review without the policy's reason codes: accepted, flagged unlisted_reason_code");
                }
                tracing::info!(seq, "webhook committed");
                Ok(Receipt::Accepted { event_id })
            }
            Committed::Ignored { seq } => {
                self.recent.insert(key, event_id.clone(), trace_id.to_string());
                self.metrics.ignored.inc();
                tracing::info!(seq, event_type = %parsed.event_type_raw, "event type not acted on; recorded");
                Ok(Receipt::Ignored { event_id, event_type: parsed.event_type_raw, reason: None })
            }
            Committed::Duplicate { original, .. } => {
                self.metrics.duplicate();
                Ok(Receipt::Duplicate { event_id, original_trace_id: original.trace_id })
            }
            Committed::Conflict { original, .. } => {
                self.metrics.rejected.inc();
                tracing::warn!(existing_event_id = %original.event_id, "idempotency key reused with another event id");
                Err(IntakeError::Conflict(original.event_id))
            }
            Committed::Rejected { .. } => Err(PayloadError::new("body", "rejected").into()),
        }
    }

    /// Commit within the commit timeout; a store that cannot is `Unavailable`,
    /// one that refuses this row names it.
    async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, IntakeError> {
        match tokio::time::timeout(self.commit_timeout, self.store.commit(rec)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(StoreError::Refused(msg))) => {
                tracing::error!(error = %msg, "the event store refused this delivery");
                Err(PayloadError::new("body", format!("the event store refused this delivery: {msg}")).into())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "event store cannot commit; asking the provider to retry");
                Err(IntakeError::Unavailable)
            }
            Err(_) => {
                tracing::error!(timeout_ms = self.commit_timeout.as_millis() as u64, "event store commit timed out");
                Err(IntakeError::Unavailable)
            }
        }
    }

    async fn duplicate_fast_path(&self, rec: &DeliveryRecord, body: &Value) -> Option<Receipt> {
        let key = body.get(self.policy.key_field())?.as_str()?;
        let event_id = body.get("event_id")?.as_str()?;
        let (original_event, original_trace) = match self.recent.get(key) {
            Some(hit) => hit,
            None => match self.store.find_key(key).await {
                Ok(Some(o)) => (o.event_id, o.trace_id),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency look-up failed; deciding at commit");
                    return None;
                }
            },
        };
        if original_event != event_id {
            return None; // a conflict: the commit path records and answers it
        }
        self.metrics.duplicate();
        let mut dup = rec.clone();
        self.fill_claimed(&mut dup, body);
        dup.intent = Intent::Duplicate;
        // The original keeps the payload; a duplicate row keeps the body hash.
        dup.payload = None;
        tracing::Span::current().record("event_id", event_id);
        tracing::info!(original_trace_id = %original_trace, "duplicate delivery acknowledged");
        self.record_later(dup);
        Some(Receipt::Duplicate { event_id: event_id.to_owned(), original_trace_id: original_trace })
    }

    fn fill_claimed(&self, rec: &mut DeliveryRecord, body: &Value) {
        // Identifiers as the body claims them (for a refused delivery:
        // unverified, and flagged so by `signature_valid`); a name the policy
        // redacts is never kept.
        let key_field = self.policy.key_field();
        let redact_fields = self.policy.redact_fields();
        let c = claimed(body, key_field);
        let keep = |name: &str, v: Option<String>| v.filter(|_| !redact_fields.iter().any(|f| f == name));
        rec.event_id = keep("event_id", c.event_id);
        rec.event_type = keep("event_type", c.event_type);
        rec.occurred_at = keep("occurred_at", c.occurred_at);
        rec.idempotency_key = keep(key_field, c.idempotency_key);
        rec.candidate_id = keep("candidate_id", c.candidate_id);
        rec.application_id = keep("application_id", c.application_id);
    }

    /// Refuse a signed delivery whose content is wrong: recorded before the answer.
    async fn refuse(&self, mut rec: DeliveryRecord, body: &Value, e: PayloadError) -> IntakeError {
        self.fill_claimed(&mut rec, body);
        rec.reject_code = Some("invalid_payload".into());
        self.metrics.rejected.inc();
        tracing::warn!(field = %e.field, "webhook rejected: {e}");
        if let Err(se) = self.commit(rec).await {
            tracing::error!(error = %se, "could not record a rejected delivery");
        }
        e.into()
    }

    /// Refuse an unauthenticated or unreadable delivery: answered at once,
    /// noted in the refusals' aggregate (never a row per delivery: see
    /// `crate::audit::refusals`), logged at most once a second.
    /// `path`: the route it came in on (`/webhooks/verification`, `/webhooks/persona`, ...).
    fn refuse_later(&self, mut rec: DeliveryRecord, body: Option<&Value>, e: IntakeError, path: &str) -> IntakeError {
        if let Some(body) = body {
            self.fill_claimed(&mut rec, body);
        }
        self.metrics.rejected.inc();
        let code = e.reject_code();
        let route = format!("POST {path}");
        let refusal = Refusal {
            source: Source::Webhook,
            code,
            route: &route,
            path,
            subject: "",
            claimed: Claimed {
                candidate_id: rec.candidate_id.as_deref(),
                application_id: rec.application_id.as_deref(),
                event_id: rec.event_id.as_deref(),
            },
            trace_id: &rec.trace_id,
        };
        if let Some(suppressed) = self.refusals.note(refusal) {
            tracing::warn!(code, suppressed, trace_id = %rec.trace_id, "webhook rejected: {e}");
        }
        e
    }

    /// Record a verified delivery of a route's own (a provider's, an ATS's)
    /// that the bridge does not apply, and answer `ignored` with its reason
    /// (or `duplicate`, for its retry).
    async fn not_applied(
        &self,
        mut rec: DeliveryRecord,
        d: NotApplied,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        rec.intent = Intent::FreshIgnored;
        rec.event_id = d.key.clone();
        rec.idempotency_key = d.key.clone();
        rec.event_type = Some(format!("{}:{}", d.source, d.event));
        rec.occurred_at = Some(d.occurred_at.unwrap_or_else(|| rec.received_at.clone()));
        if let Some((c, a)) = d.ids {
            rec.candidate_id = Some(c);
            rec.application_id = Some(a);
        }
        rec.payload = Some(d.record.to_string());
        let event_id = d.key.clone().unwrap_or_default();
        match self.commit(rec).await? {
            Committed::Ignored { seq } | Committed::Accepted { seq } => {
                if let Some(k) = d.key {
                    self.recent.insert(k, event_id.clone(), trace_id.to_string());
                }
                self.metrics.ignored.inc();
                tracing::info!(seq, source = d.source, event = %d.event, reason = d.reason, "delivery recorded, not applied");
                Ok(Receipt::Ignored { event_id, event_type: d.event, reason: Some(d.reason) })
            }
            Committed::Duplicate { original, .. } => {
                self.metrics.duplicate();
                Ok(Receipt::Duplicate { event_id, original_trace_id: original.trace_id })
            }
            Committed::Conflict { original, .. } => {
                self.metrics.rejected.inc();
                Err(IntakeError::Conflict(original.event_id))
            }
            Committed::Rejected { .. } => Err(PayloadError::new("body", "rejected").into()),
        }
    }

    /// Queue a row nobody waits on; count it when the bounded queue drops it.
    fn record_later(&self, rec: DeliveryRecord) {
        if !self.store.record_later(rec) {
            self.metrics.deferred_rows_dropped.inc();
        }
    }
}
