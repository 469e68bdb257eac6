//! `Reconciliation`: diff-and-heal (policy `resiliency.reconciliation`). A
//! Temporal Schedule starts it from the policy's cron; an operator can start
//! one now. It pages through what the bridge wrote (the store's projection),
//! reads each check back from the ATS, and, unless it is a dry run, rewrites
//! the differences through the same idempotent ATS write activity as the
//! verifications. It only orchestrates; the report goes to the store.

use sha2::{Digest, Sha256};
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};
use vbridge_activity_defs::{AtsActivities, PERMANENT_REJECTION, ReconcileActivities};
use vbridge_proto::{AtsWriteRequest, Drift, ReconcileInput, ReconcilePageRequest, ReconcileProgress};

/// Checks per page unless the input says otherwise.
pub const DEFAULT_PAGE: u32 = 200;
/// Drifts kept in the report (the counts cover all).
pub const RECONCILE_ITEMS_KEEP: usize = 200;
/// History events before the run continues as new, carrying its progress.
pub const RECONCILE_CONTINUE_AFTER: u32 = 5_000;

#[workflow]
pub struct Reconciliation {
    input: ReconcileInput,
    progress: ReconcileProgress,
}

/// The idempotency key of a healing write: one per run and check.
pub fn heal_key(run_id: &str, application_id: &str, check_id: &str) -> String {
    let h = Sha256::digest(format!("{run_id}\nheal\n{application_id}\n{check_id}").as_bytes());
    format!("rec-{}", &hex::encode(h)[..40])
}

impl Reconciliation {
    fn page_options() -> ActivityOptions {
        let mut opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(120));
        opts.retry_policy = Some(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(30))
                .maximum_attempts(5)
                .build(),
        );
        opts
    }

    fn write_options(&self) -> ActivityOptions {
        let mut opts =
            ActivityOptions::start_to_close_timeout(Duration::from_millis(self.input.timeout_ms.max(1) as u64 + 2_000));
        opts.retry_policy = Some(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(self.input.max_attempts.max(1))
                .non_retryable_error_types([PERMANENT_REJECTION])
                .build(),
        );
        opts
    }

    fn heal_request(&self, run_id: &str, d: &Drift) -> Option<AtsWriteRequest> {
        let e = d.expected.as_ref()?;
        Some(AtsWriteRequest {
            candidate_id: e.candidate_id.clone(),
            application_id: e.application_id.clone(),
            verification_check_id: e.verification_check_id.clone(),
            fields: e.fields.clone(),
            idempotency_key: heal_key(run_id, &e.application_id, &e.verification_check_id),
            trace_id: run_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect(),
            event_id: format!("reconcile:{run_id}"),
            timeout_ms: self.input.timeout_ms,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            backoff_jitter: true,
            write_record_id: format!("dec-{}", &heal_key(run_id, &e.application_id, &e.verification_check_id)[4..]),
            ..Default::default()
        })
    }

    fn keep(&mut self, d: Drift) {
        if self.progress.items.len() < RECONCILE_ITEMS_KEEP {
            self.progress.items.push(d);
        }
    }
}

#[workflow_methods]
impl Reconciliation {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ReconcileInput) -> Self {
        let mut progress = input.carried.clone().unwrap_or_default();
        progress.dry_run = input.dry_run;
        progress.requested_by = input.requested_by.clone();
        Reconciliation { input, progress }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ReconcileProgress> {
        let run_id = ctx.workflow_id().to_owned();
        let limit = ctx.state(|s| if s.input.page_size == 0 { DEFAULT_PAGE } else { s.input.page_size });
        loop {
            let after = ctx.state(|s| s.progress.after.clone());
            let page = ctx
                .execute_activity(
                    ReconcileActivities::diff_page,
                    ReconcilePageRequest { after, limit },
                    Self::page_options(),
                )
                .await?;
            let dry_run = ctx.state(|s| s.input.dry_run);
            ctx.state_mut(|s| {
                s.progress.checked += page.checked;
                s.progress.unreadable += page.unreadable;
                s.progress.drifted += page.drifts.len() as u32;
            });
            if dry_run {
                ctx.state_mut(|s| {
                    for mut d in page.drifts.clone() {
                        d.outcome = "drifted".into();
                        s.keep(d);
                    }
                });
            } else {
                let heals: Vec<_> = page
                    .drifts
                    .iter()
                    .filter_map(|d| ctx.state(|s| s.heal_request(&run_id, d)).map(|r| (d.clone(), r)))
                    .collect();
                let opts = ctx.state(|s| s.write_options());
                let results =
                    temporalio_sdk::workflows::join_all(heals.iter().map(|(_, r)| {
                        ctx.execute_activity(AtsActivities::write_verification, r.clone(), opts.clone())
                    }))
                    .await;
                ctx.state_mut(|s| {
                    for ((mut d, _), r) in heals.into_iter().zip(results) {
                        match r {
                            Ok(_) => {
                                s.progress.healed += 1;
                                d.outcome = "healed".into();
                            }
                            Err(e) => {
                                s.progress.failed += 1;
                                d.outcome = format!("failed: {e}");
                            }
                        }
                        s.keep(d);
                    }
                });
            }
            ctx.state_mut(|s| s.progress.after = page.next_after.clone());
            if page.done {
                break;
            }
            if ctx.history_length() >= RECONCILE_CONTINUE_AFTER || ctx.continue_as_new_suggested() {
                let next = ctx.state(|s| {
                    let mut input = s.input.clone();
                    input.carried = Some(s.progress.clone());
                    input
                });
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
                return Ok(ReconcileProgress::default());
            }
        }
        let report = ctx.state_mut(|s| {
            s.progress.done = true;
            s.progress.clone()
        });
        ctx.execute_activity(ReconcileActivities::record_report, report.clone(), Self::page_options()).await?;
        Ok(report)
    }

    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> ReconcileProgress {
        self.progress.clone()
    }
}
