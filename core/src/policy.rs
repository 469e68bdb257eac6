//! The control policy (`policy.seed.yaml`), parsed into typed config and
//! validated. Every value here drives behaviour; nothing is documentation only.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key in a control
//! policy must stop start-up, not be silently ignored.

use crate::domain::{EventType, VerificationState};
use crate::template::{Template, TemplateError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A policy problem, with the key path where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { write!(f, "{}", self.problem) } else { write!(f, "{}: {}", self.path, self.problem) }
    }
}

/// Why a policy could not be loaded. All problems are reported at once.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PolicyProblem>),
}

impl PolicyError {
    pub fn problems(&self) -> &[PolicyProblem] {
        match self {
            PolicyError::Invalid(p) => p,
            PolicyError::Read { .. } => &[],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPolicy {
    pub policy_version: String,
    pub service: String,
    pub owner: Owner,
    pub webhook_security: WebhookSecurity,
    pub idempotency: Idempotency,
    pub event_log: EventLog,
    pub state_machine: StateMachine,
    pub actions: Actions,
    pub resiliency: Resiliency,
    pub controls: Controls,
    pub observability: Observability,
    /// An extension of the seed's schema (optional): the reason codes an
    /// override may carry. Without it, overrides use `routeToQueue`'s list.
    #[serde(default)]
    pub overrides: Option<Overrides>,
    /// An extension of the seed's schema (optional): the hiring loop's
    /// triggers, risk tiers, step-up and deadline (`crate::hiring`).
    #[serde(default)]
    pub verification: Option<crate::hiring::RawVerification>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Overrides {
    pub reason_codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Owner {
    pub process_owner: String,
    pub control_owner: String,
    pub approver: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSecurity {
    pub signature: SignaturePolicy,
    pub replay_protection: ReplayProtection,
    pub ip_allowlist: IpAllowlist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignaturePolicy {
    pub required: bool,
    pub algorithm: String,
    pub header: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayProtection {
    pub required: bool,
    pub max_skew_seconds: u64,
    pub timestamp_header: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpAllowlist {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Idempotency {
    pub key_field: String,
    pub store: String,
    pub on_duplicate_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventLog {
    pub storage: String,
    pub retention_days: u32,
    pub pii_redaction: PiiRedaction,
    pub required_fields: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PiiRedaction {
    pub redact_fields: Vec<String>,
    pub store_hashes_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateMachine {
    pub allowed_states: Vec<String>,
    pub allowed_transitions: Vec<Transition>,
    pub downgrade_requires_override_event: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actions {
    pub on_event_type: BTreeMap<String, EventAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventAction {
    pub ats_update: AtsUpdate,
    #[serde(default)]
    pub if_decision_state_is: Option<String>,
    #[serde(default)]
    pub route_to_queue: Option<RouteToQueue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtsUpdate {
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteToQueue {
    pub queue: String,
    /// Hours; fractions allowed (a test policy may use seconds).
    pub sla_hours: f64,
    pub required_reason_codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resiliency {
    pub ats_write_timeout_ms: u64,
    pub on_ats_down: OnAtsDown,
    pub reconciliation: Reconciliation,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OnAtsDown {
    pub behavior: String,
    pub max_retry_attempts: u32,
    pub backoff: String,
    pub candidate_facing_status: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reconciliation {
    pub enabled: bool,
    pub schedule: String,
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Controls {
    pub kill_switch: KillSwitch,
    /// An extension of the seed's schema (optional): gating applies only to
    /// the verifications in the canary (see `crate::canary`); the others are
    /// verified and written but never block scheduling.
    #[serde(default)]
    pub canary: Option<Canary>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// Percent of buckets in the canary (0..=100); absent: all.
    #[serde(default)]
    pub percent: Option<u8>,
    /// What is bucketed: `requisition` (default) or `role`.
    #[serde(default)]
    pub bucket_by: Option<String>,
    /// Only these regions (empty: any).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Only these roles (empty: any).
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KillSwitch {
    pub flag: String,
    pub default: bool,
    pub when_off: WhenOff,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhenOff {
    pub allow_interview_scheduling: bool,
    pub continue_collecting_events: bool,
    #[serde(rename = "requireBannerInATS")]
    pub require_banner_in_ats: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Observability {
    pub tracing: TracingPolicy,
    pub metrics: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingPolicy {
    pub propagate_header: String,
}

/// The ATS update an event type triggers, with its templates parsed.
#[derive(Debug, Clone)]
pub struct CompiledAction {
    pub fields: BTreeMap<String, Template>,
    /// The template of `verification_state`: the state this event moves to.
    pub target_state: Template,
    pub route: Option<(VerificationState, RouteToQueue)>,
}

/// A validated policy. Built only by [`Policy::parse`].
#[derive(Debug, Clone)]
pub struct Policy {
    raw: RawPolicy,
    text: String,
    sha256: String,
    states: BTreeSet<VerificationState>,
    transitions: BTreeMap<VerificationState, BTreeSet<VerificationState>>,
    actions: BTreeMap<EventType, CompiledAction>,
    hiring: Option<crate::hiring::HiringPolicy>,
}

/// Only these backoff names are understood; anything else is a typo.
pub const KNOWN_BACKOFFS: &[&str] = &["exponential-jitter", "exponential", "fixed"];
/// The ATS field every action must set: it names the state the event moves to.
pub const STATE_FIELD: &str = "verification_state";

impl Policy {
    /// Parse and validate policy YAML. Every problem found is reported with its key path.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let raw: RawPolicy = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            PolicyError::Invalid(vec![PolicyProblem { path, problem: e.inner().to_string() }])
        })?;
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        Validator::default().validate(raw, text.to_owned(), sha256)
    }

    /// Read and parse a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Read { path: path.display().to_string(), source })?;
        Policy::parse(&text)
    }

    pub fn raw(&self) -> &RawPolicy {
        &self.raw
    }
    /// The exact text the policy was parsed from (pinned into workflow input).
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn version(&self) -> &str {
        &self.raw.policy_version
    }
    pub fn states(&self) -> &BTreeSet<VerificationState> {
        &self.states
    }
    /// Direct successors of `from` allowed by `stateMachine.allowedTransitions`.
    pub fn successors(&self, from: VerificationState) -> impl Iterator<Item = VerificationState> + '_ {
        self.transitions.get(&from).into_iter().flatten().copied()
    }
    pub fn action(&self, event_type: EventType) -> Option<&CompiledAction> {
        self.actions.get(&event_type)
    }
    pub fn max_skew_seconds(&self) -> u64 {
        self.raw.webhook_security.replay_protection.max_skew_seconds
    }
    pub fn redact_fields(&self) -> &[String] {
        &self.raw.event_log.pii_redaction.redact_fields
    }
    pub fn key_field(&self) -> &str {
        &self.raw.idempotency.key_field
    }
    pub fn signature_header(&self) -> &str {
        &self.raw.webhook_security.signature.header
    }
    pub fn timestamp_header(&self) -> &str {
        &self.raw.webhook_security.replay_protection.timestamp_header
    }
    pub fn trace_header(&self) -> &str {
        &self.raw.observability.tracing.propagate_header
    }
    pub fn ats_write_timeout_ms(&self) -> u64 {
        self.raw.resiliency.ats_write_timeout_ms
    }
    pub fn max_retry_attempts(&self) -> u32 {
        self.raw.resiliency.on_ats_down.max_retry_attempts
    }
    pub fn backoff(&self) -> &str {
        &self.raw.resiliency.on_ats_down.backoff
    }
    pub fn pending_sync_status(&self) -> &str {
        &self.raw.resiliency.on_ats_down.candidate_facing_status
    }
    /// The reason codes a reviewer's decision may carry: the review route's list.
    pub fn review_reason_codes(&self) -> &[String] {
        self.actions
            .values()
            .filter_map(|a| a.route.as_ref())
            .map(|(_, r)| r.required_reason_codes.as_slice())
            .next()
            .unwrap_or(&[])
    }
    /// The reason codes an override may carry: `overrides.reasonCodes` when
    /// the policy has it, else the review route's list.
    pub fn override_reason_codes(&self) -> &[String] {
        match &self.raw.overrides {
            Some(o) => &o.reason_codes,
            None => self.review_reason_codes(),
        }
    }
    /// The hiring loop's extension (`verification`), when the policy has one.
    pub fn hiring(&self) -> Option<&crate::hiring::HiringPolicy> {
        self.hiring.as_ref()
    }
    /// The review route of a state (the policy's `routeToQueue` when
    /// `ifDecisionStateIs` names it).
    pub fn review_route(&self, state: VerificationState) -> Option<&RouteToQueue> {
        self.actions.values().filter_map(|a| a.route.as_ref()).find(|(s, _)| *s == state).map(|(_, r)| r)
    }
}

/// The longest SLA a policy may set: a year.
pub const MAX_SLA_HOURS: f64 = 8784.0;

/// An SLA in hours as a duration (whole milliseconds, at least one).
pub fn sla_duration(hours: f64) -> std::time::Duration {
    std::time::Duration::from_millis(((hours * 3_600_000.0).round() as u64).max(1))
}

#[derive(Default)]
struct Validator {
    problems: Vec<PolicyProblem>,
}

impl Validator {
    fn problem(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(PolicyProblem { path: path.into(), problem: problem.into() });
    }

    fn state(&mut self, path: String, name: &str, allowed: &BTreeSet<VerificationState>) -> Option<VerificationState> {
        match name.parse::<VerificationState>() {
            Ok(s) if allowed.contains(&s) => Some(s),
            Ok(_) => {
                self.problem(path, format!("state \"{name}\" is not in stateMachine.allowedStates"));
                None
            }
            Err(_) => {
                self.problem(path, format!("unknown state \"{name}\""));
                None
            }
        }
    }

    fn validate(mut self, raw: RawPolicy, text: String, sha256: String) -> Result<Policy, PolicyError> {
        let ws = &raw.webhook_security;
        if ws.signature.algorithm != "HMAC-SHA256" {
            self.problem(
                "webhookSecurity.signature.algorithm",
                format!("unsupported algorithm \"{}\" (only HMAC-SHA256)", ws.signature.algorithm),
            );
        }
        for (path, name) in [
            ("webhookSecurity.signature.header", &ws.signature.header),
            ("webhookSecurity.replayProtection.timestampHeader", &ws.replay_protection.timestamp_header),
            ("observability.tracing.propagateHeader", &raw.observability.tracing.propagate_header),
        ] {
            if !is_header_name(name) {
                self.problem(path, format!("\"{name}\" is not a valid HTTP header name"));
            }
        }
        if ws.replay_protection.max_skew_seconds == 0 {
            self.problem("webhookSecurity.replayProtection.maxSkewSeconds", "must be greater than 0");
        }
        if ws.ip_allowlist.enabled {
            self.problem(
                "webhookSecurity.ipAllowlist.enabled",
                "IP allowlisting is not implemented by this bridge; signatures are the control (set it to false)",
            );
        }
        if let Some(o) = &raw.overrides {
            if o.reason_codes.is_empty() {
                self.problem("overrides.reasonCodes", "must list at least one reason code (or leave overrides out)");
            }
            for (i, c) in o.reason_codes.iter().enumerate() {
                if c.trim().is_empty() {
                    self.problem(format!("overrides.reasonCodes[{i}]"), "must not be empty");
                }
            }
        }
        if raw.idempotency.key_field.trim().is_empty() {
            self.problem("idempotency.keyField", "must not be empty");
        }
        if raw.idempotency.store != "event_log" {
            self.problem(
                "idempotency.store",
                format!("unsupported store \"{}\" (only event_log)", raw.idempotency.store),
            );
        }
        if raw.idempotency.on_duplicate_key != "ack-and-skip" {
            self.problem(
                "idempotency.onDuplicateKey",
                format!("unsupported behaviour \"{}\" (only ack-and-skip)", raw.idempotency.on_duplicate_key),
            );
        }
        if raw.event_log.storage != "append-only" {
            self.problem(
                "eventLog.storage",
                format!("unsupported storage \"{}\" (only append-only)", raw.event_log.storage),
            );
        }
        if raw.event_log.retention_days == 0 {
            self.problem("eventLog.retentionDays", "must be greater than 0");
        }
        for (i, f) in raw.event_log.pii_redaction.redact_fields.iter().enumerate() {
            if f.trim().is_empty() {
                self.problem(format!("eventLog.piiRedaction.redactFields[{i}]"), "must not be empty");
            }
        }
        if !raw.event_log.pii_redaction.store_hashes_only {
            self.problem(
                "eventLog.piiRedaction.storeHashesOnly",
                "must be true: this bridge never stores redacted values in clear",
            );
        }
        for (i, f) in raw.event_log.required_fields.iter().enumerate() {
            if !crate::domain::RECORD_FIELDS.contains(&f.as_str()) {
                self.problem(
                    format!("eventLog.requiredFields[{i}]"),
                    format!("unknown field \"{f}\" (known: {})", crate::domain::RECORD_FIELDS.join(", ")),
                );
            }
        }

        // State machine.
        let sm = &raw.state_machine;
        let mut states = BTreeSet::new();
        for (i, s) in sm.allowed_states.iter().enumerate() {
            match s.parse::<VerificationState>() {
                Ok(v) => {
                    if !states.insert(v) {
                        self.problem(format!("stateMachine.allowedStates[{i}]"), format!("duplicate state \"{s}\""));
                    }
                }
                Err(_) => self.problem(format!("stateMachine.allowedStates[{i}]"), format!("unknown state \"{s}\"")),
            }
        }
        if !states.contains(&VerificationState::Unverified) {
            self.problem("stateMachine.allowedStates", "must contain \"unverified\", the initial state");
        }
        let mut transitions: BTreeMap<VerificationState, BTreeSet<VerificationState>> = BTreeMap::new();
        for (i, t) in sm.allowed_transitions.iter().enumerate() {
            let from = self.state(format!("stateMachine.allowedTransitions[{i}].from"), &t.from, &states);
            for (j, to) in t.to.iter().enumerate() {
                let to_state = self.state(format!("stateMachine.allowedTransitions[{i}].to[{j}]"), to, &states);
                if let (Some(f), Some(to_state)) = (from, to_state) {
                    if f == to_state {
                        self.problem(
                            format!("stateMachine.allowedTransitions[{i}].to[{j}]"),
                            "a state cannot transition to itself",
                        );
                    }
                    transitions.entry(f).or_default().insert(to_state);
                }
            }
        }
        if let Some(cycle) = find_cycle(&transitions) {
            self.problem(
                "stateMachine.allowedTransitions",
                format!("transitions must only move forward, but {} forms a cycle", cycle),
            );
        }
        if !sm.downgrade_requires_override_event {
            self.problem(
                "stateMachine.downgradeRequiresOverrideEvent",
                "must be true: this bridge never downgrades a state without an override event",
            );
        }

        // Actions.
        let mut actions = BTreeMap::new();
        for (name, action) in &raw.actions.on_event_type {
            let base = format!("actions.onEventType.{name}");
            let Ok(event_type) = name.parse::<EventType>() else {
                self.problem(
                    base,
                    format!("unknown event type \"{name}\" (known: verification.started, verification.decision)"),
                );
                continue;
            };
            let mut fields = BTreeMap::new();
            for (field, tpl) in &action.ats_update.fields {
                match Template::parse(tpl) {
                    Ok(t) => {
                        fields.insert(field.clone(), t);
                    }
                    Err(TemplateError(msg)) => self.problem(format!("{base}.atsUpdate.fields.{field}"), msg),
                }
            }
            let Some(target_state) = fields.get(STATE_FIELD).cloned() else {
                self.problem(
                    format!("{base}.atsUpdate.fields"),
                    format!("must set \"{STATE_FIELD}\": it names the state the event moves to"),
                );
                continue;
            };
            if let Some(literal) = target_state.literal() {
                self.state(format!("{base}.atsUpdate.fields.{STATE_FIELD}"), literal, &states);
            }
            let route = match (&action.if_decision_state_is, &action.route_to_queue) {
                (Some(s), Some(r)) => {
                    let st = self.state(format!("{base}.ifDecisionStateIs"), s, &states);
                    if !(r.sla_hours.is_finite() && r.sla_hours > 0.0 && r.sla_hours <= MAX_SLA_HOURS) {
                        self.problem(
                            format!("{base}.routeToQueue.slaHours"),
                            format!("must be greater than 0 and at most {MAX_SLA_HOURS} (a year)"),
                        );
                    }
                    if r.queue.trim().is_empty() {
                        self.problem(format!("{base}.routeToQueue.queue"), "must not be empty");
                    }
                    if r.required_reason_codes.is_empty() {
                        self.problem(
                            format!("{base}.routeToQueue.requiredReasonCodes"),
                            "must list at least one reason code",
                        );
                    }
                    st.map(|s| (s, r.clone()))
                }
                (None, Some(_)) => {
                    self.problem(format!("{base}.ifDecisionStateIs"), "routeToQueue needs ifDecisionStateIs");
                    None
                }
                (Some(_), None) => {
                    self.problem(format!("{base}.routeToQueue"), "ifDecisionStateIs needs routeToQueue");
                    None
                }
                (None, None) => None,
            };
            actions.insert(event_type, CompiledAction { fields, target_state, route });
        }
        for required in [EventType::Started, EventType::Decision] {
            if !raw.actions.on_event_type.contains_key(required.as_str()) {
                self.problem("actions.onEventType", format!("missing an action for \"{}\"", required.as_str()));
            }
        }

        // Resiliency.
        let r = &raw.resiliency;
        if r.ats_write_timeout_ms == 0 || r.ats_write_timeout_ms > 600_000 {
            self.problem("resiliency.atsWriteTimeoutMs", "must be between 1 and 600000");
        }
        if r.on_ats_down.behavior != "queue-for-retry" {
            self.problem(
                "resiliency.onAtsDown.behavior",
                format!("unsupported behaviour \"{}\" (only queue-for-retry)", r.on_ats_down.behavior),
            );
        }
        if r.on_ats_down.max_retry_attempts == 0 {
            self.problem("resiliency.onAtsDown.maxRetryAttempts", "must be at least 1");
        }
        if !KNOWN_BACKOFFS.contains(&r.on_ats_down.backoff.as_str()) {
            self.problem(
                "resiliency.onAtsDown.backoff",
                format!("unknown backoff \"{}\" (known: {})", r.on_ats_down.backoff, KNOWN_BACKOFFS.join(", ")),
            );
        }
        if r.on_ats_down.candidate_facing_status.trim().is_empty() {
            self.problem("resiliency.onAtsDown.candidateFacingStatus", "must not be empty");
        }
        if let Err(e) = check_cron(&r.reconciliation.schedule) {
            self.problem("resiliency.reconciliation.schedule", e);
        }
        if r.reconciliation.mode != "diff-and-heal" {
            self.problem(
                "resiliency.reconciliation.mode",
                format!("unsupported mode \"{}\" (only diff-and-heal)", r.reconciliation.mode),
            );
        }
        if raw.controls.kill_switch.flag.trim().is_empty() {
            self.problem("controls.killSwitch.flag", "must not be empty");
        }
        if let Some(c) = &raw.controls.canary {
            if c.percent.is_some_and(|p| p > 100) {
                self.problem("controls.canary.percent", "must be 0 to 100");
            }
            if let Some(b) = c.bucket_by.as_deref()
                && !matches!(b, "requisition" | "role")
            {
                self.problem("controls.canary.bucketBy", format!("\"{b}\" is not requisition or role"));
            }
        }
        for (i, m) in raw.observability.metrics.iter().enumerate() {
            if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
                self.problem(
                    format!("observability.metrics[{i}]"),
                    format!("\"{m}\" is not a metric name (letters, digits, '.', '_')"),
                );
            }
        }

        let codes: Vec<String> = actions
            .values()
            .find_map(|a| a.route.as_ref())
            .map(|(_, r)| r.required_reason_codes.clone())
            .unwrap_or_default();
        let hiring = raw.verification.as_ref().and_then(|v| crate::hiring::check(v, &codes, &mut self.problems));
        if self.problems.is_empty() {
            Ok(Policy { raw, text, sha256, states, transitions, actions, hiring })
        } else {
            Err(PolicyError::Invalid(self.problems))
        }
    }
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn find_cycle(t: &BTreeMap<VerificationState, BTreeSet<VerificationState>>) -> Option<String> {
    fn visit(
        n: VerificationState,
        t: &BTreeMap<VerificationState, BTreeSet<VerificationState>>,
        stack: &mut Vec<VerificationState>,
    ) -> Option<String> {
        if let Some(pos) = stack.iter().position(|s| *s == n) {
            let mut cyc: Vec<&str> = stack[pos..].iter().map(|s| s.as_str()).collect();
            cyc.push(n.as_str());
            return Some(cyc.join(" -> "));
        }
        stack.push(n);
        for next in t.get(&n).into_iter().flatten() {
            if let Some(c) = visit(*next, t, stack) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    t.keys().find_map(|k| visit(*k, t, &mut Vec::new()))
}

/// A five-field cron expression with numbers, `*`, lists, ranges and steps.
fn check_cron(expr: &str) -> Result<(), String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!("\"{expr}\" is not a five-field cron expression"));
    }
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (part, (lo, hi)) in parts.iter().zip(ranges) {
        for item in part.split(',') {
            let (base, step) = match item.split_once('/') {
                Some((b, s)) => (b, Some(s)),
                None => (item, None),
            };
            if let Some(s) = step
                && s.parse::<u32>().map(|v| v == 0).unwrap_or(true)
            {
                return Err(format!("\"{expr}\": bad step in \"{item}\""));
            }
            if base == "*" {
                continue;
            }
            let nums: Vec<&str> = base.split('-').collect();
            if nums.is_empty() || nums.len() > 2 {
                return Err(format!("\"{expr}\": bad field \"{item}\""));
            }
            for n in nums {
                match n.parse::<u32>() {
                    Ok(v) if v >= lo && v <= hi => {}
                    _ => return Err(format!("\"{expr}\": \"{item}\" is outside {lo}-{hi}")),
                }
            }
        }
    }
    Ok(())
}

/// The seed policy that ships with the repo (`config/policy.yaml`).
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../config/policy.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(from: &str, to: &str) -> Vec<String> {
        let text = DEFAULT_POLICY_YAML.replacen(from, to, 1);
        assert_ne!(text, DEFAULT_POLICY_YAML, "replacement {from:?} did not apply");
        match Policy::parse(&text) {
            Ok(_) => panic!("policy with {to:?} should be invalid"),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn seed_policy_is_valid() {
        let p = Policy::parse(DEFAULT_POLICY_YAML).expect("seed policy must be valid");
        assert_eq!(p.version(), "1.3");
        assert_eq!(p.max_skew_seconds(), 300);
        assert_eq!(p.max_retry_attempts(), 12);
        assert_eq!(p.ats_write_timeout_ms(), 4000);
        assert_eq!(p.redact_fields().len(), 3);
        assert!(p.review_route(VerificationState::NeedsReview).is_some());
    }

    #[test]
    fn unknown_state_in_transition_names_the_path() {
        let p =
            broken("to: [\"verified\", \"needs_review\", \"failed\"]", "to: [\"done\", \"needs_review\", \"failed\"]");
        assert_eq!(p, vec!["stateMachine.allowedTransitions[1].to[0]: unknown state \"done\"".to_owned()]);
    }

    #[test]
    fn misspelt_key_is_rejected_with_its_path() {
        let p = broken("maxSkewSeconds: 300", "maxSkewSecond: 300");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("webhookSecurity.replayProtection"), "{p:?}");
        assert!(p[0].contains("maxSkewSecond"), "{p:?}");
    }

    #[test]
    fn wrong_type_is_rejected_with_its_path() {
        let p = broken("maxRetryAttempts: 12", "maxRetryAttempts: twelve");
        assert!(p[0].starts_with("resiliency.onAtsDown.maxRetryAttempts"), "{p:?}");
    }

    #[test]
    fn cycle_is_rejected() {
        let p = broken(
            "- from: \"needs_review\"\n      to: [\"verified\", \"failed\"]",
            "- from: \"needs_review\"\n      to: [\"pending\", \"failed\"]",
        );
        assert!(p.iter().any(|m| m.contains("cycle")), "{p:?}");
    }

    #[test]
    fn unknown_template_variable_is_rejected() {
        let p = broken("\"${evidence_pack_url}\"", "\"${evidence_pack}\"");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("actions.onEventType.verification.decision.atsUpdate.fields.evidence_pack_url"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_cron_and_backoff_are_reported_together() {
        let text = DEFAULT_POLICY_YAML.replacen("\"0 2 * * *\"", "\"0 25 * * *\"", 1).replacen(
            "\"exponential-jitter\"",
            "\"exponentail\"",
            1,
        );
        let e = Policy::parse(&text).unwrap_err();
        let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["resiliency.onAtsDown.backoff", "resiliency.reconciliation.schedule"]);
    }

    #[test]
    fn zero_skew_and_unknown_required_field() {
        let text = DEFAULT_POLICY_YAML.replacen("maxSkewSeconds: 300", "maxSkewSeconds: 0", 1).replacen(
            "- trace_id",
            "- trace",
            1,
        );
        let e = Policy::parse(&text).unwrap_err();
        let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["webhookSecurity.replayProtection.maxSkewSeconds", "eventLog.requiredFields[9]"]);
    }

    #[test]
    fn not_yaml_is_reported() {
        let e = Policy::parse("policyVersion: [").unwrap_err();
        assert_eq!(e.problems().len(), 1);
    }

    #[test]
    fn sla_may_be_fractional_and_overrides_have_their_own_codes() {
        let p = Policy::parse(DEFAULT_POLICY_YAML).unwrap();
        assert_eq!(p.override_reason_codes(), p.review_reason_codes(), "without the extension: the review list");
        assert_eq!(p.review_reason_codes().len(), 4);
        let text = DEFAULT_POLICY_YAML.replacen("slaHours: 12", "slaHours: 0.0005", 1)
            + "overrides:\n  reasonCodes: [\"provider-error\", \"candidate-appeal\"]\n";
        let p = Policy::parse(&text).unwrap();
        let route = p.review_route(VerificationState::NeedsReview).unwrap();
        assert_eq!(sla_duration(route.sla_hours), std::time::Duration::from_millis(1800));
        assert_eq!(p.override_reason_codes(), ["provider-error", "candidate-appeal"]);
        let bad = DEFAULT_POLICY_YAML.replacen("slaHours: 12", "slaHours: -1", 1) + "overrides:\n  reasonCodes: []\n";
        let e = Policy::parse(&bad).unwrap_err();
        let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["overrides.reasonCodes", "actions.onEventType.verification.decision.routeToQueue.slaHours"]
        );
    }
}
