//! The review lane's activity: the signed `review.escalated` webhook.

use super::*;

/// Where SLA escalations go (`VBRIDGE_ESCALATION_URL`), signed in the IL
/// scheme with `VBRIDGE_ESCALATION_SECRET`, never a provider's secret.
#[derive(Clone)]
pub struct EscalationConfig {
    pub url: Option<String>,
    pub secret: Option<vbridge_core::intake::signature::Secret>,
}

/// Sends the signed `review.escalated` webhooks; counts them.
pub struct ReviewActivities {
    client: reqwest::Client,
    config: EscalationConfig,
    pub escalations: ReviewMetrics,
}

/// What the escalation activity counts.
#[derive(Clone)]
pub struct ReviewMetrics {
    /// Every escalation sent (or recorded, with no URL configured).
    pub escalations: prometheus::IntCounter,
    /// Review items whose SLA passed (their first escalation).
    pub sla_breaches: prometheus::IntCounter,
}

impl Default for ReviewMetrics {
    fn default() -> ReviewMetrics {
        let counter = |name: &str, help: &str| prometheus::IntCounter::new(name, help).expect("a valid metric name");
        ReviewMetrics {
            escalations: counter("vbridge_manual_review_escalation_count", "review SLA escalations"),
            sla_breaches: counter("vbridge_manual_review_sla_breaches_total", "review items past their SLA"),
        }
    }
}

impl ReviewActivities {
    pub fn new(config: EscalationConfig, escalations: ReviewMetrics) -> ReviewActivities {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(8)).build().expect("building the HTTP client");
        ReviewActivities { client, config, escalations }
    }
}

/// The body of one escalation webhook (CONTRACT §5).
pub fn escalation_body(req: &EscalationRequest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "review.escalated",
        "candidate_id": req.candidate_id,
        "application_id": req.application_id,
        "queue": req.queue,
        "due_at": req.due_at,
        "escalation": req.escalation,
    }))
    .expect("a JSON object serializes")
}

#[activities]
impl ReviewActivities {
    /// POST one escalation. Retried by Temporal with the same
    /// `Idempotency-Key`; a 4xx other than 408/429 is not retried.
    #[activity(definition = marker::Escalate)]
    #[tracing::instrument(skip_all, fields(trace_id = %req.trace_id, candidate_id = %req.candidate_id, application_id = %req.application_id, escalation = req.escalation))]
    pub async fn escalate(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: EscalationRequest,
    ) -> Result<EscalationResult, ActivityError> {
        if ctx.info().attempt <= 1 {
            self.escalations.escalations.inc();
            if req.escalation <= 1 {
                self.escalations.sla_breaches.inc();
            }
        }
        let Some(url) = &self.config.url else {
            tracing::warn!("review SLA passed, but no VBRIDGE_ESCALATION_URL is configured: not sent");
            return Ok(EscalationResult { http_status: 0, url: String::new() });
        };
        let body = escalation_body(&req);
        let ts = chrono::Utc::now().timestamp();
        let mut http = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &req.idempotency_key)
            .header("X-Trace-Id", &req.trace_id)
            .header("X-IL-Timestamp", ts.to_string());
        if let Some(secret) = &self.config.secret {
            http = http.header("X-IL-Signature", vbridge_core::intake::signature::sign_il(secret, ts, &body));
        }
        let backoff = Duration::from_secs(1);
        let resp = match http.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "escalation webhook could not be sent; will retry");
                return Err(transient(format!("escalation webhook failed: {e}"), backoff));
            }
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            tracing::info!(status, "review escalated");
            return Ok(EscalationResult { http_status: status as u32, url: url.clone() });
        }
        if status == 408 || status == 429 || status >= 500 {
            let delay =
                if status == 429 { connector::throttled_for(resp.headers()).unwrap_or(backoff) } else { backoff };
            return Err(transient(format!("escalation receiver answered {status}"), delay));
        }
        tracing::error!(status, "escalation receiver refused the webhook");
        Err(ActivityError::application(
            ApplicationFailure::builder(format!("escalation receiver refused the webhook with {status}"))
                .type_name(ESCALATION_REJECTED.to_owned())
                .non_retryable(true)
                .build(),
        ))
    }
}
