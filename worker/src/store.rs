//! The append-only event store, behind one trait so that Postgres can join
//! SQLite. Writes go through a single writer task that commits in groups:
//! every request waiting in the queue shares one transaction and one fsync,
//! so more concurrency means more throughput, not more lock contention.

use crate::chain::{self, DeliveryContent, GENESIS, REJECTED_STREAM};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use vbridge_proto::DecisionRecord;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One stored row, for timelines and tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredDelivery {
    pub seq: i64,
    pub received_at: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    pub candidate_id: Option<String>,
    pub application_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub signature_valid: bool,
    pub processing_result: String,
    pub reject_code: Option<String>,
    pub trace_id: String,
    pub body_sha256: String,
    pub delivery_attempt: Option<i64>,
    pub payload: Option<String>,
    pub signal: Option<String>,
    pub forwarded: bool,
    pub stream: Option<String>,
    pub chain_pos: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl StoredDelivery {
    pub fn content(&self) -> DeliveryContent {
        DeliveryContent {
            received_at: self.received_at.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            occurred_at: self.occurred_at.clone(),
            candidate_id: self.candidate_id.clone(),
            application_id: self.application_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            signature_valid: self.signature_valid,
            processing_result: self.processing_result.clone(),
            reject_code: self.reject_code.clone(),
            trace_id: self.trace_id.clone(),
            body_sha256: self.body_sha256.clone(),
            delivery_attempt: self.delivery_attempt,
            payload: self.payload.clone(),
            signal: self.signal.clone(),
        }
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the event store writer has stopped")]
    WriterGone,
    #[error("unsupported database URL {0:?} (expected sqlite://PATH or postgres://...)")]
    BadUrl(String),
}

#[async_trait]
/// The store is also where workflow decisions are appended (`AuditSink`).
pub trait EventStore: vbridge_activities::AuditSink + Send + Sync + 'static {
    /// The committed delivery holding this idempotency key, if any.
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError>;
    /// Commit one delivery durably, then answer.
    async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, StoreError>;
    /// Queue a row whose answer does not depend on it (duplicates): written in
    /// the next group, without making the caller wait for the fsync.
    fn record_later(&self, rec: DeliveryRecord);
    /// Accepted deliveries after `after_seq` not yet forwarded, in commit order.
    async fn unforwarded(&self, after_seq: i64, limit: i64) -> Result<Vec<Forwardable>, StoreError>;
    async fn mark_forwarded(&self, seqs: Vec<i64>) -> Result<(), StoreError>;
    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError>;
    /// Woken after every commit that added something to forward.
    fn committed_notify(&self) -> Arc<Notify>;
    /// Append decision records; a `record_id` already stored is skipped.
    async fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError>;
    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError>;
    /// Recompute and check the chains (all, or only the named streams).
    async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError>;
    async fn verify_chains(&self) -> Result<chain::Report, StoreError> {
        self.verify_streams(None).await
    }
}

pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_owned()))
    }
}

enum Op {
    Commit(DeliveryRecord, Option<oneshot::Sender<Result<Committed, String>>>),
    Forwarded(Vec<i64>, oneshot::Sender<Result<(), String>>),
    Decisions(Vec<DecisionRecord>, oneshot::Sender<Result<(), String>>),
}

/// Chain heads: the last position and hash of each stream, read inside the
/// write transaction (which holds SQLite's write lock from its first statement),
/// so links never fork, even with several processes on one file.
#[derive(Default)]
struct Heads {
    staged: HashMap<String, (i64, String)>,
}

