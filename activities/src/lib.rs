//! Activities: the only place the workflow touches the outside world.
//!
//! `AtsActivities::write_verification` is the generic REST ATS connector of
//! CONTRACT §4. It classifies every failure:
//! - 2xx: written;
//! - 408, 429, 5xx, timeouts, connection errors: retryable, with a delay
//!   (Retry-After when the ATS sends one, else deterministic jittered backoff);
//! - any other 4xx: [`PERMANENT_REJECTION`], non-retryable, so Temporal stops
//!   retrying and the workflow records a failed write.

pub mod connector;
pub mod hiring;
pub mod interviews;
mod reconcile;
pub mod retention;
mod review;

pub use reconcile::*;
pub use review::*;

use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use vbridge_core::record::RecordKind;
// What the workflows see of these activities (names, failure types, the
// records both sides build) is in `vbridge-activity-defs`; re-exported here
// for the worker.
use vbridge_activity_defs::marker;
pub use vbridge_activity_defs::{
    AUDIT_APPEND_FAILED, ESCALATION_REJECTED, PERMANENT_REJECTION, RECONCILE_READ_FAILED, RECONCILE_REPORT_FAILED,
    SEED_READ_FAILED, TRANSIENT_FAILURE, check_of_target, entry_record, write_target, written_entry,
};
use vbridge_proto::{
    AtsWriteRequest, AtsWriteResult, DecisionBatch, DecisionRecord, Drift, EscalationRequest, EscalationResult,
    ExpectedWrite, ReconcilePage, ReconcilePageRequest, ReconcileProgress, SeedRequest, Snapshot, StateView,
};

/// Where decision records go: the append-only audit log. Appending a record
/// whose `record_id` is already there is a no-op, so retries never duplicate.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String>;
    /// Every record of one verification, in the order they were stored.
    async fn records_of(&self, candidate_id: &str, application_id: &str) -> Result<Vec<DecisionRecord>, String>;
}

/// Appends the workflow's decision records to the audit log.
pub struct AuditActivities {
    pub sink: Arc<dyn AuditSink>,
}

#[activities]
impl AuditActivities {
    #[activity(definition = marker::AppendDecisions)]
    #[tracing::instrument(skip_all, fields(records = batch.records.len(), trace_id = batch.records.first().map(|r| r.trace_id.as_str()).unwrap_or("")))]
    pub async fn append_decisions(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch: DecisionBatch,
    ) -> Result<(), ActivityError> {
        self.sink.append(batch.records).await.map_err(|e| {
            tracing::warn!(error = %e, "audit append failed; Temporal retries it");
            ActivityError::application(ApplicationFailure::builder(e).type_name(AUDIT_APPEND_FAILED.to_owned()).build())
        })
    }

    /// The state a reopened verification starts from, read back from its
    /// audit log (the projection of every run before it).
    #[activity(definition = marker::Seed)]
    #[tracing::instrument(skip_all, fields(candidate_id = %req.candidate_id, application_id = %req.application_id))]
    pub async fn seed(self: Arc<Self>, _ctx: ActivityContext, req: SeedRequest) -> Result<Snapshot, ActivityError> {
        let records = self.sink.records_of(&req.candidate_id, &req.application_id).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the audit log to reopen a verification; Temporal retries it");
            ActivityError::application(ApplicationFailure::builder(e).type_name(SEED_READ_FAILED.to_owned()).build())
        })?;
        let seed = seed_snapshot(&records, SEED_EVENT_IDS);
        tracing::info!(state = %seed.view.as_ref().map(|v| v.state.as_str()).unwrap_or(""), records = records.len(), "verification reopened from its audit log");
        Ok(seed)
    }
}

/// Event ids a seed carries for deduplication (the workflow keeps as many).
pub const SEED_EVENT_IDS: usize = 1000;

