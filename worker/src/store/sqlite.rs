//! SQLite: the embedded default. WAL mode, `synchronous=FULL`; one writer
//! connection (the shared group-commit writer), a read pool, and a connection
//! of its own for WAL checkpoints.

use super::{
    Backend, CHAIN_ENTRIES, ChainEntry, ChainedDelivery, DECISION_COLUMNS, DELIVERY_COLUMNS, DecisionRow, EventStore,
    Forwardable, LinkFields, Original, RelayLease, StoreError, StoredDecision, StoredDelivery, Writer, bind_decision,
    bind_delivery, to_checkpoints,
};
use crate::chain;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::{Duration, Instant};
use vbridge_proto::DecisionRecord;

pub struct SqliteStore {
    reads: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the 2xx, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        // No automatic checkpoints inside commits: the writer runs them when idle.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
        let reads = SqlitePoolOptions::new().max_connections(8).connect_with(opts.read_only(true)).await?;
        Ok(SqliteStore { reads, writer: Writer::spawn(SqliteBackend { conn, last_checkpoint: Instant::now() }) })
    }
}

const SAVE_CHECKPOINT_SQLITE: &str = "INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET next_pos = excluded.next_pos, \
     prev_hash = excluded.prev_hash, removed = chain_checkpoints.removed + excluded.removed, cut_at = excluded.cut_at";

struct SqliteBackend {
    conn: SqliteConnection,
    last_checkpoint: Instant,
}

/// How often the writer checkpoints the WAL when no commit waits, and how
/// long it lets the WAL grow under unbroken load before it checkpoints anyway.
const CHECKPOINT_WHEN_QUIET: Duration = Duration::from_millis(250);
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(5);

const FIND_KEY: &str = "SELECT seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result FROM deliveries \
     WHERE idempotency_key = ? AND processing_result IN ('accepted', 'ignored')";

