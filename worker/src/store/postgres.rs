//! Postgres: for several bridge processes on one database. Each process runs
//! the shared group-commit writer on a connection of its own; chain heads are
//! locked per stream (`FOR UPDATE`, in stream order, so groups never
//! deadlock); a key two processes commit at once is settled by the unique
//! index (`ON CONFLICT DO NOTHING`) and decided again. One relay forwards at a
//! time, chosen by a session advisory lock.

use super::{
    Backend, CHAIN_ENTRIES, ChainEntry, ChainedDelivery, DECISION_COLUMNS, DELIVERY_COLUMNS, DecisionRow, EventStore,
    Forwardable, LinkFields, Original, RelayLease, StoreError, StoredDecision, StoredDelivery, Writer, bind_decision,
    bind_delivery, to_checkpoints,
};
use crate::chain::{self, GENESIS};
use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Row};
use vbridge_proto::DecisionRecord;

/// The advisory lock key of the relay lease ("vbridge relay").
const RELAY_LOCK: i64 = 0x7662_7265_6c61_79;

pub struct PgStore {
    url: String,
    pool: PgPool,
    writer: Writer,
}

impl PgStore {
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let conn = PgConnection::connect(url).await?;
        Ok(PgStore { url: url.to_owned(), pool, writer: Writer::spawn(PgBackend { conn }) })
    }
}

struct PgBackend {
    conn: PgConnection,
}

const FIND_KEY: &str = "SELECT seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result FROM deliveries \
     WHERE idempotency_key = $1 AND processing_result IN ('accepted', 'ignored')";

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Backend for PgBackend {
    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("BEGIN").execute(&mut self.conn).await.map(|_| ())
    }

    async fn lock_streams(&mut self, streams: &[String]) -> Result<(), sqlx::Error> {
        if streams.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO stream_heads (stream, chain_pos, hash) SELECT s, 0, $2 FROM unnest($1::text[]) AS s \
             ORDER BY s ON CONFLICT (stream) DO NOTHING",
        )
        .bind(streams)
        .bind(GENESIS)
        .execute(&mut self.conn)
        .await?;
        sqlx::query("SELECT stream FROM stream_heads WHERE stream = ANY($1) ORDER BY stream FOR UPDATE")
            .bind(streams)
            .fetch_all(&mut self.conn)
            .await?;
        Ok(())
    }

    async fn find_key(&mut self, key: &str) -> Result<Option<Original>, sqlx::Error> {
        sqlx::query_as(FIND_KEY).bind(key).fetch_optional(&mut self.conn).await
    }

    async fn head(&mut self, stream: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT chain_pos, hash FROM stream_heads WHERE stream = $1")
            .bind(stream)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn insert_delivery(&mut self, row: &ChainedDelivery) -> Result<Option<i64>, sqlx::Error> {
        let sql = format!(
            "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({}) \
             ON CONFLICT (idempotency_key) WHERE processing_result IN ('accepted', 'ignored') DO NOTHING RETURNING seq",
            placeholders(19)
        );
        bind_delivery!(sqlx::query_scalar(&sql), row).fetch_optional(&mut self.conn).await
    }

    async fn decision_exists(&mut self, record_id: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT 1 FROM decisions WHERE record_id = $1")
            .bind(record_id)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.is_some())
    }

    async fn insert_decision(&mut self, r: &DecisionRecord, l: &LinkFields) -> Result<(), sqlx::Error> {
        let sql = format!("INSERT INTO decisions ({DECISION_COLUMNS}) VALUES ({})", placeholders(24));
        bind_decision!(sqlx::query(&sql), r, l).execute(&mut self.conn).await.map(|_| ())
    }

    async fn mark_forwarded(&mut self, seqs: &[i64], now: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO forwards (seq, forwarded_at) SELECT s, $2 FROM unnest($1::bigint[]) AS s ON CONFLICT DO NOTHING",
        )
        .bind(seqs)
        .bind(now)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
    }

    async fn set_head(&mut self, stream: &str, pos: i64, hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE stream_heads SET chain_pos = $2, hash = $3 WHERE stream = $1")
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
        // DISABLE TRIGGER holds the tables' exclusive lock until commit: no
        // other session ever writes while the guards are down.
        const GUARDS: [(&str, &str); 3] = [
            ("deliveries", "deliveries_append_only"),
            ("decisions", "decisions_append_only"),
            ("forwards", "forwards_append_only"),
        ];
        for (table, trigger) in GUARDS {
            sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        sqlx::query(
            "DELETE FROM forwards WHERE seq IN (SELECT seq FROM deliveries WHERE stream = $1 AND chain_pos <= $2)",
        )
        .bind(stream)
        .bind(upto)
        .execute(&mut self.conn)
        .await?;
        let mut removed = 0;
        for table in ["deliveries", "decisions"] {
            removed += sqlx::query(&format!("DELETE FROM {table} WHERE stream = $1 AND chain_pos <= $2"))
                .bind(stream)
                .bind(upto)
                .execute(&mut self.conn)
                .await?
                .rows_affected();
        }
        for (table, trigger) in GUARDS {
            sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        Ok(removed)
    }

    async fn save_checkpoint(&mut self, cp: &chain::Checkpoint, removed: i64, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (stream) DO UPDATE SET next_pos = excluded.next_pos, prev_hash = excluded.prev_hash, \
             removed = chain_checkpoints.removed + excluded.removed, cut_at = excluded.cut_at",
        )
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
}

#[async_trait]
impl EventStore for PgStore {
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError> {
        Ok(sqlx::query_as(FIND_KEY).bind(key).fetch_optional(&self.pool).await?)
    }

    async fn unforwarded(&self, after_seq: i64, limit: i64) -> Result<Vec<Forwardable>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.seq, d.signal FROM deliveries d WHERE d.processing_result = 'accepted' AND d.seq > $1 \
             AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) ORDER BY d.seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Forwardable { seq: r.get(0), signal: r.get::<Option<String>, _>(1).unwrap_or_default() })
            .collect())
    }

    fn seq_is_commit_order(&self) -> bool {
        // Sequence numbers are taken before commit, and several processes
        // commit: a smaller seq may become visible after a larger one.
        false
    }

    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        Ok(sqlx::query_as::<_, StoredDelivery>(
            "SELECT d.*, EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) AS forwarded FROM deliveries d \
             WHERE ($1::text IS NULL OR d.candidate_id = $1) AND ($2::text IS NULL OR d.application_id = $2) ORDER BY d.seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let rows = sqlx::query_as::<_, DecisionRow>(
            "SELECT * FROM decisions WHERE ($1::text IS NULL OR candidate_id = $1) \
             AND ($2::text IS NULL OR application_id = $2) ORDER BY seq",
        )
        .bind(candidate_id)
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(StoredDecision::from).collect())
    }

    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(RELAY_LOCK).fetch_one(&mut conn).await?;
        Ok(got.then_some(RelayLease::Postgres(conn)))
    }

    async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError> {
        let rows =
            sqlx::query_as("SELECT stream, next_pos, prev_hash FROM chain_checkpoints").fetch_all(&self.pool).await?;
        Ok(to_checkpoints(rows))
    }

    fn writer(&self) -> &Writer {
        &self.writer
    }
}

#[async_trait]
impl vbridge_activities::AuditSink for PgStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
}