impl Heads {
    async fn next(&mut self, conn: &mut SqliteConnection, stream: &str) -> Result<(i64, String), sqlx::Error> {
        if let Some(h) = self.staged.get(stream) {
            return Ok((h.0 + 1, h.1.clone()));
        }
        let row = sqlx::query("SELECT chain_pos, hash FROM stream_heads WHERE stream = ?")
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(r) => (r.get::<i64, _>(0) + 1, r.get(1)),
            None => (1, GENESIS.to_owned()),
        })
    }

    fn stage(&mut self, stream: &str, pos: i64, hash: String) {
        self.staged.insert(stream.to_owned(), (pos, hash));
    }

    /// Move the heads in the same transaction as the records.
    async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        for (stream, (pos, hash)) in self.staged.drain() {
            sqlx::query(
                "INSERT INTO stream_heads (stream, chain_pos, hash) VALUES (?, ?, ?) \
                 ON CONFLICT (stream) DO UPDATE SET chain_pos = excluded.chain_pos, hash = excluded.hash",
            )
            .bind(stream)
            .bind(pos)
            .bind(hash)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

pub struct SqliteStore {
    reads: SqlitePool,
    tx: mpsc::Sender<Op>,
    /// Rows nobody waits for (duplicates): written after, and never ahead of,
    /// the rows someone's answer waits on.
    later: mpsc::Sender<Op>,
    notify: Arc<Notify>,
}

const MAX_GROUP: usize = 512;

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the 2xx, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut writer = SqliteConnection::connect_with(&opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut writer).await?;
        // Checkpoints would otherwise run inside a commit group now and then and
        // stall every request in it; a connection of their own runs them.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut writer).await?;
        let checkpointer = SqliteConnection::connect_with(&opts).await?;
        tokio::spawn(checkpoint_loop(checkpointer));
        let reads = SqlitePoolOptions::new().max_connections(8).connect_with(opts.read_only(true)).await?;
        let (tx, rx) = mpsc::channel::<Op>(8192);
        let (later, later_rx) = mpsc::channel::<Op>(65_536);
        let notify = Arc::new(Notify::new());
        tokio::spawn(writer_loop(writer, rx, later_rx, notify.clone()));
        Ok(SqliteStore { reads, tx, later, notify })
    }
}

/// Deferred rows one group may carry along with rows that are waited on.
const LATER_PER_GROUP: usize = 32;

async fn writer_loop(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Op>,
    mut later: mpsc::Receiver<Op>,
    notify: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    loop {
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
        let room = if waited_on { LATER_PER_GROUP } else { MAX_GROUP };
        for _ in 0..room.min(MAX_GROUP.saturating_sub(batch.len())) {
            match later.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut results: Vec<Result<Option<Committed>, String>> = Vec::with_capacity(batch.len());
        let mut heads = Heads::default();
        let outcome: Result<bool, sqlx::Error> = async {
            // IMMEDIATE: take the write lock first, so chain heads read below
            // cannot move under us (another process may share the file).
            sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
            let tx = &mut conn;
            let mut forwardable = false;
            for op in &batch {
                match op {
                    Op::Commit(rec, _) => {
                        let c = commit_one(tx, &mut heads, rec).await?;
                        forwardable |= matches!(c, Committed::Accepted { .. });
                        results.push(Ok(Some(c)));
                    }
                    Op::Forwarded(seqs, _) => {
                        let now = crate::now_rfc3339();
                        for seq in seqs {
                            sqlx::query("INSERT OR IGNORE INTO forwards (seq, forwarded_at) VALUES (?, ?)")
                                .bind(seq)
                                .bind(&now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        results.push(Ok(None));
                    }
                    Op::Decisions(records, _) => {
                        for r in records {
                            append_decision(tx, &mut heads, r).await?;
                        }
                        results.push(Ok(None));
                    }
                }
            }
            heads.flush(tx).await?;
            sqlx::query("COMMIT").execute(&mut *tx).await?;
            Ok(forwardable)
        }
        .await;
        match outcome {
            Ok(forwardable) => {
                if forwardable {
                    notify.notify_waiters();
                    notify.notify_one();
                }
            }
            Err(e) => {
                if let Err(rb) = sqlx::query("ROLLBACK").execute(&mut conn).await {
                    tracing::debug!(error = %rb, "rollback after a failed group");
                }
                tracing::error!(error = %e, group = batch.len(), "event store commit failed");
                results = batch.iter().map(|_| Err(e.to_string())).collect();
            }
        }
        for (op, r) in batch.drain(..).zip(results) {
            match op {
                Op::Commit(_, Some(reply)) => {
                    let _ = reply.send(r.map(|c| c.expect("commit ops yield a result")));
                }
                Op::Commit(_, None) => {}
                Op::Forwarded(_, reply) | Op::Decisions(_, reply) => {
                    let _ = reply.send(r.map(|_| ()));
                }
            }
        }
    }
}

async fn checkpoint_loop(mut conn: SqliteConnection) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

async fn find_key_on(conn: &mut SqliteConnection, key: &str) -> Result<Option<Original>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT seq, event_id, trace_id, processing_result FROM deliveries \
         WHERE idempotency_key = ? AND processing_result IN ('accepted', 'ignored')",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Original {
        seq: r.get(0),
        event_id: r.get::<Option<String>, _>(1).unwrap_or_default(),
        trace_id: r.get(2),
        processing_result: r.get(3),
    }))
}

