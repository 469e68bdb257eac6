//! The append-only event store, behind one trait: SQLite (embedded default)
//! and Postgres (several bridge processes on one database).
//!
//! Writes go through one writer task per process that commits in groups:
//! every request waiting in the queue shares one transaction and one fsync, so
//! more concurrency means more throughput, not more lock contention. The
//! writer loop, the first-vs-duplicate rule and the hash chains are shared;
//! each backend only speaks its SQL (`Backend`).

mod postgres;
mod sql;
mod sqlite;

use crate::chain::{self, DeliveryContent, REJECTED_STREAM};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};
use vbridge_proto::DecisionRecord;

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
}

/// One stored row, for timelines and tests: the hashed content, plus where it
/// sits (seq, chain link) and whether the relay forwarded it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct StoredDelivery {
    pub seq: i64,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub content: DeliveryContent,
    pub forwarded: bool,
    pub stream: Option<String>,
    pub chain_pos: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl std::ops::Deref for StoredDelivery {
    type Target = DeliveryContent;
    fn deref(&self) -> &DeliveryContent {
        &self.content
    }
}

/// One decision record as stored, with its place in the chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredDecision {
    pub seq: i64,
    #[serde(flatten)]
    pub record: DecisionRecord,
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// A `decisions` row as both backends read it.
#[derive(sqlx::FromRow)]
struct DecisionRow {
    seq: i64,
    record_id: String,
    recorded_at: String,
    kind: String,
    candidate_id: String,
    application_id: String,
    event_id: String,
    event_type: String,
    occurred_at: String,
    received_at: String,
    idempotency_key: String,
    state_before: String,
    state_after: String,
    reason: String,
    write_targets: String,
    delivery_attempt: i64,
    processing_result: String,
    trace_id: String,
    override_actor: String,
    override_reason_code: String,
    override_timestamp: String,
    stream: String,
    chain_pos: i64,
    prev_hash: String,
    hash: String,
}

