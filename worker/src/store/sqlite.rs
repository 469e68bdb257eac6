//! SQLite: the embedded default. WAL mode, `synchronous=FULL`; one writer
//! connection (the shared group-commit writer) and a read pool.

use super::sql::{self, backend_impl, store_impl};
use super::{
    Backend, ChainEntry, ChainedDelivery, DecisionRow, EventStore, Forwardable, LinkFields, Original, RelayLease,
    StoreError, StoredDecision, StoredDelivery, Writer, bind_decision, bind_delivery,
};
use crate::chain;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, Instant};
use vbridge_proto::DecisionRecord;

pub struct SqliteStore {
    pool: SqlitePool,
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
        // No automatic checkpoints inside commits: the writer runs them between groups.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts.read_only(true)).await?;
        Ok(SqliteStore { pool, writer: Writer::spawn(SqliteBackend { conn, last_checkpoint: Instant::now() }) })
    }
}

struct SqliteBackend {
    conn: SqliteConnection,
    last_checkpoint: Instant,
}

/// How often the writer checkpoints the WAL when no commit waits, and how
/// long it lets the WAL grow under unbroken load before it checkpoints anyway.
const CHECKPOINT_WHEN_QUIET: Duration = Duration::from_millis(250);
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(5);

const GUARDS: [(&str, &str); 2] = [("deliveries", "deliveries_no_delete"), ("decisions", "decisions_no_delete")];

impl SqliteBackend {
    fn sql(statement: &'static str) -> Cow<'static, str> {
        Cow::Borrowed(statement)
    }

    /// The delete guards come down inside the retention transaction and go
    /// back up before it commits: no other connection sees them missing.
    async fn lift_guards(&mut self) -> Result<(), sqlx::Error> {
        for (_, trigger) in GUARDS {
            sqlx::query(&format!("DROP TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn restore_guards(&mut self) -> Result<(), sqlx::Error> {
        for (table, trigger) in GUARDS {
            let create = format!(
                "CREATE TRIGGER {trigger} BEFORE DELETE ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            );
            sqlx::query(&create).execute(&mut self.conn).await?;
        }
        Ok(())
    }
}

impl SqliteStore {
    fn sql(statement: &'static str) -> Cow<'static, str> {
        SqliteBackend::sql(statement)
    }
}

backend_impl!(SqliteBackend, {
    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        // IMMEDIATE: take the write lock first, so the chain heads read in this
        // group cannot move under us, even with another process on the file.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await.map(|_| ())
    }

    async fn lock_streams(&mut self, _streams: &[String]) -> Result<(), sqlx::Error> {
        Ok(()) // the whole database is locked by BEGIN IMMEDIATE
    }

    /// Checkpoint the WAL here, between groups, rather than on a connection
    /// of its own: measured on this project's machines, a checkpoint's fsync
    /// of the database file running beside a commit's fsync of the WAL stalled
    /// that commit for about 100 ms (docs/benchmarks.md).
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
});

store_impl!(SqliteStore, {
    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError> {
        Ok(Some(RelayLease::Local))
    }
});

#[async_trait]
impl vbridge_activities::AuditSink for SqliteStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
}
