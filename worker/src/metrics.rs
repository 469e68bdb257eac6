//! Metrics, exported in the Prometheus text format at `GET /metrics`, through
//! the `prometheus` crate (the client the Temporal SDK already builds).
//!
//! The policy's `observability.metrics` are exposed under their docs/contract.md §5
//! names (dots become underscores; the median is a histogram's):
//! `webhook_signature_invalid_count`, `webhook_duplicate_event_count`,
//! `ats_write_failure_count`, `manual_review_queue_depth`,
//! `time_apply_to_verified` (seconds, first event → `verified`, by the
//! provider's `occurred_at`). The contract's `provider_reversal_count` (§7)
//! keeps its name too. The bridge's own metrics carry `vbridge_`.
//! docs/observability.md lists them all.

use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::{Arc, LazyLock};
use vbridge_activities::{AtsMetrics, ReviewMetrics};
use vbridge_core::Policy;

/// A counter: a handle on a registered Prometheus counter.
#[derive(Debug, Clone)]
pub struct Counter(IntCounter);

impl Counter {
    fn new(name: &str, help: &str) -> Counter {
        Counter(IntCounter::new(name, help).expect("a valid metric name"))
    }
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Seconds from a verification's first event to its move into `verified`:
/// observed by the store once the `applied` record is committed (in
/// whichever process appends it).
/// Interviews whose time came, and those of them with the verification
/// verified by then: `verified_before_interview_ratio` is their ratio (a
/// recording rule in deploy/prometheus/alerts.yml). Observed by the store
/// once the `interview_reached` record is committed.
pub static INTERVIEWS_REACHED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("interviews_reached_count", "interviews whose time came (the hiring loop)").expect("a valid metric")
});
pub static INTERVIEWS_REACHED_VERIFIED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("interviews_reached_verified_count", "interviews whose time came with the candidate verified")
        .expect("a valid metric")
});

pub static APPLY_TO_VERIFIED: LazyLock<Histogram> = LazyLock::new(|| {
    // Minutes to weeks: identity checks take from seconds to days.
    let buckets = vec![10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 86_400.0, 3.0 * 86_400.0, 7.0 * 86_400.0];
    Histogram::with_opts(
        HistogramOpts::new(
            "time_apply_to_verified",
            "seconds from a verification's first event to verified (policy metric time.apply_to_verified.median)",
        )
        .buckets(buckets),
    )
    .expect("a valid histogram")
});

/// Provider reversals recorded (docs/contract.md §7): a decided verification
/// its provider moved to another decision, held for an admin. Counted by the
/// store once the `provider_reversal` record is committed (in whichever
/// process appends it), so a retried append never counts twice.
pub static PROVIDER_REVERSALS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "provider_reversal_count",
        "decided verifications their provider moved backwards, held for an admin (contract §7)",
    )
    .expect("a valid metric")
});

/// The store writer's groups whose deliveries went in one statement per
/// table, and those run again one by one after the bulk attempt failed (a
/// key taken by another instance meanwhile, or a row the database refused).
pub static STORE_BULK_GROUPS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("vbridge_store_bulk_group_count", "writer groups whose deliveries were written in bulk")
        .expect("a valid metric")
});
pub static STORE_BULK_FALLBACKS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "vbridge_store_bulk_fallback_count",
        "writer groups run again one by one after their bulk write failed (a key race, a refused row)",
    )
    .expect("a valid metric")
});

/// Candidates erased (docs/privacy.md), by any trigger.
pub static ERASURES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("candidate_erasure_count", "candidates whose personal data was erased (crypto-shredding)")
        .expect("a valid metric")
});

/// The apply → verified time of a verification whose events happened at
/// `times`, verified by the event of `verified_at` (RFC 3339 texts).
pub fn apply_to_verified_seconds(times: &[String], verified_at: &str) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let first = times.iter().filter_map(|t| parse(t)).min()?;
    let end = parse(verified_at)?;
    Some(((end - first).num_milliseconds().max(0) as f64) / 1000.0)
}

/// Distinct (role, region) pairs the bypass counter names at most.
pub const BYPASS_JOBS_KEEP: usize = 50;
/// The longest label value taken from the ATS.
pub const LABEL_CHARS: usize = 64;