impl From<DecisionRow> for StoredDecision {
    fn from(r: DecisionRow) -> StoredDecision {
        StoredDecision {
            seq: r.seq,
            record: DecisionRecord {
                record_id: r.record_id,
                recorded_at: r.recorded_at,
                kind: r.kind,
                candidate_id: r.candidate_id,
                application_id: r.application_id,
                event_id: r.event_id,
                event_type: r.event_type,
                occurred_at: r.occurred_at,
                received_at: r.received_at,
                idempotency_key: r.idempotency_key,
                state_before: r.state_before,
                state_after: r.state_after,
                reason: r.reason,
                write_targets: r.write_targets,
                delivery_attempt: r.delivery_attempt as u32,
                processing_result: r.processing_result,
                trace_id: r.trace_id,
                override_actor: r.override_actor,
                override_reason_code: r.override_reason_code,
                override_timestamp: r.override_timestamp,
            },
            stream: r.stream,
            chain_pos: r.chain_pos,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Bind a delivery's values in `sql::INSERT_DELIVERY` order, for any backend.
macro_rules! bind_delivery {
    ($q:expr, $row:expr) => {{
        let c = &$row.content;
        let l = &$row.link;
        $q.bind(&c.received_at)
            .bind(&c.event_id)
            .bind(&c.event_type)
            .bind(&c.occurred_at)
            .bind(&c.candidate_id)
            .bind(&c.application_id)
            .bind(&c.idempotency_key)
            .bind(c.signature_valid)
            .bind(&c.processing_result)
            .bind(&c.reject_code)
            .bind(&c.trace_id)
            .bind(&c.body_sha256)
            .bind(c.delivery_attempt)
            .bind(&c.payload)
            .bind(&c.signal)
            .bind(&l.stream)
            .bind(l.chain_pos)
            .bind(&l.prev_hash)
            .bind(&l.hash)
    }};
}

/// Bind a decision's values in `sql::INSERT_DECISION` order, for any backend.
macro_rules! bind_decision {
    ($q:expr, $r:expr, $l:expr) => {{
        let r = $r;
        let l = $l;
        $q.bind(&r.record_id)
            .bind(&r.recorded_at)
            .bind(&r.kind)
            .bind(&r.candidate_id)
            .bind(&r.application_id)
            .bind(&r.event_id)
            .bind(&r.event_type)
            .bind(&r.occurred_at)
            .bind(&r.received_at)
            .bind(&r.idempotency_key)
            .bind(&r.state_before)
            .bind(&r.state_after)
            .bind(&r.reason)
            .bind(&r.write_targets)
            .bind(r.delivery_attempt as i64)
            .bind(&r.processing_result)
            .bind(&r.trace_id)
            .bind(&r.override_actor)
            .bind(&r.override_reason_code)
            .bind(&r.override_timestamp)
            .bind(&l.stream)
            .bind(l.chain_pos)
            .bind(&l.prev_hash)
            .bind(&l.hash)
    }};
}
pub(crate) use {bind_decision, bind_delivery};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the event store writer has stopped")]
    WriterGone,
    #[error("event store commit failed: {0}")]
    Commit(String),
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
    /// Queue a row whose answer does not depend on it (duplicates): written
    /// after the rows someone waits on, without making the caller wait.
    fn record_later(&self, rec: DeliveryRecord) {
        self.writer().record_later(rec)
    }
    /// Accepted deliveries after `after_seq` not yet forwarded, in commit order.
    async fn unforwarded(&self, after_seq: i64, limit: i64) -> Result<Vec<Forwardable>, StoreError>;
    /// Whether `seq` order is commit order, so the relay may keep a cursor.
    fn seq_is_commit_order(&self) -> bool {
        true
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
    /// Recompute and check the chains (all, or only the named streams).
    async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError> {
        let deliveries = self.deliveries(None, None).await?;
        let decisions = self.decisions(None, None).await?;
        let checkpoints = self.checkpoints().await?;
        Ok(verify_rows(deliveries, decisions, &checkpoints, streams))
    }
    /// Where chains cut by retention start now.
    async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError>;
    /// Remove whole records received or decided before `cutoff` (RFC 3339),
    /// oldest first per chain, leave a checkpoint and a `retention` record in
    /// each chain it cut.
    async fn retain(&self, cutoff: &str) -> Result<Retention, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer()
            .tx
            .send(Op::Retain { cutoff: cutoff.to_owned(), reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Commit)
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
/// on a connection of its own; SQLite: one process owns the file).
pub enum RelayLease {
    Local,
    Postgres(Box<sqlx::PgConnection>),
}

impl RelayLease {
    /// Whether the lease still holds (its connection is alive).
    pub async fn alive(&mut self) -> bool {
        match self {
            RelayLease::Local => true,
            RelayLease::Postgres(conn) => sqlx::query("SELECT 1").execute(conn.as_mut()).await.is_ok(),
        }
    }
}

pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_owned()))
    }
}

/// Check the chains among these rows (only `streams`, when given).
pub fn verify_rows(
    deliveries: Vec<StoredDelivery>,
    decisions: Vec<StoredDecision>,
    checkpoints: &[chain::Checkpoint],
    streams: Option<&[String]>,
) -> chain::Report {
    let wanted = |s: &str| streams.is_none_or(|list| list.iter().any(|w| w == s));
    let mut links = Vec::with_capacity(deliveries.len() + decisions.len());
    let mut unchained = 0;
    for d in deliveries {
        let (Some(stream), Some(pos), Some(prev), Some(hash)) =
            (d.stream.clone(), d.chain_pos, d.prev_hash.clone(), d.hash.clone())
        else {
            unchained += 1;
            continue;
        };
        if !wanted(&stream) {
            continue;
        }
        let recomputed = chain::link_hash(&stream, pos, &prev, &d.content);
        links.push(chain::Link {
            stream,
            chain_pos: pos,
            prev_hash: prev,
            hash,
            recomputed,
            label: format!("delivery seq {}", d.seq),
        });
    }
    for d in decisions.into_iter().filter(|d| wanted(&d.stream)) {
        let recomputed = chain::link_hash(&d.stream, d.chain_pos, &d.prev_hash, &d.record);
        links.push(chain::Link {
            stream: d.stream,
            chain_pos: d.chain_pos,
            prev_hash: d.prev_hash,
            hash: d.hash,
            recomputed,
            label: format!("decision {} (seq {})", d.record.record_id, d.seq),
        });
    }
    chain::verify(links, checkpoints, unchained)
}

// ---------------------------------------------------------------------------
// The shared writer.
// ---------------------------------------------------------------------------

// Nearly every op is a Commit; boxing it would only add an allocation per delivery.
#[allow(clippy::large_enum_variant)]
enum Op {
    Commit(DeliveryRecord, Option<oneshot::Sender<Result<Committed, String>>>),
    Forwarded(Vec<i64>, oneshot::Sender<Result<(), String>>),
    Decisions(Vec<DecisionRecord>, oneshot::Sender<Result<(), String>>),
    Retain { cutoff: String, reply: oneshot::Sender<Result<Retention, String>> },
}

/// What a retention run removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Retention {
    pub cutoff: String,
    pub streams_cut: usize,
    pub records_removed: usize,
}