/// What a verification's audit log says its workflow held: the state and the
/// last applied event, the applied count, and the latest `keep_ids` event ids
/// it saw. Nothing is owed (a verification closes only at rest).
pub fn seed_snapshot(records: &[DecisionRecord], keep_ids: usize) -> Snapshot {
    let decisions = || {
        records.iter().filter(|r| {
            matches!(RecordKind::of(&r.kind), Some(RecordKind::Applied | RecordKind::Skipped | RecordKind::Refused))
        })
    };
    let mut view = StateView::default();
    for r in records {
        let Some(kind) = RecordKind::of(&r.kind) else { continue };
        match kind {
            RecordKind::Applied => {
                view.state = r.state_after.clone();
                view.last_event_id = r.event_id.clone();
                view.last_occurred_at = r.occurred_at.clone();
                view.applied_events += 1;
            }
            // Human moves change the state too, but no event clock.
            RecordKind::ReviewDecided | RecordKind::Override => view.state = r.state_after.clone(),
            RecordKind::AtsWrite => {
                if let Some(check) = check_of_target(&r.write_targets) {
                    view.verification_check_id = check.to_owned();
                }
            }
            _ => {}
        }
    }
    // The latest distinct ids, oldest first.
    let mut distinct = std::collections::HashSet::new();
    let mut seen: Vec<String> = decisions()
        .rev()
        .filter(|r| !r.event_id.is_empty() && distinct.insert(r.event_id.as_str()))
        .take(keep_ids)
        .map(|r| r.event_id.clone())
        .collect();
    seen.reverse();
    Snapshot { view: Some(view), seen_event_ids: seen, ..Default::default() }
}

/// Counters the connector keeps (exported as `ats.write.failure.count` etc.).
pub struct AtsMetrics {
    pub writes_ok: prometheus::IntCounter,
    pub write_failures: prometheus::IntCounter,
    pub permanent_rejections: prometheus::IntCounter,
    /// How long the ATS took to answer a write attempt, by connector.
    pub write_seconds: prometheus::HistogramVec,
}

impl Default for AtsMetrics {
    fn default() -> AtsMetrics {
        let counter = |name: &str, help: &str| prometheus::IntCounter::new(name, help).expect("a valid metric name");
        AtsMetrics {
            // `ats.write.failure.count`: the policy's name (CONTRACT §5).
            write_failures: counter("ats_write_failure_count", "ATS write attempts that failed (retryable or not)"),
            writes_ok: counter("vbridge_ats_write_ok_count", "ATS writes the ATS took"),
            permanent_rejections: counter(
                "vbridge_ats_write_permanent_rejection_count",
                "ATS writes refused for good (dead letters)",
            ),
            write_seconds: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new(
                    "vbridge_ats_write_duration_seconds",
                    "How long the ATS took to answer one write attempt",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["connector"],
            )
            .expect("a valid histogram"),
        }
    }
}

/// How the connector reaches the ATS.
#[derive(Debug, Clone)]
pub struct AtsConfig {
    pub base_url: String,
    /// Bearer token (from OAuth2 client credentials) when configured.
    pub bearer_token: Option<String>,
    pub kind: AtsKind,
    /// Policy field → ATS key (empty: the policy's names).
    pub field_map: connector::FieldMap,
}

/// Which connector (`VBRIDGE_ATS_KIND`), with what it alone needs.
#[derive(Debug, Clone, Default)]
pub enum AtsKind {
    /// CONTRACT §4, at `base_url`.
    #[default]
    Generic,
    /// A signed push to `base_url` (Standard Webhooks, this secret).
    Webhook {
        secret: vbridge_core::intake::signature::Secret,
    },
    Greenhouse(GreenhouseConfig),
    Ashby {
        api_url: String,
        api_key: Redacted,
    },
    Lever {
        api_url: String,
        api_key: Redacted,
        perform_as: String,
        tag_fields: Vec<String>,
    },
}

impl AtsKind {
    /// The name `VBRIDGE_ATS_KIND` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            AtsKind::Generic => "generic",
            AtsKind::Webhook { .. } => "webhook",
            AtsKind::Greenhouse(_) => "greenhouse",
            AtsKind::Ashby { .. } => "ashby",
            AtsKind::Lever { .. } => "lever",
        }
    }
}

/// A secret that never prints (Debug shows `(redacted)`); read from the
/// configuration as the plain string it wraps.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Greenhouse Harvest: where, and which credentials (v3 or v1).
#[derive(Debug, Clone)]
pub struct GreenhouseConfig {
    pub api_url: String,
    pub auth_url: String,
    pub credentials: GreenhouseCredentials,
    /// Greenhouse's rate-limit window (v3: 30 s, v1: 10 s; settable for tests).
    pub rate_window: Duration,
    /// How long a refused v3 token is waited on (`connector::oauth`).
    pub token_quiet: Duration,
}

#[derive(Debug, Clone)]
pub enum GreenhouseCredentials {
    /// Harvest v3: OAuth2 client credentials, acting as `user_id` (`sub`).
    OAuth { client_id: String, client_secret: Redacted, user_id: String },
    /// Harvest v1: the API key, writes `On-Behalf-Of` this user.
    ApiKey { api_key: Redacted, on_behalf_of: String },
}

