//! Counters, exported in the Prometheus text format at `GET /metrics`. The
//! policy's metric names (`webhook.signature_invalid.count`, ...) become
//! `vbridge_webhook_signature_invalid_count`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use vbridge_activities::AtsMetrics;
use vbridge_workflows::Policy;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub signature_invalid: Counter,
    pub duplicate_event: Counter,
    pub accepted: Counter,
    pub ignored: Counter,
    pub rejected: Counter,
    pub relay_forwarded: Counter,
    pub relay_errors: Counter,
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
    /// Review SLA escalations sent (or recorded, with no URL configured).
    pub review_escalations: Arc<AtomicU64>,
    /// Accepted `needs_review` deliveries with no reason code, or an unlisted one.
    pub review_unlisted_reason_code: Counter,
    /// Reviewer decisions and overrides applied through the API.
    pub review_decisions: Counter,
    pub overrides: Counter,
}

/// Values read at scrape time from the store.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Open manual-review items (the queue projection); `None`: unreadable.
    pub review_queue_depth: Option<u64>,
    pub review_overdue: Option<u64>,
}

fn prom_name(policy_name: &str) -> String {
    format!("vbridge_{}", policy_name.replace('.', "_"))
}

impl Metrics {
    /// The value of a policy-named metric, when this process measures it.
    fn policy_metric(&self, name: &str, gauges: &Gauges) -> Option<(u64, &'static str)> {
        match name {
            "webhook.signature_invalid.count" => Some((self.signature_invalid.get(), "counter")),
            "webhook.duplicate_event.count" => Some((self.duplicate_event.get(), "counter")),
            "ats.write.failure.count" => Some((self.ats.write_failures.load(Ordering::Relaxed), "counter")),
            "manual_review.queue.depth" => gauges.review_queue_depth.map(|v| (v, "gauge")),
            // The apply->verified time is the observability issue's.
            _ => None,
        }
    }

    pub fn render(&self, policy: &Policy, gauges: &Gauges) -> String {
        let mut out = String::new();
        for name in &policy.raw().observability.metrics {
            if let Some((v, kind)) = self.policy_metric(name, gauges) {
                let n = prom_name(name);
                out.push_str(&format!("# HELP {n} policy metric {name}\n# TYPE {n} {kind}\n{n} {v}\n"));
            }
        }
        if let Some(v) = gauges.review_overdue {
            let n = prom_name("manual_review.overdue");
            out.push_str(&format!("# TYPE {n} gauge\n{n} {v}\n"));
        }
        for (name, v) in [
            ("webhook.accepted.count", self.accepted.get()),
            ("webhook.ignored.count", self.ignored.get()),
            ("webhook.rejected.count", self.rejected.get()),
            ("relay.forwarded.count", self.relay_forwarded.get()),
            ("relay.error.count", self.relay_errors.get()),
            ("store.deferred_rows_dropped.count", self.deferred_rows_dropped.get()),
            ("http.shed.count", self.http_shed.get()),
            ("http.timed_out.count", self.http_timed_out.get()),
            ("api.unauthenticated.count", self.api_unauthenticated.get()),
            ("api.forbidden.count", self.api_forbidden.get()),
            ("api.denials_unlogged.count", self.api_denials_unlogged.get()),
            ("ats.write.ok.count", self.ats.writes_ok.load(Ordering::Relaxed)),
            ("ats.write.permanent_rejection.count", self.ats.permanent_rejections.load(Ordering::Relaxed)),
            ("manual_review.escalation.count", self.review_escalations.load(Ordering::Relaxed)),
            ("manual_review.unlisted_reason_code.count", self.review_unlisted_reason_code.get()),
            ("manual_review.decision.count", self.review_decisions.get()),
            ("override.count", self.overrides.get()),
        ] {
            let n = prom_name(name);
            out.push_str(&format!("# TYPE {n} counter\n{n} {v}\n"));
        }
        out
    }
}