/// One record's place in its chain, for retention.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ChainEntry {
    pub stream: String,
    pub chain_pos: i64,
    pub hash: String,
    pub at: String,
}

/// The handle every store uses to reach its writer task.
pub struct Writer {
    tx: mpsc::Sender<Op>,
    /// Rows nobody waits for (duplicates): written after, and never ahead of,
    /// the rows someone's answer waits on.
    later: mpsc::Sender<Op>,
    notify: Arc<Notify>,
}

const MAX_GROUP: usize = 512;
/// Deferred rows a group may carry along with rows that are waited on (a few,
/// so that they never starve), and in a group of their own (a bounded number,
/// so that a backlog never holds up the next waited-on commit for long).
const LATER_WITH_WAITED: usize = 2;
const LATER_ALONE: usize = 32;

impl Writer {
    fn spawn<B: Backend>(backend: B) -> Writer {
        let (tx, rx) = mpsc::channel::<Op>(8192);
        let (later, later_rx) = mpsc::channel::<Op>(65_536);
        let notify = Arc::new(Notify::new());
        tokio::spawn(writer_loop(backend, rx, later_rx, notify.clone()));
        Writer { tx, later, notify }
    }

    async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Commit(rec, Some(reply))).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Commit)
    }

    fn record_later(&self, rec: DeliveryRecord) {
        if let Err(e) = self.later.try_send(Op::Commit(rec, None)) {
            tracing::warn!(error = %e, "event store queue full; a duplicate-delivery row was not recorded");
        }
    }

    async fn mark_forwarded(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Forwarded(seqs, reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Commit)
    }

    async fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Decisions(records, reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Commit)
    }
}

/// What a backend must do inside one group transaction.
#[async_trait]
trait Backend: Send + 'static {
    async fn begin(&mut self) -> Result<(), sqlx::Error>;
    /// Lock the chain heads of these streams (sorted), where other processes
    /// may write the same streams.
    async fn lock_streams(&mut self, streams: &[String]) -> Result<(), sqlx::Error>;
    async fn find_key(&mut self, key: &str) -> Result<Option<Original>, sqlx::Error>;
    async fn head(&mut self, stream: &str) -> Result<Option<(i64, String)>, sqlx::Error>;
    /// Insert a delivery row; `None` when an accepted/ignored row lost a race
    /// for its idempotency key to another process.
    async fn insert_delivery(&mut self, row: &ChainedDelivery) -> Result<Option<i64>, sqlx::Error>;
    async fn decision_exists(&mut self, record_id: &str) -> Result<bool, sqlx::Error>;
    async fn insert_decision(&mut self, r: &DecisionRecord, link: &LinkFields) -> Result<(), sqlx::Error>;
    async fn mark_forwarded(&mut self, seqs: &[i64], now: &str) -> Result<(), sqlx::Error>;
    async fn set_head(&mut self, stream: &str, pos: i64, hash: &str) -> Result<(), sqlx::Error>;
    async fn commit(&mut self) -> Result<(), sqlx::Error>;
    async fn rollback(&mut self);
    /// Every chained record's stream, position, hash and time.
    async fn chain_entries(&mut self) -> Result<Vec<ChainEntry>, sqlx::Error>;
    /// Delete a chain's records up to `upto` (inclusive), guards lifted for
    /// this transaction only. Returns how many went.
    async fn delete_prefix(&mut self, stream: &str, upto: i64) -> Result<u64, sqlx::Error>;
    async fn save_checkpoint(&mut self, cp: &chain::Checkpoint, removed: i64, now: &str) -> Result<(), sqlx::Error>;
    /// Housekeeping the writer runs between groups; `quiet` when no commit is
    /// waiting.
    async fn between_groups(&mut self, _quiet: bool) {}
}