impl AtsConfig {
    /// The connector this configuration names. Build it once per process:
    /// it holds the token cache and the rate limiter.
    pub fn connector(&self) -> Arc<dyn connector::Connector> {
        let inner = self.bare_connector();
        if self.field_map.0.is_empty() {
            inner
        } else {
            Arc::new(connector::Mapped { inner, map: self.field_map.clone() })
        }
    }

    fn bare_connector(&self) -> Arc<dyn connector::Connector> {
        // No redirects: an ATS API that redirects a write is misconfigured,
        // and credentials must not follow a redirect elsewhere.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building the HTTP client");
        use connector::limit::Limiter;
        match &self.kind {
            AtsKind::Generic => Arc::new(connector::GenericRest {
                client,
                base_url: self.base_url.clone(),
                bearer_token: self.bearer_token.clone(),
            }),
            AtsKind::Webhook { secret } => {
                Arc::new(connector::SignedWebhook { client, url: self.base_url.clone(), secret: secret.clone() })
            }
            AtsKind::Greenhouse(g) => {
                let auth = match &g.credentials {
                    GreenhouseCredentials::OAuth { client_id, client_secret, user_id } => {
                        connector::greenhouse::Auth::V3 {
                            tokens: connector::oauth::TokenSource::new(
                                client.clone(),
                                client_id.clone(),
                                client_secret.0.clone(),
                                g.auth_url.clone(),
                                vec![("sub".into(), user_id.clone())],
                                g.token_quiet,
                            ),
                            user_id: user_id.clone(),
                        }
                    }
                    GreenhouseCredentials::ApiKey { api_key, on_behalf_of } => connector::greenhouse::Auth::V1 {
                        api_key: api_key.0.clone(),
                        on_behalf_of: on_behalf_of.clone(),
                    },
                };
                Arc::new(connector::greenhouse::Greenhouse {
                    client,
                    api_url: g.api_url.clone(),
                    auth,
                    limiter: Limiter::adaptive(connector::greenhouse::INITIAL_LIMIT, g.rate_window),
                })
            }
            AtsKind::Ashby { api_url, api_key } => Arc::new(connector::ashby::Ashby {
                client,
                api_url: api_url.clone(),
                api_key: api_key.0.clone(),
                // Ashby publishes no per-key pace: follow its headers if it
                // sends them, and its 429s.
                limiter: Limiter::adaptive(connector::ashby::INITIAL_LIMIT, Duration::from_secs(1)),
            }),
            AtsKind::Lever { api_url, api_key, perform_as, tag_fields } => Arc::new(connector::lever::Lever {
                client,
                api_url: api_url.clone(),
                api_key: api_key.0.clone(),
                perform_as: perform_as.clone(),
                tag_fields: tag_fields.iter().cloned().collect(),
                limiter: Limiter::fixed(connector::lever::PER_SECOND, connector::lever::BURST),
            }),
        }
    }
}

pub struct AtsActivities {
    connector: Arc<dyn connector::Connector>,
    pub metrics: Arc<AtsMetrics>,
    /// Every attempt and its result goes to the audit log when set.
    pub audit: Option<Arc<dyn AuditSink>>,
}

impl AtsActivities {
    pub fn new(
        connector: Arc<dyn connector::Connector>,
        metrics: Arc<AtsMetrics>,
        audit: Option<Arc<dyn AuditSink>>,
    ) -> AtsActivities {
        AtsActivities { connector, metrics, audit }
    }

    /// Append records to the audit log; whether they are stored.
    async fn log(&self, records: Vec<DecisionRecord>, what: &str) -> bool {
        let Some(sink) = &self.audit else { return false };
        match sink.append(records).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not log {what}; the workflow logs it later");
                false
            }
        }
    }
}

/// The `ats_attempt` record of one attempt, its id from the write's
/// idempotency key and the attempt.
fn attempt_record(req: &AtsWriteRequest, attempt: u32, result: &str, reason: String) -> DecisionRecord {
    let id = Sha256::digest(format!("ats-attempt\n{}\n{attempt}", req.idempotency_key).as_bytes());
    DecisionRecord {
        record_id: format!("att-{}", hex::encode(&id[..20])),
        recorded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kind: RecordKind::AtsAttempt.into(),
        candidate_id: req.candidate_id.clone(),
        application_id: req.application_id.clone(),
        event_id: req.event_id.clone(),
        idempotency_key: req.idempotency_key.clone(),
        state_after: req.fields.get("verification_state").cloned().unwrap_or_default(),
        reason,
        write_targets: write_target(req),
        delivery_attempt: attempt,
        processing_result: result.into(),
        trace_id: req.trace_id.clone(),
        ..Default::default()
    }
}

