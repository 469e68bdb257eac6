//! The append-only event store, behind one trait: SQLite (embedded default)
//! and Postgres (several bridge processes on one database).
//!
//! Writes go through one writer task per process that commits in groups:
//! every request waiting in the queue shares one transaction and one fsync, so
//! more concurrency means more throughput, not more lock contention. The
//! writer loop, the first-vs-duplicate rule and the hash chains are shared;
//! each backend only speaks its SQL (`Backend`).

mod keys;
mod ops;
pub mod outreach;
mod postgres;
pub mod projection;
mod reads;
pub mod refused;
mod rows;
mod run;
pub mod sessions;
mod side;
mod sql;
mod sqlite;
mod writer;

use async_trait::async_trait;
use projection::{controls::Control, dead_letters::DeadLetter, gate, review};
use std::sync::Arc;
use tokio::sync::Notify;
use vbridge_core::canary::Job;
use vbridge_core::chain;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

pub(crate) use rows::DecisionRow;
pub use rows::{DeliveryContent, StoredDecision, StoredDelivery};

pub(crate) use writer::Backend;
pub use writer::{Erased, Erasure, Retention, Writer};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingResult {
    Accepted,
    Duplicate,
    Ignored,
    Rejected,
}

impl ProcessingResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingResult::Accepted => "accepted",
            ProcessingResult::Duplicate => "duplicate",
            ProcessingResult::Ignored => "ignored",
            ProcessingResult::Rejected => "rejected",
        }
    }
}

/// What the receiver hands over for one delivery.
#[derive(Debug, Clone, Default)]
pub struct DeliveryRecord {
    pub received_at: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub signature_valid: bool,
    pub trace_id: String,
    pub body_sha256: String,
    pub delivery_attempt: Option<i64>,
    /// Redacted body; `None` for rejected deliveries.
    pub payload: Option<String>,
    /// The `EventSignal` (JSON) the relay forwards; accepted deliveries only.
    pub signal: Option<String>,
    pub reject_code: Option<String>,
    pub intent: Intent,
    /// The job the delivery named (requisition, role, region), parsed at
    /// intake; the store keeps it for canary gating when it is accepted.
    pub job: Job,
}

/// What the receiver believes the delivery is; the writer has the last word
/// on first-vs-duplicate, since it alone sees every commit in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Intent {
    /// First sight of the key, for an event the bridge acts on (or `ignored`).
    #[default]
    Fresh,
    FreshIgnored,
    Duplicate,
    Rejected,
}

/// The committed delivery an idempotency key points to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Original {
    pub seq: i64,
    pub event_id: String,
    pub trace_id: String,
    pub processing_result: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Accepted {
        seq: i64,
    },
    Ignored {
        seq: i64,
    },
    /// Same key and event id as a committed delivery: nothing is re-run.
    Duplicate {
        seq: i64,
        original: Original,
    },
    /// Same key, different event id.
    Conflict {
        seq: i64,
        original: Original,
    },
    Rejected {
        seq: i64,
    },
}

