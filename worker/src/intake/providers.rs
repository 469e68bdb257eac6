//! The real providers' way in (docs/contract.md §7, docs/providers.md): the
//! adapter checks the signature on the raw bytes and maps the provider's body
//! onto the canonical event; from there the delivery takes the IL route's
//! path ([`Intake::take`]: duplicates by the event key, redaction, parsing,
//! the commit before the 2xx). What is stored, logged and sent on is the
//! canonical event, the raw body's SHA-256 and the few provider fields the
//! mapping names: never the provider's body.
//!
//! A verified delivery the bridge cannot use (no usable reference, an event
//! with no meaning here, no event key) is recorded and answered 202
//! `ignored` with its reason: a 4xx would have the provider retry it for
//! days. A retake or an expiry is an event (a notice): committed and relayed
//! like any other; the workflow records it and keeps the state.

use super::{Arrival, Intake, IntakeError, NotApplied, Notices, Receipt, sha256_hex};
use crate::store::DeliveryRecord;
use std::collections::BTreeMap;
use vbridge_core::domain::TraceId;
use vbridge_core::intake::providers::custom::Custom;
use vbridge_core::intake::providers::{Adapter, Clock, Ignored, Mapping, ProviderKind, ReasonMap, stored_key};

/// The configured providers, the declared ones by name, and the reason table.
#[derive(Default)]
pub struct Providers {
    adapters: Vec<Box<dyn Adapter>>,
    pub reasons: ReasonMap,
    declared: BTreeMap<String, Custom>,
}

impl Providers {
    pub fn new(adapters: Vec<Box<dyn Adapter>>, reasons: ReasonMap) -> Providers {
        Providers { adapters, reasons, declared: BTreeMap::new() }
    }

    /// With the providers declared in `VBRIDGE_CUSTOM_PROVIDERS`.
    pub fn with_declared(mut self, declared: Vec<Custom>) -> Providers {
        self.declared = declared.into_iter().map(|c| (c.spec.name.as_str().to_owned(), c)).collect();
        self
    }

    /// A declared provider's adapter; `None`: `/webhooks/custom/{name}` answers 404.
    pub fn declared(&self, name: &str) -> Option<&dyn Adapter> {
        self.declared.get(name).map(|c| c as &dyn Adapter)
    }

    pub fn declared_names(&self) -> Vec<&str> {
        self.declared.keys().map(String::as_str).collect()
    }

    /// The provider's adapter; `None`: its route answers 404.
    pub fn get(&self, kind: ProviderKind) -> Option<&dyn Adapter> {
        self.adapters.iter().find(|a| a.kind() == kind).map(|a| &**a)
    }

    /// Add `adapter` unless its provider is configured already (`vbridge
    /// dev` fills the unconfigured routes with dev secrets); whether it was added.
    pub fn add_missing(&mut self, adapter: Box<dyn Adapter>) -> bool {
        let missing = self.get(adapter.kind()).is_none();
        if missing {
            self.adapters.push(adapter);
        }
        missing
    }

    pub fn configured(&self) -> Vec<ProviderKind> {
        self.adapters.iter().map(|a| a.kind()).collect()
    }
}

impl Intake {
    /// Take one delivery on a provider's route.
    pub async fn receive_provider<'h>(
        &self,
        adapter: &dyn Adapter,
        header: impl Fn(&str) -> Option<&'h str>,
        arrival: Arrival,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let provider = adapter.name();
        let mut rec = Self::record(trace_id);
        let path = route_path(adapter.kind());
        let bytes =
            self.bytes_of(&rec, arrival, path).inspect_err(|_| self.metrics.provider_result(provider, "rejected"))?;
        rec.body_sha256 = sha256_hex(&bytes);
        let clock = Clock {
            now_unix: chrono::Utc::now().timestamp(),
            max_skew_seconds: self.policy.max_skew_seconds(),
            replay_protection: self.policy.raw().webhook_security.replay_protection.required,
        };
        if let Err(e) = adapter.verify(&header, &bytes, &clock) {
            self.metrics.signature_refused();
            self.metrics.provider_result(provider, "signature_invalid");
            // Nothing of an unauthenticated body is kept: it is counted in
            // the refusals' aggregate (and logged at most once a second).
            return Err(self.refuse_later(rec, None, e.into(), path));
        }
        rec.signature_valid = true;
        let value = self.json_object(rec.clone(), &bytes).await.inspect_err(|_| {
            self.metrics.provider_result(provider, "rejected");
        })?;
        let result = match adapter.map(&value) {
            Mapping::Event(event) => {
                tracing::info!(
                    provider,
                    provider_event = %event.provider_event,
                    provider_status = event.provider_status.as_deref().unwrap_or(""),
                    "provider event mapped"
                );
                let body = event.to_body(self.policy.key_field(), &rec.received_at, &self.providers.reasons);
                self.take(rec, body, trace_id, Notices::Events).await
            }
            Mapping::Redacted(red) => {
                let r = super::erasure::Requested {
                    key: format!("{}:{}", red.provider.as_str(), red.event_key),
                    source: red.provider.as_str(),
                    event: red.provider_event,
                    candidate: red.reference.candidate_id,
                    trigger: crate::erasure::Trigger::PersonaRedacted,
                    reason_code: "provider_redacted",
                };
                self.erasure_requested(rec, r, trace_id).await
            }
            Mapping::Ignored(ignored) => self.ignore(adapter.kind(), rec, ignored, trace_id).await,
        };
        let label = match &result {
            Ok(Receipt::Accepted { .. }) => "accepted",
            Ok(Receipt::Ignored { .. }) => "ignored",
            Ok(Receipt::Duplicate { .. }) => "duplicate",
            Err(IntakeError::Unavailable) => "unavailable",
            Err(_) => "rejected",
        };
        self.metrics.provider_result(provider, label);
        result
    }

    /// Record a verified delivery the bridge does not apply, and answer
    /// `ignored` (or `duplicate`, for its retry).
    async fn ignore(
        &self,
        kind: ProviderKind,
        rec: DeliveryRecord,
        ignored: Ignored,
        trace_id: &TraceId,
    ) -> Result<Receipt, IntakeError> {
        let r = ignored.reference.as_ref();
        let delivery = NotApplied {
            key: ignored.event_key.as_deref().map(|k| stored_key(kind, k)),
            source: kind.as_str(),
            event: ignored.provider_event.clone(),
            occurred_at: ignored.occurred_at.map(|t| t.to_rfc3339()),
            ids: r.map(|r| (r.candidate_id.to_string(), r.application_id.to_string())),
            record: ignored.to_record(kind),
            reason: ignored.reason.as_str(),
        };
        self.not_applied(rec, delivery, trace_id).await
    }
}

/// The route a provider's deliveries come in on (docs/contract.md §7).
fn route_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Persona => "/webhooks/persona",
        ProviderKind::Onfido => "/webhooks/onfido",
        ProviderKind::Veriff => "/webhooks/veriff",
        ProviderKind::Sumsub => "/webhooks/sumsub",
        // Declared providers share one route template (`/webhooks/custom/{name}`).
        ProviderKind::Custom => "/webhooks/custom/{name}",
    }
}