/// Characters escaped in one path segment: everything but RFC 3986's
/// unreserved set, so no id can add a segment, a query or a fragment.
pub(crate) const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The path of one verification check in the ATS (CONTRACT §4), each id
/// percent-encoded as one segment. (Ids that are `.` or `..`, which a URL
/// parser would still walk, are refused at intake.)
pub fn check_url(base: &str, application_id: &str, check_id: &str) -> String {
    let seg = |s| percent_encoding::utf8_percent_encode(s, SEGMENT);
    format!("{}/applications/{}/verification-checks/{}", base.trim_end_matches('/'), seg(application_id), seg(check_id))
}

/// The most a `Retry-After` can make a write wait before its next attempt.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(15 * 60);

/// `Retry-After` as delay-seconds or as an HTTP-date, capped at
/// [`RETRY_AFTER_CAP`]; a date in the past means now.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v).ok()?.duration_since(now).unwrap_or_default(),
    };
    Some(d.min(RETRY_AFTER_CAP))
}

/// Exponential backoff with deterministic jitter: the delay depends only on the
/// write's idempotency key and the attempt, so a replay or a second worker
/// computes the same schedule, while different writes spread out.
pub fn backoff_delay(req: &AtsWriteRequest, attempt: u32, initial_ms: u64, max_ms: u64, jitter: bool) -> Duration {
    let exp = initial_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max_ms.max(initial_ms));
    if !jitter {
        return Duration::from_millis(capped);
    }
    let h = Sha256::digest(format!("{}#{}", req.idempotency_key, attempt).as_bytes());
    let frac = u16::from_be_bytes([h[0], h[1]]) as u64; // 0..65535
    // "Equal jitter": half fixed, half spread, never below half the base delay.
    let half = capped / 2;
    Duration::from_millis(half + (half * frac) / 65_535)
}

fn transient(message: String, delay: Duration) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message).type_name(TRANSIENT_FAILURE.to_owned()).next_retry_delay(delay).build(),
    )
}

