//! The retention activity: the store-side cut, behind [`RetentionSource`]
//! (the worker implements it with the store and the policy's floor).

use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use vbridge_activity_defs::{RETENTION_FAILED, RETENTION_REFUSED, marker};

/// Why a retention did not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionFailure {
    /// Refused for good (below the floor): the same request would be again.
    #[error("{0}")]
    Refused(String),
    /// The store could not do it now.
    #[error("{0}")]
    Failed(String),
}

/// Cuts the audit log under the policy's floor; its report as JSON.
#[async_trait::async_trait]
pub trait RetentionSource: Send + Sync + 'static {
    async fn retain(&self, requested_by: &str) -> Result<String, RetentionFailure>;
}

pub struct RetentionActivities {
    pub source: Arc<dyn RetentionSource>,
}

#[activities]
impl RetentionActivities {
    #[activity(definition = marker::Retain)]
    #[tracing::instrument(skip_all, fields(requested_by = %requested_by))]
    pub async fn retain(self: Arc<Self>, _ctx: ActivityContext, requested_by: String) -> Result<String, ActivityError> {
        self.source.retain(&requested_by).await.map_err(|e| {
            let type_name = match e {
                RetentionFailure::Refused(_) => RETENTION_REFUSED,
                RetentionFailure::Failed(_) => RETENTION_FAILED,
            };
            tracing::warn!(error = %e, failure = type_name, "audit retention did not run");
            ActivityError::application(
                ApplicationFailure::builder(e.to_string()).type_name(type_name.to_owned()).build(),
            )
        })
    }
}
