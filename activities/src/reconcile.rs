//! Reconciliation's activities: read each check back from the ATS and diff it
//! with what the bridge wrote; keep the run's report.

use super::*;

/// What the reconciliation reads and where its report goes: the store.
#[async_trait::async_trait]
pub trait ReconcileSource: Send + Sync + 'static {
    /// The expected fields of up to `limit` checks after `after`
    /// (`"{application}\n{check}"`, empty: from the start), in that order.
    async fn expected_page(&self, after: &str, limit: u32) -> Result<Vec<ExpectedWrite>, String>;
    /// Keep a finished run's report (and log it).
    async fn record_report(&self, run_id: &str, report: &ReconcileProgress) -> Result<(), String>;
}

/// Checks read from the ATS at once by one page.
pub const RECONCILE_CONCURRENCY: usize = 16;

/// Reads the ATS back (CONTRACT §4's GET) and compares it with what the
/// bridge wrote.
pub struct ReconcileActivities {
    connector: Arc<dyn connector::Connector>,
    source: Arc<dyn ReconcileSource>,
}

impl ReconcileActivities {
    pub fn new(connector: Arc<dyn connector::Connector>, source: Arc<dyn ReconcileSource>) -> ReconcileActivities {
        ReconcileActivities { connector, source }
    }

    /// What the ATS holds for one check: `None` when it has no such check.
    async fn read(&self, e: &ExpectedWrite) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
        self.connector.read(&e.application_id, &e.verification_check_id).await
    }
}

/// The difference between what was written and what the ATS holds: the
/// expected fields the ATS lacks or holds otherwise (extra ATS fields are
/// not the bridge's business).
pub fn diff(expected: &ExpectedWrite, found: Option<&std::collections::BTreeMap<String, String>>) -> Option<Drift> {
    let Some(found) = found else {
        return Some(Drift { expected: Some(expected.clone()), missing: true, ..Default::default() });
    };
    let differs: std::collections::BTreeMap<String, String> = expected
        .fields
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(*v))
        .map(|(k, _)| (k.clone(), found.get(k).cloned().unwrap_or_default()))
        .collect();
    (!differs.is_empty()).then(|| Drift { expected: Some(expected.clone()), found: differs, ..Default::default() })
}

#[activities]
impl ReconcileActivities {
    /// One page: read each check back from the ATS and diff it.
    #[activity(definition = marker::DiffPage)]
    #[tracing::instrument(skip_all, fields(after = %req.after, limit = req.limit))]
    pub async fn diff_page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: ReconcilePageRequest,
    ) -> Result<ReconcilePage, ActivityError> {
        let page = self.source.expected_page(&req.after, req.limit.max(1)).await.map_err(|e| {
            ActivityError::application(
                ApplicationFailure::builder(e).type_name(RECONCILE_READ_FAILED.to_owned()).build(),
            )
        })?;
        use futures::StreamExt;
        let reads: Vec<_> = futures::stream::iter(page.iter().cloned().map(|e| {
            let this = self.clone();
            async move {
                let read = this.read(&e).await;
                (e, read)
            }
        }))
        .buffered(RECONCILE_CONCURRENCY)
        .collect()
        .await;
        let mut out = ReconcilePage {
            checked: page.len() as u32,
            done: page.len() < req.limit.max(1) as usize,
            ..Default::default()
        };
        for (e, read) in reads {
            match read {
                Ok(found) => out.drifts.extend(diff(&e, found.as_ref())),
                Err(why) => {
                    tracing::warn!(application_id = %e.application_id, error = %why, "reconciliation: the ATS did not answer for a check");
                    out.unreadable += 1;
                }
            }
        }
        out.next_after =
            page.last().map(|e| format!("{}\n{}", e.application_id, e.verification_check_id)).unwrap_or_default();
        Ok(out)
    }

    /// Keep the finished run's report.
    #[activity(definition = marker::RecordReport)]
    pub async fn record_report(
        self: Arc<Self>,
        ctx: ActivityContext,
        report: ReconcileProgress,
    ) -> Result<(), ActivityError> {
        let run_id = ctx.info().workflow_id.clone().unwrap_or_default();
        self.source.record_report(&run_id, &report).await.map_err(|e| {
            ActivityError::application(
                ApplicationFailure::builder(e).type_name(RECONCILE_REPORT_FAILED.to_owned()).build(),
            )
        })
    }
}