/// An accepted delivery still owed to Temporal.
#[derive(Debug, Clone)]
pub struct Forwardable {
    pub seq: i64,
    pub signal: String,
    /// The store holds an earlier accepted delivery of the same verification.
    pub seen_before: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store cannot commit now (connection lost, writer reconnecting,
    /// lock contention): retry later.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused this one record (a constraint, a value it cannot
    /// hold); the others of its group were committed without it.
    #[error("the event store refused the record: {0}")]
    Refused(String),
    #[error("unsupported database URL {0:?} (expected sqlite://PATH or postgres://...)")]
    BadUrl(String),
}

/// The store is also where workflow decisions are appended (`AuditSink`).
#[async_trait]
pub trait EventStore: vbridge_activities::AuditSink + Send + Sync + 'static {
    /// The committed delivery holding this idempotency key, if any.
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError>;
    /// Commit one delivery durably, then answer.
    async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, StoreError> {
        self.writer().commit(rec).await
    }
    /// Queue a row whose answer does not depend on it (duplicates, refused
    /// deliveries): written after the rows someone waits on, without making
    /// the caller wait. False when the bounded queue is full and the row was
    /// dropped.
    fn record_later(&self, rec: DeliveryRecord) -> bool {
        self.writer().record_later(rec)
    }
    /// The outbox: accepted deliveries not yet forwarded, in commit order per
    /// candidate (seq order). O(pending), whatever the history.
    async fn unforwarded(&self, limit: i64) -> Result<Vec<Forwardable>, StoreError> {
        // The `limit` oldest rows are a round of `limit` with no more.
        self.owed_round(limit, limit).await
    }
    /// The relay's round: the `oldest` rows of the outbox and the other owed
    /// rows of their verifications, at most `max`, in commit order (a prefix
    /// of each verification's owed rows).
    async fn owed_round(&self, oldest: i64, max: i64) -> Result<Vec<Forwardable>, StoreError>;
    /// When the oldest delivery still in the outbox was received.
    async fn oldest_unforwarded(&self) -> Result<Option<String>, StoreError>;
    /// An empty transaction through the writer: whether the store commits.
    async fn ping(&self) -> Result<(), StoreError> {
        self.writer().ping().await
    }
    async fn mark_forwarded(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        self.writer().mark_forwarded(seqs).await
    }
    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError>;
    /// Woken after every commit that added something to forward.
    fn committed_notify(&self) -> Arc<Notify> {
        self.writer().notify.clone()
    }
    /// Append decision records; a `record_id` already stored is skipped.
    async fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        self.writer().append_decisions(records).await
    }
    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError>;
    /// Recompute and check the chains (all, or only the named streams),
    /// from one snapshot of the store: records, checkpoints and heads read in
    /// one transaction, so appends made meanwhile never look like a broken
    /// chain end.
    async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError>;
    /// Open review items in due order (the projection), `limit` at most.
    async fn review_queue(
        &self,
        filter: &review::Filter,
        after: Option<&review::Cursor>,
        limit: u32,
        now: &str,
    ) -> Result<Vec<review::Row>, StoreError>;
    /// One verification's open review item.
    async fn review_item(&self, candidate_id: &str, application_id: &str) -> Result<Option<review::Row>, StoreError>;
    /// (open review items, overdue among them) at `now`.
    async fn review_counts(&self, now: &str) -> Result<(u64, u64), StoreError>;
    /// A control's current value (none: never changed; the policy's default).
    async fn control(&self, name: &str) -> Result<Option<Control>, StoreError>;
    /// The gate's row of one application.
    async fn gate_row(&self, application_id: &str) -> Result<Option<gate::Row>, StoreError>;
    /// Open dead letters, newest first (one, by its idempotency key).
    async fn dead_letters(&self, key: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    /// The job an application's webhooks named (canary gating).
    async fn job(&self, application_id: &str) -> Result<Job, StoreError>;
    /// What the bridge wrote to the checks after `(application, check)`, in order.
    async fn expected_page(
        &self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<vbridge_proto::ExpectedWrite>, StoreError>;
    /// How many checks the bridge has written.
    async fn expected_count(&self) -> Result<u64, StoreError>;
    /// A finished reconciliation run's report (JSON).
    async fn reconcile_run(&self, run_id: &str) -> Result<Option<String>, StoreError>;
    /// Refused deliveries (rows of the `rejected` chain and aggregated
    /// windows) in first-seen order after `after`, `limit` at most.
    async fn refused_deliveries(
        &self,
        filter: &refused::Filter,
        after: Option<&refused::Cursor>,
        limit: u32,
    ) -> Result<Vec<refused::Row>, StoreError>;
    /// Whether the store accepted any delivery of this verification.
    async fn knows(&self, candidate_id: &str, application_id: &str) -> Result<bool, StoreError>;
    /// Where chains cut by retention start now.
    async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError>;
    /// Every chain's stored head.
    async fn heads(&self) -> Result<Vec<chain::Head>, StoreError>;
    /// Remove whole records received or decided before `cutoff` (RFC 3339),
    /// oldest first per chain, leave a checkpoint and a `retention` record in
    /// each chain it cut.
    /// The cut-off is `cut.cutoff`; the cut and its floor go into each
    /// retention record (`chain::floor`). The floor itself is the caller's
    /// (`audit::retention`): the store does not know the policy.
    async fn retain(&self, cut: &chain::floor::Cut) -> Result<Retention, StoreError> {
        self.writer().retain(cut).await
    }
    /// Erase a candidate's personal data (docs/privacy.md): the key, the
    /// hiring rows, and the chained `erased` record, in one transaction.
    async fn erase(&self, e: Erasure) -> Result<Erased, StoreError> {
        self.writer().erase(e).await
    }
    /// A candidate's field key, made when it has none.
    async fn field_key(&self, candidate_id: &str) -> Result<vbridge_core::seal::FieldKey, StoreError> {
        self.writer().field_key(candidate_id).await
    }
    /// `text` of a candidate sealed under the candidate's key (made when it
    /// has none); empty text stays empty.
    async fn seal_for(&self, candidate_id: &str, text: &str) -> Result<String, StoreError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let key = self.field_key(candidate_id).await?;
        keys::seal_text(&key, candidate_id, text).map_err(StoreError::from)
    }
    /// A candidate's field key, when it has one (none: erased, or nothing
    /// of the candidate was ever sealed).
    async fn existing_field_key(&self, candidate_id: &str) -> Result<Option<vbridge_core::seal::FieldKey>, StoreError>;
    /// The erasure records (the `erasure` chain) of one candidate, or all,
    /// oldest first.
    async fn erasures(&self, candidate_id: Option<&str>) -> Result<Vec<StoredDecision>, StoreError>;
    /// The audit keys this store links and verifies with.
    fn audit_keys(&self) -> &chain::Keyring {
        self.writer().keys()
    }
    async fn verify_chains(&self) -> Result<chain::Report, StoreError> {
        self.verify_streams(None).await
    }
    /// The right to run the relay. Only one relay forwards at a time, so that
    /// each candidate's events reach Temporal in commit order; `None` means
    /// another process holds it now.
    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError>;
    fn writer(&self) -> &Writer;
}