pub struct Metrics {
    registry: Registry,
    /// Webhook requests by result (`vbridge_webhook_requests_total{result}`).
    webhooks: IntCounterVec,
    /// The real providers' deliveries by provider and result
    /// (`vbridge_provider_webhook_requests_total{provider,result}`).
    provider_webhooks: IntCounterVec,
    pub signature_invalid: Counter,
    pub duplicate_event: Counter,
    pub accepted: Counter,
    pub ignored: Counter,
    pub rejected: Counter,
    pub relay_forwarded: Counter,
    pub relay_errors: Counter,
    pub relay_signals: Counter,
    /// Rows nobody waits on (refused or duplicate deliveries) dropped because
    /// their bounded queue was full. Accepted rows are never dropped.
    pub deferred_rows_dropped: Counter,
    /// Webhook requests shed at the in-flight bound, or timed out.
    pub http_shed: Counter,
    pub http_timed_out: Counter,
    /// Operator API requests without a valid credential, or with the wrong role.
    pub api_unauthenticated: Counter,
    pub api_forbidden: Counter,
    /// Refusals not recorded in the audit log because too many appends of
    /// refusals were in flight (a flood).
    pub api_denials_unlogged: Counter,
    pub ats: Arc<AtsMetrics>,
    /// Review SLA escalations and breaches (counted by the escalation activity).
    pub review: ReviewMetrics,
    /// Accepted `needs_review` deliveries with no reason code, or an unlisted one.
    pub review_unlisted_reason_code: Counter,
    /// Reviewer decisions and overrides applied through the API.
    pub review_decisions: Counter,
    pub overrides: Counter,
    /// Interviews the ATS booked while the application's gate was closed
    /// (docs/contract.md §8: `interview_scheduled_unverified_count`).
    pub interview_unverified: Counter,
    /// The same bypasses by the application's role and region, bounded
    /// ([`BYPASS_JOBS_KEEP`] pairs, then `other`).
    interview_unverified_by_job: IntCounterVec,
    bypass_jobs: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// Interview-gate answers, by reason.
    gate_requests: IntCounterVec,
    queue_depth: IntGauge,
    overdue: IntGauge,
    relay_lag: Gauge,
    /// Where the Temporal SDK's exporter serves its worker metrics (set when
    /// the worker starts); `/metrics` appends them.
    pub sdk_exporter: std::sync::OnceLock<std::net::SocketAddr>,
}