pub(crate) struct LinkFields {
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) struct ChainedDelivery {
    pub content: DeliveryContent,
    pub link: LinkFields,
}

/// Chain heads touched by the current group.
#[derive(Default)]
struct Heads {
    staged: HashMap<String, (i64, String)>,
}

impl Heads {
    async fn next<B: Backend>(&mut self, b: &mut B, stream: &str) -> Result<(i64, String), sqlx::Error> {
        if let Some(h) = self.staged.get(stream) {
            return Ok((h.0 + 1, h.1.clone()));
        }
        Ok(match b.head(stream).await? {
            Some((pos, hash)) => (pos + 1, hash),
            None => (1, chain::GENESIS.to_owned()),
        })
    }

    fn link<T: serde::Serialize>(&mut self, stream: &str, next: (i64, String), record: &T) -> LinkFields {
        let (pos, prev) = next;
        let hash = chain::link_hash(stream, pos, &prev, record);
        self.staged.insert(stream.to_owned(), (pos, hash.clone()));
        LinkFields { stream: stream.to_owned(), chain_pos: pos, prev_hash: prev, hash }
    }
}

/// The stream a delivery belongs to: rejected deliveries, whose fields cannot
/// be trusted, have their own; every other one is its candidate's.
pub fn delivery_stream(rec: &DeliveryRecord) -> String {
    match (rec.intent, rec.candidate_id.as_deref(), rec.application_id.as_deref()) {
        (Intent::Rejected, _, _) => REJECTED_STREAM.to_owned(),
        (_, Some(c), Some(a)) => chain::stream_of(c, a),
        _ => REJECTED_STREAM.to_owned(),
    }
}

/// The first-vs-duplicate rule, given what the key already points to.
fn settle(rec: &DeliveryRecord, original: Option<&Original>) -> (ProcessingResult, DeliveryContent) {
    let result = match (rec.intent, original) {
        (Intent::Rejected, _) => ProcessingResult::Rejected,
        (_, Some(o)) if Some(o.event_id.as_str()) == rec.event_id.as_deref() => ProcessingResult::Duplicate,
        (_, Some(_)) => ProcessingResult::Rejected,
        (Intent::FreshIgnored, None) => ProcessingResult::Ignored,
        (_, None) => ProcessingResult::Accepted,
    };
    let conflict = result == ProcessingResult::Rejected && rec.intent != Intent::Rejected;
    // Only the first commit of a key keeps a signal and is forwarded; rejected
    // rows keep no payload.
    let keep_payload =
        matches!(result, ProcessingResult::Accepted | ProcessingResult::Ignored | ProcessingResult::Duplicate);
    let content = DeliveryContent {
        received_at: rec.received_at.clone(),
        event_id: rec.event_id.clone(),
        event_type: rec.event_type.clone(),
        occurred_at: rec.occurred_at.clone(),
        candidate_id: rec.candidate_id.clone(),
        application_id: rec.application_id.clone(),
        idempotency_key: rec.idempotency_key.clone(),
        signature_valid: rec.signature_valid,
        processing_result: result.as_str().to_owned(),
        reject_code: if conflict { Some("idempotency_conflict".into()) } else { rec.reject_code.clone() },
        trace_id: rec.trace_id.clone(),
        body_sha256: rec.body_sha256.clone(),
        delivery_attempt: rec.delivery_attempt,
        payload: if keep_payload { rec.payload.clone() } else { None },
        signal: if result == ProcessingResult::Accepted { rec.signal.clone() } else { None },
    };
    (result, content)
}

