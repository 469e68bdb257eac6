//! SQLite: the embedded default. WAL mode, `synchronous=FULL`; one writer
//! connection (the shared group-commit writer) and a read pool. One relay
//! per file: the lease is an exclusive lock on `<file>.relay-lease`, which the
//! kernel releases when its holder dies.

use super::reads::Reads;
use super::run::{Arg, Rowed, Run, arguments};
use super::{Backend, EventStore, RelayLease, StoreError, Writer};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};
use vbridge_core::chain;
use vbridge_proto::DecisionRecord;

pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
    lease_file: PathBuf,
}

impl SqliteStore {
    pub async fn open(url: &str, keys: vbridge_core::chain::Keyring) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the 2xx, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Deleted content is overwritten, so an erased candidate's key
            // leaves no copy in a free page (docs/privacy.md).
            .pragma("secure_delete", "ON");
        let mut conn = SqliteBackend::connect(&opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        let lease_file = {
            let mut p = opts.get_filename().as_os_str().to_owned();
            p.push(".relay-lease");
            PathBuf::from(p)
        };
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts.clone().read_only(true)).await?;
        let backend = SqliteBackend { conn, opts, last_checkpoint: Instant::now() };
        Ok(SqliteStore { pool, writer: Writer::spawn(backend, &keys), lease_file })
    }
}

struct SqliteBackend {
    conn: SqliteConnection,
    opts: SqliteConnectOptions,
    last_checkpoint: Instant,
}

/// How often the writer checkpoints the WAL when no commit waits, and how
/// long it lets the WAL grow under unbroken load before it checkpoints anyway.
const CHECKPOINT_WHEN_QUIET: Duration = Duration::from_millis(250);
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(5);

/// The guards retention lifts inside its own transaction, and their DDL.
const GUARDS: [(&str, &str); 6] = [
    ("deliveries_no_delete", "BEFORE DELETE ON deliveries BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END"),
    ("decisions_no_delete", "BEFORE DELETE ON decisions BEGIN SELECT RAISE(ABORT, 'decisions is append-only'); END"),
    ("forwards_no_delete", "BEFORE DELETE ON forwards BEGIN SELECT RAISE(ABORT, 'forwards is append-only'); END"),
    (
        "chain_checkpoints_no_insert",
        "BEFORE INSERT ON chain_checkpoints BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END",
    ),
    (
        "chain_checkpoints_no_update",
        "BEFORE UPDATE ON chain_checkpoints BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END",
    ),
    (
        "chain_checkpoints_no_delete",
        "BEFORE DELETE ON chain_checkpoints BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END",
    ),
];

const DELETE_FORWARDS: &str =
    "DELETE FROM forwards WHERE seq IN (SELECT seq FROM deliveries WHERE stream = ? AND chain_pos < ?)";
// The shared prefix rule (`writer::retain`) already stops before any row in
// the outbox; a row there would fail the outbox's foreign key here.
const DELETE_DELIVERIES: &str = "DELETE FROM deliveries WHERE stream = ? AND chain_pos < ?";
const DELETE_DECISIONS: &str = "DELETE FROM decisions WHERE stream = ? AND chain_pos < ?";
const SAVE_CHECKPOINT: &str = "INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET next_pos = excluded.next_pos, \
     prev_hash = excluded.prev_hash, removed = chain_checkpoints.removed + excluded.removed, cut_at = excluded.cut_at";

impl SqliteBackend {
    async fn connect(opts: &SqliteConnectOptions) -> Result<SqliteConnection, sqlx::Error> {
        let mut conn = SqliteConnection::connect_with(opts).await?;
        // No automatic checkpoints inside commits: the writer runs them between groups.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
        Ok(conn)
    }
}