#[async_trait]
impl Backend for SqliteBackend {
    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        // IMMEDIATE: take the write lock first, so the chain heads read in this
        // group cannot move under us, even with another process on the file.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await.map(|_| ())
    }

    async fn lock_streams(&mut self, _streams: &[String]) -> Result<(), sqlx::Error> {
        Ok(()) // the whole database is locked by BEGIN IMMEDIATE
    }

    async fn find_key(&mut self, key: &str) -> Result<Option<Original>, sqlx::Error> {
        sqlx::query_as(FIND_KEY).bind(key).fetch_optional(&mut self.conn).await
    }

    async fn head(&mut self, stream: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT chain_pos, hash FROM stream_heads WHERE stream = ?")
            .bind(stream)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn insert_delivery(&mut self, row: &ChainedDelivery) -> Result<Option<i64>, sqlx::Error> {
        let sql = format!(
            "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING seq"
        );
        bind_delivery!(sqlx::query_scalar(&sql), row).fetch_one(&mut self.conn).await.map(Some)
    }

    async fn decision_exists(&mut self, record_id: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT 1 FROM decisions WHERE record_id = ?")
            .bind(record_id)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.is_some())
    }

    async fn insert_decision(&mut self, r: &DecisionRecord, l: &LinkFields) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO decisions ({DECISION_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        bind_decision!(sqlx::query(&sql), r, l).execute(&mut self.conn).await.map(|_| ())
    }

    async fn mark_forwarded(&mut self, seqs: &[i64], now: &str) -> Result<(), sqlx::Error> {
        for seq in seqs {
            sqlx::query("INSERT OR IGNORE INTO forwards (seq, forwarded_at) VALUES (?, ?)")
                .bind(seq)
                .bind(now)
                .execute(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    async fn set_head(&mut self, stream: &str, pos: i64, hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO stream_heads (stream, chain_pos, hash) VALUES (?, ?, ?) \
             ON CONFLICT (stream) DO UPDATE SET chain_pos = excluded.chain_pos, hash = excluded.hash",
        )
        .bind(stream)
        .bind(pos)
        .bind(hash)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
    }

    async fn chain_entries(&mut self) -> Result<Vec<ChainEntry>, sqlx::Error> {
        sqlx::query_as(CHAIN_ENTRIES).fetch_all(&mut self.conn).await
    }

    async fn delete_prefix(&mut self, stream: &str, upto: i64) -> Result<u64, sqlx::Error> {
        // The guards come down inside this transaction and go back up before
        // it commits: no other connection ever sees them missing.
        for sql in ["DROP TRIGGER deliveries_no_delete", "DROP TRIGGER decisions_no_delete"] {
            sqlx::query(sql).execute(&mut self.conn).await?;
        }
        sqlx::query(
            "DELETE FROM forwards WHERE seq IN (SELECT seq FROM deliveries WHERE stream = ? AND chain_pos <= ?)",
        )
        .bind(stream)
        .bind(upto)
        .execute(&mut self.conn)
        .await?;
        let mut removed = 0;
        for table in ["deliveries", "decisions"] {
            removed += sqlx::query(&format!("DELETE FROM {table} WHERE stream = ? AND chain_pos <= ?"))
                .bind(stream)
                .bind(upto)
                .execute(&mut self.conn)
                .await?
                .rows_affected();
        }
        for sql in [
            "CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries \
             BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END",
            "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions \
             BEGIN SELECT RAISE(ABORT, 'decisions is append-only'); END",
        ] {
            sqlx::query(sql).execute(&mut self.conn).await?;
        }
        Ok(removed)
    }

    async fn save_checkpoint(&mut self, cp: &chain::Checkpoint, removed: i64, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query(SAVE_CHECKPOINT_SQLITE)
            .bind(&cp.stream)
            .bind(cp.next_pos)
            .bind(&cp.prev_hash)
            .bind(removed)
            .bind(now)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    async fn commit(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut self.conn).await.map(|_| ())
    }

    async fn rollback(&mut self) {
        if let Err(e) = sqlx::query("ROLLBACK").execute(&mut self.conn).await {
            tracing::debug!(error = %e, "rollback after a failed group");
        }
    }

    /// Checkpoint the WAL here, between groups, rather than on a connection
    /// of its own: measured on this project's machines, a checkpoint's fsync
    /// of the database file running beside a commit's fsync of the WAL stalled
    /// that commit for about 100 ms.
    async fn between_groups(&mut self, quiet: bool) {
        let due = if quiet { CHECKPOINT_WHEN_QUIET } else { CHECKPOINT_AT_LATEST };
        if self.last_checkpoint.elapsed() < due {
            return;
        }
        self.last_checkpoint = Instant::now();
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut self.conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError> {
        Ok(sqlx::query_as(FIND_KEY).bind(key).fetch_optional(&self.reads).await?)
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

    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query_as::<_, StoredDelivery>(
            "SELECT d.*, EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) AS forwarded FROM deliveries d \
             WHERE (?1 IS NULL OR d.candidate_id = ?1) AND (?2 IS NULL OR d.application_id = ?2) ORDER BY d.seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows)
    }

    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let rows = sqlx::query_as::<_, DecisionRow>(
            "SELECT * FROM decisions WHERE (?1 IS NULL OR candidate_id = ?1) AND (?2 IS NULL OR application_id = ?2) \
             ORDER BY seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.into_iter().map(StoredDecision::from).collect())
    }

    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError> {
        Ok(Some(RelayLease::Local))
    }

    async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError> {
        let rows =
            sqlx::query_as("SELECT stream, next_pos, prev_hash FROM chain_checkpoints").fetch_all(&self.reads).await?;
        Ok(to_checkpoints(rows))
    }

    fn writer(&self) -> &Writer {
        &self.writer
    }
}

#[async_trait]
impl vbridge_activities::AuditSink for SqliteStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
}