async fn commit_one<B: Backend>(b: &mut B, heads: &mut Heads, rec: &DeliveryRecord) -> Result<Committed, sqlx::Error> {
    let stream = delivery_stream(rec);
    for _ in 0..3 {
        let original = match (rec.intent, rec.idempotency_key.as_deref()) {
            (Intent::Rejected, _) | (_, None) => None,
            (_, Some(key)) => b.find_key(key).await?,
        };
        let (result, content) = settle(rec, original.as_ref());
        let next = heads.next(b, &stream).await?;
        let staged_before = heads.staged.get(&stream).cloned();
        let link = heads.link(&stream, next, &content);
        let row = ChainedDelivery { content, link };
        let Some(seq) = b.insert_delivery(&row).await? else {
            // Another process committed this key first: undo the staged link
            // and decide again, now that its row is visible.
            match staged_before {
                Some(h) => heads.staged.insert(stream.clone(), h),
                None => heads.staged.remove(&stream),
            };
            continue;
        };
        return Ok(match (result, original) {
            (ProcessingResult::Accepted, _) => Committed::Accepted { seq },
            (ProcessingResult::Ignored, _) => Committed::Ignored { seq },
            (ProcessingResult::Duplicate, Some(original)) => Committed::Duplicate { seq, original },
            (ProcessingResult::Rejected, Some(original)) if rec.intent != Intent::Rejected => {
                Committed::Conflict { seq, original }
            }
            _ => Committed::Rejected { seq },
        });
    }
    Err(sqlx::Error::Protocol("the idempotency key kept changing hands; giving up on this group".into()))
}

async fn append_decision<B: Backend>(b: &mut B, heads: &mut Heads, r: &DecisionRecord) -> Result<(), sqlx::Error> {
    if b.decision_exists(&r.record_id).await? {
        return Ok(());
    }
    let stream = chain::stream_of(&r.candidate_id, &r.application_id);
    let next = heads.next(b, &stream).await?;
    let link = heads.link(&stream, next, r);
    b.insert_decision(r, &link).await
}

fn streams_of(batch: &[Op]) -> Vec<String> {
    let mut streams: Vec<String> = batch
        .iter()
        .flat_map(|op| match op {
            Op::Commit(rec, _) => vec![delivery_stream(rec)],
            Op::Decisions(records, _) => {
                records.iter().map(|r| chain::stream_of(&r.candidate_id, &r.application_id)).collect()
            }
            Op::Forwarded(..) | Op::Retain { .. } => vec![],
        })
        .collect();
    streams.sort();
    streams.dedup();
    streams
}

/// Cut every chain's records older than `cutoff`, as a prefix: a record
/// stays when any earlier one in its chain is newer than the cutoff, so the
/// kept part is always one unbroken run of links after a checkpoint.
async fn retain<B: Backend>(b: &mut B, heads: &mut Heads, cutoff: &str) -> Result<Retention, sqlx::Error> {
    let mut by_stream: HashMap<String, Vec<ChainEntry>> = HashMap::new();
    for e in b.chain_entries().await? {
        by_stream.entry(e.stream.clone()).or_default().push(e);
    }
    let mut streams: Vec<_> = by_stream.keys().cloned().collect();
    streams.sort();
    b.lock_streams(&streams).await?;
    let now = crate::now_rfc3339();
    let mut report = Retention { cutoff: cutoff.to_owned(), ..Default::default() };
    for stream in streams {
        let mut entries = by_stream.remove(&stream).unwrap_or_default();
        entries.sort_by_key(|e| e.chain_pos);
        let cut: Vec<&ChainEntry> = entries.iter().take_while(|e| e.at.as_str() < cutoff).collect();
        let Some(last) = cut.last() else { continue };
        let removed = b.delete_prefix(&stream, last.chain_pos).await?;
        let cp =
            chain::Checkpoint { stream: stream.clone(), next_pos: last.chain_pos + 1, prev_hash: last.hash.clone() };
        b.save_checkpoint(&cp, removed as i64, &now).await?;
        let (candidate_id, application_id) = stream.split_once(':').unwrap_or((stream.as_str(), ""));
        let id = crate::intake::sha256_hex(format!("{stream}\n{}", last.chain_pos).as_bytes());
        let record = DecisionRecord {
            record_id: format!("ret-{}", &id[..40]),
            recorded_at: now.clone(),
            kind: "retention".into(),
            candidate_id: candidate_id.into(),
            application_id: application_id.into(),
            reason: format!("removed {removed} records older than {cutoff} (positions up to {})", last.chain_pos),
            processing_result: "retention".into(),
            ..Default::default()
        };
        append_decision(b, heads, &record).await?;
        report.streams_cut += 1;
        report.records_removed += removed as usize;
    }
    Ok(report)
}