/// Values read at scrape time from the store.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Open manual-review items (the queue projection); `None`: unreadable.
    pub review_queue_depth: Option<u64>,
    pub review_overdue: Option<u64>,
    /// Age of the oldest committed event not yet forwarded to Temporal
    /// (0 when none is waiting); `None`: unreadable.
    pub relay_lag_seconds: Option<f64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let webhooks = IntCounterVec::new(
            Opts::new("vbridge_webhook_requests_total", "webhook deliveries by result"),
            &["result"],
        )
        .expect("a valid metric");
        let result = |r: &str| Counter(webhooks.with_label_values(&[r]));
        let m = Metrics {
            registry: Registry::new(),
            signature_invalid: Counter::new(
                "webhook_signature_invalid_count",
                "webhooks refused for their signature or timestamp (policy metric webhook.signature_invalid.count)",
            ),
            duplicate_event: Counter::new(
                "webhook_duplicate_event_count",
                "deliveries of an event already taken (policy metric webhook.duplicate_event.count)",
            ),
            accepted: result("accepted"),
            ignored: result("ignored"),
            rejected: result("rejected"),
            webhooks,
            provider_webhooks: IntCounterVec::new(
                Opts::new(
                    "vbridge_provider_webhook_requests_total",
                    "provider webhook deliveries by provider and result",
                ),
                &["provider", "result"],
            )
            .expect("a valid metric"),
            relay_forwarded: Counter::new("vbridge_relay_forwarded_count", "events forwarded to Temporal"),
            relay_errors: Counter::new("vbridge_relay_error_count", "relay rounds that failed"),
            relay_signals: Counter::new(
                "vbridge_relay_signal_count",
                "signals the relay sent to Temporal (one event, or a batch of one verification's)",
            ),
            deferred_rows_dropped: Counter::new(
                "vbridge_store_deferred_rows_dropped_count",
                "refused or duplicate delivery rows dropped at a full queue",
            ),
            http_shed: Counter::new("vbridge_http_shed_count", "webhook requests shed at the in-flight bound"),
            http_timed_out: Counter::new(
                "vbridge_http_timed_out_count",
                "requests (webhook, operator API, console) past their request timeout",
            ),
            api_unauthenticated: Counter::new(
                "vbridge_api_unauthenticated_count",
                "operator API requests without a valid credential",
            ),
            api_forbidden: Counter::new("vbridge_api_forbidden_count", "operator API requests with the wrong role"),
            api_denials_unlogged: Counter::new(
                "vbridge_api_denials_unlogged_count",
                "refusals whose window could not be appended to the audit log (a store outage at the flush)",
            ),
            ats: Arc::new(AtsMetrics::default()),
            review: ReviewMetrics::default(),
            review_unlisted_reason_code: Counter::new(
                "vbridge_manual_review_unlisted_reason_code_count",
                "needs_review deliveries without a listed reason code",
            ),
            review_decisions: Counter::new("vbridge_manual_review_decision_count", "reviewer decisions applied"),
            overrides: Counter::new("vbridge_override_count", "overrides applied"),
            interview_unverified: Counter::new(
                "interview_scheduled_unverified_count",
                "interviews booked while the application's interview gate was closed (gate bypasses)",
            ),
            interview_unverified_by_job: IntCounterVec::new(
                Opts::new(
                    "interview_scheduled_unverified_by_job_count",
                    "gate bypasses by the application's role and region (the first 50 pairs; then other)",
                ),
                &["role", "region"],
            )
            .expect("a valid metric"),
            bypass_jobs: Default::default(),
            gate_requests: IntCounterVec::new(
                Opts::new("vbridge_gate_requests_total", "interview-gate answers by reason"),
                &["reason"],
            )
            .expect("a valid metric"),
            queue_depth: IntGauge::new(
                "manual_review_queue_depth",
                "open manual-review items (policy metric manual_review.queue.depth)",
            )
            .expect("a valid metric"),
            overdue: IntGauge::new("vbridge_manual_review_overdue", "open review items past their SLA").expect("valid"),
            relay_lag: Gauge::new(
                "vbridge_relay_lag_seconds",
                "age of the oldest committed event not yet forwarded to Temporal",
            )
            .expect("a valid metric"),
            sdk_exporter: Default::default(),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.webhooks.clone()),
            Box::new(m.provider_webhooks.clone()),
            Box::new(m.signature_invalid.0.clone()),
            Box::new(m.duplicate_event.0.clone()),
            Box::new(m.relay_forwarded.0.clone()),
            Box::new(m.relay_errors.0.clone()),
            Box::new(m.relay_signals.0.clone()),
            Box::new(m.deferred_rows_dropped.0.clone()),
            Box::new(m.http_shed.0.clone()),
            Box::new(m.http_timed_out.0.clone()),
            Box::new(m.api_unauthenticated.0.clone()),
            Box::new(m.api_forbidden.0.clone()),
            Box::new(m.api_denials_unlogged.0.clone()),
            Box::new(m.ats.writes_ok.clone()),
            Box::new(m.ats.write_failures.clone()),
            Box::new(m.ats.permanent_rejections.clone()),
            Box::new(m.ats.write_seconds.clone()),
            Box::new(m.review.escalations.clone()),
            Box::new(m.review.sla_breaches.clone()),
            Box::new(m.review_unlisted_reason_code.0.clone()),
            Box::new(m.review_decisions.0.clone()),
            Box::new(m.overrides.0.clone()),
            Box::new(m.interview_unverified.0.clone()),
            Box::new(m.interview_unverified_by_job.clone()),
            Box::new(m.gate_requests.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.overdue.clone()),
            Box::new(m.relay_lag.clone()),
            Box::new(APPLY_TO_VERIFIED.clone()),
            Box::new(PROVIDER_REVERSALS.clone()),
            Box::new(INTERVIEWS_REACHED.clone()),
            Box::new(INTERVIEWS_REACHED_VERIFIED.clone()),
            Box::new(ERASURES.clone()),
            Box::new(STORE_BULK_GROUPS.clone()),
            Box::new(STORE_BULK_FALLBACKS.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("each metric is registered once");
        }
        // Exported from the start (at 0), so that dashboards find the name.
        m.interview_unverified_by_job.with_label_values(&["unknown", "unknown"]);
        m
    }

    /// A gate bypass of a job (`role`, `region` as the ATS named them).
    /// Roles and regions come from the ATS, so the label values are bounded:
    /// each is cut to [`LABEL_CHARS`] printable characters, a missing one is
    /// `unknown`, and past [`BYPASS_JOBS_KEEP`] distinct pairs a new pair is
    /// counted as `other`/`other`, so the scraper's cost stays flat.
    pub fn bypass_by_job(&self, role: Option<&str>, region: Option<&str>) {
        let label = |v: Option<&str>| -> String {
            let v: String = v.unwrap_or("").chars().filter(|c| !c.is_control()).take(LABEL_CHARS).collect();
            if v.trim().is_empty() { "unknown".to_owned() } else { v.trim().to_owned() }
        };
        let mut pair = (label(role), label(region));
        {
            let mut seen = self.bypass_jobs.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.contains(&pair) {
                if seen.len() < BYPASS_JOBS_KEEP {
                    seen.insert(pair.clone());
                } else {
                    pair = ("other".to_owned(), "other".to_owned());
                }
            }
        }
        self.interview_unverified_by_job.with_label_values(&[&pair.0, &pair.1]).inc();
    }

    /// A gate answer, by its reason.
    pub fn gate_answered(&self, reason: &str) {
        self.gate_requests.with_label_values(&[reason]).inc();
    }

    /// A refused signature (also a webhook result).
    pub fn signature_refused(&self) {
        self.signature_invalid.inc();
        self.webhooks.with_label_values(&["signature_invalid"]).inc();
    }

    /// A provider route's delivery, by provider and result (`accepted`,
    /// `ignored`, `duplicate`, `signature_invalid`, `rejected`, ...).
    pub fn provider_result(&self, provider: &str, result: &str) {
        self.provider_webhooks.with_label_values(&[provider, result]).inc();
    }

    /// A duplicate delivery (also a webhook result).
    pub fn duplicate(&self) {
        self.duplicate_event.inc();
        self.webhooks.with_label_values(&["duplicate"]).inc();
    }

    /// The Prometheus text: every metric this process keeps, the gauges as
    /// read now. A gauge the store could not answer is left out. Policy
    /// metrics the bridge does not know are named in a comment.
    pub fn render(&self, policy: &Policy, gauges: &Gauges) -> String {
        let mut skip: Vec<&str> = vec![];
        match gauges.review_queue_depth {
            Some(v) => self.queue_depth.set(v as i64),
            None => skip.push("manual_review_queue_depth"),
        }
        match gauges.review_overdue {
            Some(v) => self.overdue.set(v as i64),
            None => skip.push("vbridge_manual_review_overdue"),
        }
        match gauges.relay_lag_seconds {
            Some(v) => self.relay_lag.set(v),
            None => skip.push("vbridge_relay_lag_seconds"),
        }
        let mut families = self.registry.gather();
        families.retain(|f| !skip.contains(&f.name()));
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&families, &mut out).expect("text encoding cannot fail");
        let mut text = String::from_utf8(out).expect("the text format is UTF-8");
        for name in &policy.raw().observability.metrics {
            if prom_name(name).is_none() {
                text.push_str(&format!("# policy metric {name} is not measured by this version\n"));
            }
        }
        text
    }
}