/// Held while this process runs the relay (Postgres: a session advisory lock
/// on a connection of its own; SQLite: an exclusive lock on a file beside the
/// database). Either is released when its holder dies.
pub enum RelayLease {
    File(std::fs::File),
    Postgres(Box<sqlx::PgConnection>),
}

impl RelayLease {
    /// Whether the lease still holds (its connection is alive).
    pub async fn alive(&mut self) -> bool {
        match self {
            RelayLease::File(_) => true,
            RelayLease::Postgres(conn) => sqlx::query("SELECT 1").execute(conn.as_mut()).await.is_ok(),
        }
    }
}

/// Open the store at `url`; records are linked under `keys`' signing key
/// (none: plain hashes) and verified with all of them.
pub async fn open(url: &str, keys: chain::Keyring) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, keys).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url, keys).await?))
    } else {
        Err(StoreError::BadUrl(url.to_owned()))
    }
}

/// Check the chains among these rows (only `streams`, when given).
pub fn verify_rows(
    deliveries: Vec<StoredDelivery>,
    decisions: Vec<StoredDecision>,
    checkpoints: &[chain::Checkpoint],
    heads: &[chain::Head],
    streams: Option<&[String]>,
    keys: &chain::Keyring,
) -> chain::Report {
    let wanted = |s: &str| streams.is_none_or(|list| list.iter().any(|w| w == s));
    let mut links = Vec::with_capacity(deliveries.len() + decisions.len());
    let mut unchained = vec![];
    for d in deliveries {
        let (Some(stream), Some(pos), Some(prev), Some(hash)) =
            (d.stream.clone(), d.chain_pos, d.prev_hash.clone(), d.hash.clone())
        else {
            // Every commit links its row; one without a link was written or
            // edited behind the store.
            if d.stream.as_deref().is_none_or(&wanted) {
                unchained.push(chain::Broken {
                    stream: d.stream.clone().unwrap_or_default(),
                    record: format!("delivery seq {}", d.seq),
                    chain_pos: d.chain_pos.unwrap_or(0),
                    problem: "the delivery has no place in any chain (it was written or edited behind the store)"
                        .into(),
                });
            }
            continue;
        };
        if !wanted(&stream) {
            continue;
        }
        let recomputed = chain::recompute(keys, &d.key_id, &stream, pos, &prev, &d.content);
        links.push(chain::Link {
            stream,
            chain_pos: pos,
            prev_hash: prev,
            hash,
            recomputed,
            key_id: d.key_id,
            order: (0, d.seq),
            label: format!("delivery seq {}", d.seq),
            made_checkpoint: None,
        });
    }
    for d in decisions.into_iter().filter(|d| wanted(&d.stream)) {
        let recomputed = chain::recompute(keys, &d.key_id, &d.stream, d.chain_pos, &d.prev_hash, &d.record);
        let made_checkpoint = (d.record.kind == RecordKind::Retention).then(|| d.record.write_targets.clone());
        links.push(chain::Link {
            stream: d.stream,
            chain_pos: d.chain_pos,
            prev_hash: d.prev_hash,
            hash: d.hash,
            recomputed,
            key_id: d.key_id,
            order: (1, d.seq),
            label: format!("decision {} (seq {})", d.record.record_id, d.seq),
            made_checkpoint,
        });
    }
    let heads: Vec<chain::Head> = heads.iter().filter(|h| wanted(&h.stream)).cloned().collect();
    chain::verify(links, checkpoints, &heads, unchained)
}