#[activities]
impl AtsActivities {
    /// PUT the templated fields into the ATS. Idempotent: the same
    /// `Idempotency-Key` is sent on every retry of one write.
    #[activity(definition = marker::WriteVerification)]
    #[tracing::instrument(skip_all, fields(trace_id = %req.trace_id, event_id = %req.event_id, attempt = ctx.info().attempt))]
    pub async fn write_verification(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: AtsWriteRequest,
    ) -> Result<AtsWriteResult, ActivityError> {
        let attempt = ctx.info().attempt.max(1);
        // The decisions that led here go to the log before the ATS sees the
        // write (on every attempt: an append of stored ids is a no-op).
        let records_logged = !req.records.is_empty() && self.log(req.records.clone(), "the decisions").await;
        let backoff =
            backoff_delay(&req, attempt, req.backoff_initial_ms as u64, req.backoff_max_ms as u64, req.backoff_jitter);
        let call = connector::Call { req: &req, timeout: Duration::from_millis(req.timeout_ms.max(1) as u64) };
        let started = std::time::Instant::now();
        let outcome = self.connector.write(call).await;
        if !matches!(outcome, connector::Outcome::Held { .. }) {
            let seconds = started.elapsed().as_secs_f64();
            self.metrics.write_seconds.with_label_values(&[self.connector.kind()]).observe(seconds);
        }
        let status = match outcome {
            connector::Outcome::Written { status } => status,
            connector::Outcome::Retry { reason, message, delay } => {
                self.metrics.write_failures.inc();
                let delay = delay.unwrap_or(backoff);
                tracing::warn!(%reason, delay_ms = delay.as_millis() as u64, connector = self.connector.kind(), "ATS write failed; will retry");
                self.log(vec![attempt_record(&req, attempt, "retryable", reason)], "the attempt").await;
                return Err(transient(message, delay));
            }
            connector::Outcome::Held { delay } => {
                // Not an ATS failure: no failure counted, but the attempt is
                // in the log, so the timeline explains the wait.
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    connector = self.connector.kind(),
                    "ATS write held under the client-side rate limit"
                );
                let reason = format!("held {} ms under the ATS's rate limit", delay.as_millis());
                self.log(vec![attempt_record(&req, attempt, "held", reason.clone())], "the attempt").await;
                return Err(transient(reason, delay));
            }
            connector::Outcome::Refused { status, body } => {
                self.metrics.write_failures.inc();
                self.metrics.permanent_rejections.inc();
                tracing::error!(status, body = %body, connector = self.connector.kind(), "ATS rejected the write permanently");
                self.log(
                    vec![attempt_record(&req, attempt, "rejected", format!("HTTP {status}: {body}"))],
                    "the attempt",
                )
                .await;
                return Err(ActivityError::application(
                    ApplicationFailure::builder(format!("ATS rejected the write with {status}: {body}"))
                        .type_name(PERMANENT_REJECTION.to_owned())
                        .non_retryable(true)
                        .build(),
                ));
            }
        };
        {
            self.metrics.writes_ok.inc();
            tracing::info!(status, "ATS write done");
            let mut done = AtsWriteResult {
                http_status: status as u32,
                attempt,
                target: write_target(&req),
                records_logged,
                write_logged: false,
            };
            let mut records = vec![attempt_record(&req, attempt, "written", format!("HTTP {status}"))];
            if !req.write_record_id.is_empty() {
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let entry = written_entry(&req, &done, at);
                records.push(entry_record(&entry, req.write_record_id.clone(), &req.candidate_id, &req.application_id));
            }
            let logged = self.log(records, "the write").await;
            done.write_logged = logged && !req.write_record_id.is_empty();
            Ok(done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_ats_path() {
        let u = check_url("http://ats/", "app/../../admin", "chk?x=1#f");
        assert_eq!(u, "http://ats/applications/app%2F..%2F..%2Fadmin/verification-checks/chk%3Fx%3D1%23f");
        let parsed = reqwest::Url::parse(&u).unwrap();
        assert_eq!(parsed.path_segments().unwrap().count(), 4);
        assert_eq!(check_url("http://ats", "a.b-c_d~", "k"), "http://ats/applications/a.b-c_d~/verification-checks/k");
    }

    #[test]
    fn a_seed_is_what_the_audit_log_says_the_workflow_held() {
        let rec = |kind: &str, event: &str, after: &str| DecisionRecord {
            kind: kind.into(),
            event_id: event.into(),
            state_after: after.into(),
            occurred_at: format!("at-{event}"),
            ..Default::default()
        };
        let records = vec![
            rec("applied", "e1", "pending"),
            rec("ats_attempt", "e1", "pending"),
            rec("ats_write", "e1", "pending"),
            rec("skipped", "e1", ""),
            rec("applied", "e2", "verified"),
            rec("refused", "e3", ""),
            DecisionRecord {
                write_targets: "application/a/verification-check/chk-9".into(),
                ..rec("ats_write", "e2", "verified")
            },
            rec("override", "", "failed"),
        ];
        let seed = seed_snapshot(&records, 2);
        let view = seed.view.unwrap();
        assert_eq!((view.state.as_str(), view.applied_events), ("failed", 2), "an override moves the state too");
        assert_eq!(view.verification_check_id, "chk-9", "where a human move's write goes");
        assert_eq!((view.last_event_id.as_str(), view.last_occurred_at.as_str()), ("e2", "at-e2"));
        assert_eq!(seed.seen_event_ids, vec!["e2", "e3"], "the latest ids, once each, bounded");
        assert!(seed.pending.is_empty() && seed.timeline.is_empty());
        let empty = seed_snapshot(&[], 10);
        assert_eq!(empty.view.unwrap().state, "", "nothing logged: the workflow starts as new");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_deterministic_bounded_and_spread() {
        let a = AtsWriteRequest { idempotency_key: "k1".into(), ..Default::default() };
        let b = AtsWriteRequest { idempotency_key: "k2".into(), ..Default::default() };
        for attempt in 1..15 {
            let d = backoff_delay(&a, attempt, 1000, 60_000, true);
            assert_eq!(d, backoff_delay(&a, attempt, 1000, 60_000, true));
            let base = backoff_delay(&a, attempt, 1000, 60_000, false);
            assert!(d <= base && d >= base / 2, "attempt {attempt}: {d:?} vs {base:?}");
        }
        assert_eq!(backoff_delay(&a, 1, 1000, 60_000, false), Duration::from_millis(1000));
        assert_eq!(backoff_delay(&a, 3, 1000, 60_000, false), Duration::from_millis(4000));
        assert_eq!(backoff_delay(&a, 30, 1000, 60_000, false), Duration::from_millis(60_000));
        let spread = (1..10)
            .filter(|n| backoff_delay(&a, *n, 1000, 60_000, true) != backoff_delay(&b, *n, 1000, 60_000, true))
            .count();
        assert!(spread >= 8, "different writes should get different jitter");
    }
}
