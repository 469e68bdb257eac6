//! The hiring loop's activities (docs/contract.md §8, docs/hiring.md):
//! starting a verification at the provider ([`start`]) and mailing the
//! candidate ([`mail`]). Both are idempotent by a key the workflow derives
//! from its business keys, through rows the store keeps ([`Outreach`]):
//! a retry, a crash or a replay finds what the first attempt did instead of
//! doing it twice. Neither the candidate's address nor the link ever enters
//! a Temporal history or the audit log: they stay in those rows.

pub mod mail;
pub mod start;

use sha2::{Digest, Sha256};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use vbridge_activity_defs::{MAIL_FAILED, MAIL_REJECTED, START_FAILED, START_REJECTED, marker};
use vbridge_proto::{MailRequest, MailResult, StartRequest, StartResult};

/// Where the candidate's address is: the ATS's webhook put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub recruiter_email: Option<String>,
}

/// A verification created at the provider, by its start key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRow {
    pub provider: String,
    pub session_id: String,
    pub link: String,
}

/// A message sent, by its dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub message_id: String,
    pub recipient_hash: String,
}

/// The hiring loop's working rows (the store's `hiring_*` tables): none is
/// part of the audit log. Errors are the store's, as text.
#[async_trait::async_trait]
pub trait Outreach: Send + Sync + 'static {
    async fn put_contact(&self, c: &str, a: &str, email: &str, recruiter: Option<&str>) -> Result<(), String>;
    async fn contact(&self, c: &str, a: &str) -> Result<Option<Contact>, String>;
    /// Forget the address once the verification no longer needs it.
    async fn forget_contact(&self, c: &str, a: &str) -> Result<(), String>;
    /// A kept session of candidate `c` (the candidate's rows are sealed
    /// under, and erased with, the candidate's key: docs/privacy.md).
    async fn start(&self, c: &str, key: &str) -> Result<Option<StartRow>, String>;
    /// Keep a created session (a second put of the key is a no-op).
    async fn put_start(&self, c: &str, key: &str, row: &StartRow) -> Result<(), String>;
    /// Replace a kept session's link (a fresh one after a retake), so that
    /// the reminders carry it.
    async fn set_link(&self, c: &str, key: &str, link: &str) -> Result<(), String>;
    async fn mail(&self, key: &str) -> Result<Option<MailRow>, String>;
    async fn put_mail(&self, c: &str, key: &str, kind: &str, row: &MailRow) -> Result<(), String>;
}