async fn run_group<B: Backend>(
    b: &mut B,
    batch: &[Op],
    results: &mut Vec<Option<Committed>>,
    retained: &mut Option<Retention>,
) -> Result<bool, sqlx::Error> {
    b.begin().await?;
    b.lock_streams(&streams_of(batch)).await?;
    let mut heads = Heads::default();
    let mut forwardable = false;
    for op in batch {
        match op {
            Op::Commit(rec, _) => {
                let c = commit_one(b, &mut heads, rec).await?;
                forwardable |= matches!(c, Committed::Accepted { .. });
                results.push(Some(c));
            }
            Op::Forwarded(seqs, _) => {
                b.mark_forwarded(seqs, &crate::now_rfc3339()).await?;
                results.push(None);
            }
            Op::Decisions(records, _) => {
                for r in records {
                    append_decision(b, &mut heads, r).await?;
                }
                results.push(None);
            }
            Op::Retain { cutoff, .. } => {
                *retained = Some(retain(b, &mut heads, cutoff).await?);
                results.push(None);
            }
        }
    }
    for (stream, (pos, hash)) in &heads.staged {
        b.set_head(stream, *pos, hash).await?;
    }
    b.commit().await?;
    Ok(forwardable)
}

async fn writer_loop<B: Backend>(
    mut b: B,
    mut rx: mpsc::Receiver<Op>,
    mut later: mpsc::Receiver<Op>,
    notify: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    loop {
        b.between_groups(rx.is_empty()).await;
        let first = tokio::select! {
            biased;
            op = rx.recv() => op,
            op = later.recv() => op,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let waited_on = batch.iter().any(|op| !matches!(op, Op::Commit(_, None)));
        let room = if waited_on { LATER_WITH_WAITED } else { LATER_ALONE.saturating_sub(batch.len()) };
        for _ in 0..room.min(MAX_GROUP.saturating_sub(batch.len())) {
            match later.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut retained = None;
        let outcome = run_group(&mut b, &batch, &mut results, &mut retained).await;
        let results: Vec<Result<Option<Committed>, String>> = match outcome {
            Ok(forwardable) => {
                if forwardable {
                    notify.notify_one();
                }
                results.into_iter().map(Ok).collect()
            }
            Err(e) => {
                b.rollback().await;
                tracing::error!(error = %e, group = batch.len(), "event store commit failed");
                batch.iter().map(|_| Err(e.to_string())).collect()
            }
        };
        for (op, r) in batch.drain(..).zip(results) {
            match op {
                Op::Commit(_, Some(reply)) => {
                    let _ = reply.send(r.map(|c| c.expect("commit ops yield a result")));
                }
                Op::Commit(_, None) => {}
                Op::Forwarded(_, reply) | Op::Decisions(_, reply) => {
                    let _ = reply.send(r.map(|_| ()));
                }
                Op::Retain { reply, .. } => {
                    let _ = reply.send(r.map(|_| retained.clone().unwrap_or_default()));
                }
            }
        }
    }
}