/// The Prometheus name of a policy metric (docs/contract.md §5), when known.
pub fn prom_name(policy_name: &str) -> Option<&'static str> {
    Some(match policy_name {
        "webhook.signature_invalid.count" => "webhook_signature_invalid_count",
        "webhook.duplicate_event.count" => "webhook_duplicate_event_count",
        "ats.write.failure.count" => "ats_write_failure_count",
        "manual_review.queue.depth" => "manual_review_queue_depth",
        "time.apply_to_verified.median" => "time_apply_to_verified",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_to_verified_runs_from_the_first_event() {
        let times = vec!["2026-11-24T10:05:00Z".to_owned(), "2026-11-24T10:00:00+00:00".to_owned(), "junk".to_owned()];
        assert_eq!(apply_to_verified_seconds(&times, "2026-11-24T11:00:00Z"), Some(3600.0));
        assert_eq!(apply_to_verified_seconds(&[], "2026-11-24T11:00:00Z"), None);
    }

    #[test]
    fn every_policy_metric_of_the_seed_has_its_contract_name() {
        let policy = Policy::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/policy.yaml")))
            .expect("the seed policy");
        for name in &policy.raw().observability.metrics {
            assert!(prom_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn bypasses_by_job_keep_a_bounded_set_of_label_pairs() {
        let m = Metrics::default();
        m.bypass_by_job(Some("Designer"), Some("Berlin"));
        m.bypass_by_job(Some("Designer"), Some("Berlin"));
        m.bypass_by_job(None, Some("\u{0}\n"));
        let long = "x".repeat(500);
        for i in 0..(BYPASS_JOBS_KEEP + 20) {
            m.bypass_by_job(Some(&format!("role-{i}")), Some(&long));
        }
        let v = |role: &str, region: &str| m.interview_unverified_by_job.with_label_values(&[role, region]).get();
        assert_eq!(v("Designer", "Berlin"), 2);
        assert_eq!(v("unknown", "unknown"), 1, "a missing or blank value is unknown");
        // 2 pairs first, then 48 new ones named, 22 counted as other.
        assert_eq!(v("other", "other"), 22);
        assert_eq!(v("role-0", &"x".repeat(LABEL_CHARS)), 1, "values are cut");
        assert_eq!(m.bypass_jobs.lock().unwrap().len(), BYPASS_JOBS_KEEP);
    }
}