async fn commit_one(
    conn: &mut SqliteConnection,
    heads: &mut Heads,
    rec: &DeliveryRecord,
) -> Result<Committed, sqlx::Error> {
    let mut rec = rec.clone();
    let mut original = None;
    if matches!(rec.intent, Intent::Fresh | Intent::FreshIgnored | Intent::Duplicate) {
        if let Some(key) = rec.idempotency_key.as_deref() {
            original = find_key_on(conn, key).await?;
        }
    }
    let result = match (&rec.intent, &original) {
        (Intent::Rejected, _) => ProcessingResult::Rejected,
        (_, Some(o)) if Some(o.event_id.as_str()) == rec.event_id.as_deref() => ProcessingResult::Duplicate,
        (_, Some(_)) => {
            rec.reject_code = Some("idempotency_conflict".into());
            ProcessingResult::Rejected
        }
        (Intent::FreshIgnored, None) => ProcessingResult::Ignored,
        (_, None) => ProcessingResult::Accepted,
    };
    if matches!(result, ProcessingResult::Rejected | ProcessingResult::Duplicate) {
        // Only the first commit of a key keeps the payload and is forwarded.
        if result == ProcessingResult::Rejected {
            rec.payload = None;
        }
        rec.signal = None;
    }
    if result == ProcessingResult::Ignored {
        rec.signal = None;
    }
    let stream = match (result, rec.candidate_id.as_deref(), rec.application_id.as_deref()) {
        (ProcessingResult::Rejected, _, _) => REJECTED_STREAM.to_owned(),
        (_, Some(c), Some(a)) => chain::stream_of(c, a),
        _ => REJECTED_STREAM.to_owned(),
    };
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
        reject_code: rec.reject_code.clone(),
        trace_id: rec.trace_id.clone(),
        body_sha256: rec.body_sha256.clone(),
        delivery_attempt: rec.delivery_attempt,
        payload: rec.payload.clone(),
        signal: rec.signal.clone(),
    };
    let (pos, prev) = heads.next(conn, &stream).await?;
    let hash = chain::link_hash(&stream, pos, &prev, &content);
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO deliveries (received_at, event_id, event_type, occurred_at, candidate_id, application_id, \
         idempotency_key, signature_valid, processing_result, reject_code, trace_id, body_sha256, delivery_attempt, \
         payload, signal, stream, chain_pos, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(&rec.received_at)
    .bind(&rec.event_id)
    .bind(&rec.event_type)
    .bind(&rec.occurred_at)
    .bind(&rec.candidate_id)
    .bind(&rec.application_id)
    .bind(&rec.idempotency_key)
    .bind(rec.signature_valid)
    .bind(result.as_str())
    .bind(&rec.reject_code)
    .bind(&rec.trace_id)
    .bind(&rec.body_sha256)
    .bind(rec.delivery_attempt)
    .bind(&rec.payload)
    .bind(&rec.signal)
    .bind(&stream)
    .bind(pos)
    .bind(&prev)
    .bind(&hash)
    .fetch_one(&mut *conn)
    .await?;
    heads.stage(&stream, pos, hash);
    Ok(match (result, original) {
        (ProcessingResult::Accepted, _) => Committed::Accepted { seq },
        (ProcessingResult::Ignored, _) => Committed::Ignored { seq },
        (ProcessingResult::Duplicate, Some(original)) => Committed::Duplicate { seq, original },
        (ProcessingResult::Rejected, Some(original)) if rec.intent != Intent::Rejected => {
            Committed::Conflict { seq, original }
        }
        _ => Committed::Rejected { seq },
    })
}