/// The recipient as the audit log names it: the SHA-256 of the address,
/// lower-cased and trimmed (never the address).
pub fn recipient_hash(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

#[derive(Clone)]
pub struct HiringActivities {
    pub outreach: Arc<dyn Outreach>,
    pub starter: start::Starter,
    pub mailer: Option<mail::Mailer>,
    /// `VBRIDGE_RECRUITER_EMAIL`: the recruiter's notices go there when the
    /// ATS named no recruiter.
    pub recruiter: Option<String>,
}

/// Heartbeat every second while `work` runs: a worker that dies mid-call
/// stops heartbeating, and Temporal retries the step after the workflow's
/// heartbeat timeout (seconds), not after the whole start-to-close timeout.
pub(crate) async fn beating<T>(ctx: &ActivityContext, work: impl std::future::Future<Output = T>) -> T {
    let beat = async {
        loop {
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    };
    tokio::select! {
        out = work => out,
        never = beat => never,
    }
}

fn mail_failure(e: mail::MailError) -> ActivityError {
    match e {
        mail::MailError::Rejected(m) => failure(MAIL_REJECTED, m, false),
        mail::MailError::Transient(m) => failure(MAIL_FAILED, m, true),
    }
}

fn failure(type_name: &str, message: String, retryable: bool) -> ActivityError {
    let b = ApplicationFailure::builder(message).type_name(type_name.to_owned());
    ActivityError::application(if retryable { b.build() } else { b.non_retryable(true).build() })
}

#[activities]
impl HiringActivities {
    #[activity(definition = marker::StartVerification)]
    #[tracing::instrument(skip_all, fields(trace_id = %req.trace_id, tier = %req.tier, attempt = ctx.info().attempt))]
    pub async fn start_verification(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: StartRequest,
    ) -> Result<StartResult, ActivityError> {
        match beating(&ctx, self.starter.start(&*self.outreach, &req)).await {
            Ok((row, created)) => {
                tracing::info!(provider = %row.provider, session_id = %row.session_id, created, "verification started at the provider");
                Ok(StartResult { provider: row.provider, session_id: row.session_id, created })
            }
            Err(start::StartError::Rejected(m)) => {
                tracing::warn!(error = %m, "the provider refused the start for good");
                Err(failure(START_REJECTED, m, false))
            }
            Err(start::StartError::Transient(m)) => {
                tracing::warn!(error = %m, "the start failed; Temporal retries it");
                Err(failure(START_FAILED, m, true))
            }
        }
    }

    #[activity(definition = marker::SendMail)]
    #[tracing::instrument(skip_all, fields(trace_id = %req.trace_id, kind = %req.kind, attempt = ctx.info().attempt))]
    pub async fn send_mail(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: MailRequest,
    ) -> Result<MailResult, ActivityError> {
        beating(&ctx, self.mail_once(&req)).await
    }
}

impl HiringActivities {
    /// One message, unless its key's row says it went already.
    async fn mail_once(&self, req: &MailRequest) -> Result<MailResult, ActivityError> {
        let store = |e: String| failure(MAIL_FAILED, format!("the store cannot be read: {e}"), true);
        if let Some(row) = self.outreach.mail(&req.key).await.map_err(store)? {
            tracing::info!(message_id = %row.message_id, "sent before; not sent again");
            return Ok(MailResult {
                message_id: row.message_id,
                recipient_hash: row.recipient_hash,
                sent: false,
                skipped: String::new(),
            });
        }
        let Some(mailer) = &self.mailer else {
            return Ok(MailResult { skipped: "mail_not_configured".into(), ..Default::default() });
        };
        if vbridge_activity_defs::mail_kind::to_recruiter(&req.kind) {
            let named = self.outreach.contact(&req.candidate_id, &req.application_id).await.map_err(store)?;
            let Some(to) = named.and_then(|c| c.recruiter_email).or_else(|| self.recruiter.clone()) else {
                tracing::warn!("no recruiter address (VBRIDGE_RECRUITER_EMAIL); the notice is not sent");
                return Ok(MailResult { skipped: "no_recruiter_address".into(), ..Default::default() });
            };
            let row = mailer.send_notice(req, &to).await.map_err(mail_failure)?;
            return Ok(self.sent(req, row).await);
        }
        let Some(contact) = self.outreach.contact(&req.candidate_id, &req.application_id).await.map_err(store)? else {
            tracing::warn!("no address for the candidate; nothing sent");
            return Ok(MailResult { skipped: "no_address".into(), ..Default::default() });
        };
        let Some(mut start) = self.outreach.start(&req.candidate_id, &req.start_key).await.map_err(store)? else {
            return Err(failure(MAIL_REJECTED, format!("no started verification for key {}", req.start_key), false));
        };
        if req.kind == vbridge_activity_defs::mail_kind::RETAKE {
            // A retry after a crash here takes another link: the one before
            // it was never mailed, and each is good for one visit only.
            start.link = self.starter.fresh_link(&start).await.map_err(|e| match e {
                start::StartError::Rejected(m) => failure(MAIL_REJECTED, m, false),
                start::StartError::Transient(m) => failure(MAIL_FAILED, m, true),
            })?;
            self.outreach.set_link(&req.candidate_id, &req.start_key, &start.link).await.map_err(store)?;
        }
        let row = mailer.send(req, &contact, &start).await.map_err(mail_failure)?;
        Ok(self.sent(req, row).await)
    }

    /// Sent: from here nothing may fail the activity, or a retry would send
    /// it again. A row the store does not take is logged; the workflow's
    /// `mail_sent` record still says it went.
    async fn sent(&self, req: &MailRequest, row: MailRow) -> MailResult {
        if let Err(e) = self.outreach.put_mail(&req.candidate_id, &req.key, &req.kind, &row).await {
            tracing::error!(error = %e, message_id = %row.message_id, "sent, but the store did not keep the record");
        }
        tracing::info!(message_id = %row.message_id, recipient_hash = %row.recipient_hash, "mail sent");
        MailResult {
            message_id: row.message_id,
            recipient_hash: row.recipient_hash,
            sent: true,
            skipped: String::new(),
        }
    }
}