#[async_trait]
impl Run for SqliteConnection {
    const POSTGRES: bool = false;

    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        let args: SqliteArguments<'_> = arguments(args)?;
        Ok(sqlx::query_with(sql, args).execute(self).await?.rows_affected())
    }

    async fn fetch_all<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<T>, sqlx::Error> {
        let args: SqliteArguments<'_> = arguments(args)?;
        sqlx::query_as_with(sql, args).fetch_all(self).await
    }

    async fn fetch_optional<T: Rowed>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        let args: SqliteArguments<'_> = arguments(args)?;
        sqlx::query_as_with(sql, args).fetch_optional(self).await
    }

    async fn fetch_one<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<T, sqlx::Error> {
        let args: SqliteArguments<'_> = arguments(args)?;
        sqlx::query_as_with(sql, args).fetch_one(self).await
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Conn = SqliteConnection;

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        // IMMEDIATE: take the write lock first, so the chain heads read in this
        // group cannot move under us, even with another process on the file.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await.map(|_| ())
    }

    async fn lock_streams(&mut self, _streams: &[String]) -> Result<Option<Vec<(String, i64, String)>>, sqlx::Error> {
        Ok(None) // the whole database is locked by BEGIN IMMEDIATE
    }

    /// The guards come down inside the retention transaction and go back up
    /// before it commits: no other connection sees them missing.
    async fn cut_prefix(&mut self, cp: &chain::Checkpoint, now: &str) -> Result<u64, sqlx::Error> {
        for (trigger, _) in GUARDS {
            sqlx::query(&format!("DROP TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        let mut removed = 0;
        for (statement, counts) in [(DELETE_FORWARDS, false), (DELETE_DELIVERIES, true), (DELETE_DECISIONS, true)] {
            let done = sqlx::query(statement).bind(&cp.stream).bind(cp.next_pos).execute(&mut self.conn).await?;
            if counts {
                removed += done.rows_affected();
            }
        }
        sqlx::query(SAVE_CHECKPOINT)
            .bind(&cp.stream)
            .bind(cp.next_pos)
            .bind(&cp.prev_hash)
            .bind(removed as i64)
            .bind(now)
            .execute(&mut self.conn)
            .await?;
        for (trigger, ddl) in GUARDS {
            sqlx::query(&format!("CREATE TRIGGER {trigger} {ddl}")).execute(&mut self.conn).await?;
        }
        Ok(removed)
    }

    async fn reconnect(&mut self) -> Result<(), sqlx::Error> {
        self.conn = Self::connect(&self.opts).await?;
        Ok(())
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

    /// The WAL still holds the pages the erased key was written to: copy it
    /// back (where `secure_delete` has zeroed the key) and cut it to nothing.
    async fn after_erase(&mut self) {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut self.conn).await {
            Ok((0, _, _)) => self.last_checkpoint = Instant::now(),
            Ok((busy, log, done)) => {
                tracing::warn!(
                    busy,
                    log,
                    done,
                    "the WAL was not cut after an erasure (a reader held it); the next quiet checkpoint copies it"
                )
            }
            Err(e) => tracing::warn!(error = %e, "the WAL was not cut after an erasure"),
        }
    }
}

#[async_trait]
impl Reads for SqliteStore {
    type Conn = SqliteConnection;
    type Lent = PoolConnection<Sqlite>;
    type Snapshot = Transaction<'static, Sqlite>;

    async fn lend(&self) -> Result<PoolConnection<Sqlite>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// A read transaction in WAL mode is a snapshot from its first read.
    async fn snapshot(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn end(snapshot: Transaction<'static, Sqlite>) -> Result<(), sqlx::Error> {
        snapshot.rollback().await
    }

    fn group_writer(&self) -> &Writer {
        &self.writer
    }

    async fn lease(&self) -> Result<Option<RelayLease>, StoreError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lease_file)
            .map_err(|e| StoreError::Unavailable(format!("relay lease file {}: {e}", self.lease_file.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RelayLease::File(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!("relay lease: {e}"))),
        }
    }
}

#[async_trait]
impl vbridge_activities::AuditSink for SqliteStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
    async fn records_of(&self, candidate_id: &str, application_id: &str) -> Result<Vec<DecisionRecord>, String> {
        let rows = self.decisions(Some(candidate_id), Some(application_id)).await.map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|d| d.record).collect())
    }
}