async fn append_decision(
    conn: &mut SqliteConnection,
    heads: &mut Heads,
    r: &DecisionRecord,
) -> Result<(), sqlx::Error> {
    let exists = sqlx::query("SELECT 1 FROM decisions WHERE record_id = ?")
        .bind(&r.record_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let stream = chain::stream_of(&r.candidate_id, &r.application_id);
    let (pos, prev) = heads.next(conn, &stream).await?;
    let hash = chain::link_hash(&stream, pos, &prev, r);
    sqlx::query(
        "INSERT INTO decisions (record_id, recorded_at, kind, candidate_id, application_id, event_id, event_type, \
         occurred_at, received_at, idempotency_key, state_before, state_after, reason, write_targets, delivery_attempt, \
         processing_result, trace_id, override_actor, override_reason_code, override_timestamp, stream, chain_pos, \
         prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.record_id)
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
    .bind(&stream)
    .bind(pos)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    heads.stage(&stream, pos, hash);
    Ok(())
}

fn row_to_decision(r: &sqlx::sqlite::SqliteRow) -> StoredDecision {
    StoredDecision {
        seq: r.get("seq"),
        record: DecisionRecord {
            record_id: r.get("record_id"),
            recorded_at: r.get("recorded_at"),
            kind: r.get("kind"),
            candidate_id: r.get("candidate_id"),
            application_id: r.get("application_id"),
            event_id: r.get("event_id"),
            event_type: r.get("event_type"),
            occurred_at: r.get("occurred_at"),
            received_at: r.get("received_at"),
            idempotency_key: r.get("idempotency_key"),
            state_before: r.get("state_before"),
            state_after: r.get("state_after"),
            reason: r.get("reason"),
            write_targets: r.get("write_targets"),
            delivery_attempt: r.get::<i64, _>("delivery_attempt") as u32,
            processing_result: r.get("processing_result"),
            trace_id: r.get("trace_id"),
            override_actor: r.get("override_actor"),
            override_reason_code: r.get("override_reason_code"),
            override_timestamp: r.get("override_timestamp"),
        },
        stream: r.get("stream"),
        chain_pos: r.get("chain_pos"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

fn row_to_delivery(r: &sqlx::sqlite::SqliteRow) -> StoredDelivery {
    StoredDelivery {
        seq: r.get("seq"),
        received_at: r.get("received_at"),
        event_id: r.get("event_id"),
        event_type: r.get("event_type"),
        occurred_at: r.get("occurred_at"),
        candidate_id: r.get("candidate_id"),
        application_id: r.get("application_id"),
        idempotency_key: r.get("idempotency_key"),
        signature_valid: r.get("signature_valid"),
        processing_result: r.get("processing_result"),
        reject_code: r.get("reject_code"),
        trace_id: r.get("trace_id"),
        body_sha256: r.get("body_sha256"),
        delivery_attempt: r.get("delivery_attempt"),
        payload: r.get("payload"),
        signal: r.get("signal"),
        forwarded: r.get::<i64, _>("forwarded") != 0,
        stream: r.get("stream"),
        chain_pos: r.get("chain_pos"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        Ok(find_key_on(&mut conn, key).await?)
    }

    async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Commit(rec, Some(reply))).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(|e| StoreError::Db(sqlx::Error::Protocol(e)))
    }

    fn record_later(&self, rec: DeliveryRecord) {
        if let Err(e) = self.later.try_send(Op::Commit(rec, None)) {
            tracing::warn!(error = %e, "event store queue full; a duplicate-delivery row was not recorded");
        }
    }

    async fn unforwarded(&self, after_seq: i64, limit: i64) -> Result<Vec<Forwardable>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.seq, d.signal FROM deliveries d WHERE d.processing_result = 'accepted' AND d.seq > ? \
             AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) ORDER BY d.seq LIMIT ?",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Forwardable { seq: r.get(0), signal: r.get::<Option<String>, _>(1).unwrap_or_default() })
            .collect())
    }

    async fn mark_forwarded(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Forwarded(seqs, reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(|e| StoreError::Db(sqlx::Error::Protocol(e)))
    }

    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.*, EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) AS forwarded FROM deliveries d \
             WHERE (?1 IS NULL OR d.candidate_id = ?1) AND (?2 IS NULL OR d.application_id = ?2) ORDER BY d.seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.iter().map(row_to_delivery).collect())
    }

    fn committed_notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Decisions(records, reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.map_err(|e| StoreError::Db(sqlx::Error::Protocol(e)))
    }

    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM decisions WHERE (?1 IS NULL OR candidate_id = ?1) AND (?2 IS NULL OR application_id = ?2) \
             ORDER BY seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.iter().map(row_to_decision).collect())
    }

    async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError> {
        let wanted = |s: &str| streams.is_none_or(|list| list.iter().any(|w| w == s));
        let deliveries: Vec<_> = self
            .deliveries(None, None)
            .await?
            .into_iter()
            .filter(|d| d.stream.as_deref().is_none_or(&wanted))
            .collect();
        let decisions: Vec<_> = self.decisions(None, None).await?.into_iter().filter(|d| wanted(&d.stream)).collect();
        let mut links = Vec::with_capacity(deliveries.len() + decisions.len());
        let mut unchained = 0;
        for d in deliveries {
            let (Some(stream), Some(pos), Some(prev), Some(hash)) =
                (d.stream.clone(), d.chain_pos, d.prev_hash.clone(), d.hash.clone())
            else {
                unchained += 1;
                continue;
            };
            let recomputed = chain::link_hash(&stream, pos, &prev, &d.content());
            links.push(chain::Link {
                stream,
                chain_pos: pos,
                prev_hash: prev,
                hash,
                recomputed,
                label: format!("delivery seq {}", d.seq),
            });
        }
        for d in decisions {
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
        Ok(chain::verify(links, &[], unchained))
    }
}

#[async_trait]
impl vbridge_activities::AuditSink for SqliteStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
}
