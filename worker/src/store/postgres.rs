//! Postgres: for several bridge processes on one database. Each process runs
//! the shared group-commit writer on a connection of its own; chain heads are
//! locked per stream (`FOR UPDATE`, in stream order, so groups never
//! deadlock); a key two processes commit at once is settled by the unique
//! index (`ON CONFLICT DO NOTHING`) and decided again. One relay forwards at a
//! time, chosen by a session advisory lock.
//!
//! Migrations need the owning role. A store opened as a role that owns
//! nothing (as `docs/operations.md` advises) finds them applied and skips them.

use super::reads::Reads;
use super::run::{Arg, Rowed, Run, arguments};
use super::sql;
use super::{Backend, EventStore, RelayLease, StoreError, Writer};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgArguments;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use vbridge_core::chain::{self, GENESIS};
use vbridge_proto::DecisionRecord;

/// The advisory lock key of the relay lease ("vbridge relay").
const RELAY_LOCK: i64 = 0x0076_6272_656c_6179;

pub struct PgStore {
    url: String,
    pool: PgPool,
    writer: Writer,
}

impl PgStore {
    pub async fn open(url: &str, keys: chain::Keyring) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        let migrator = sqlx::migrate!("./migrations/postgres");
        if !all_applied(&pool, &migrator).await {
            migrator.run(&pool).await?;
        }
        let conn = writer_connection(url).await?;
        Ok(PgStore { url: url.to_owned(), pool, writer: Writer::spawn(PgBackend { conn, url: url.to_owned() }, &keys) })
    }
}

/// The writer's own connection. Its statements take lists (a group's keys,
/// streams, candidates) and are prepared once: a generic plan made while a
/// table was small (a new database) scans it whole ever after, and the
/// bench saw a group's key look-up grow from 0.4 to 5 ms as deliveries grew
/// to 20,000. Custom plans cost a planning per statement and use the
/// indexes at any size.
async fn writer_connection(url: &str) -> Result<PgConnection, sqlx::Error> {
    let options = url.parse::<sqlx::postgres::PgConnectOptions>()?.options([("plan_cache_mode", "force_custom_plan")]);
    PgConnection::connect_with(&options).await
}

/// Whether every migration this build knows is applied already (read with
/// SELECT only, so a role that owns nothing can tell).
async fn all_applied(pool: &PgPool, migrator: &sqlx::migrate::Migrator) -> bool {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await {
            Ok(v) => v,
            Err(_) => return false,
        };
    migrator.iter().all(|m| applied.contains(&m.version))
}

struct PgBackend {
    conn: PgConnection,
    url: String,
}

/// The shared SQL, its placeholders numbered.
#[async_trait]
impl Run for PgConnection {
    const POSTGRES: bool = true;

    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        let (sql, args) = (sql::numbered(sql), arguments::<PgArguments>(args)?);
        Ok(sqlx::query_with(&sql, args).execute(self).await?.rows_affected())
    }

    async fn fetch_all<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<T>, sqlx::Error> {
        let (sql, args) = (sql::numbered(sql), arguments::<PgArguments>(args)?);
        sqlx::query_as_with(&sql, args).fetch_all(self).await
    }

    async fn fetch_optional<T: Rowed>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        let (sql, args) = (sql::numbered(sql), arguments::<PgArguments>(args)?);
        sqlx::query_as_with(&sql, args).fetch_optional(self).await
    }

    async fn fetch_one<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<T, sqlx::Error> {
        let (sql, args) = (sql::numbered(sql), arguments::<PgArguments>(args)?);
        sqlx::query_as_with(&sql, args).fetch_one(self).await
    }
}

#[async_trait]
impl Backend for PgBackend {
    type Conn = PgConnection;

    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("BEGIN").execute(&mut self.conn).await.map(|_| ())
    }

    /// One statement: a new chain's head is made, every head is locked (a
    /// no-op update takes the row lock, in stream order, as `FOR UPDATE`
    /// would), and every head comes back, so that the group need not read
    /// them again.
    async fn lock_streams(&mut self, streams: &[String]) -> Result<Option<Vec<(String, i64, String)>>, sqlx::Error> {
        if streams.is_empty() {
            return Ok(Some(vec![]));
        }
        sqlx::query_as(
            "INSERT INTO stream_heads (stream, chain_pos, hash) SELECT s, 0, $2 FROM unnest($1::text[]) AS s \
             ORDER BY s ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream RETURNING stream, chain_pos, hash",
        )
        .bind(streams)
        .bind(GENESIS)
        .fetch_all(&mut self.conn)
        .await
        .map(Some)
    }

    /// Through `vbridge_cut_prefix`, which lifts the guards for this
    /// transaction only and takes no table lock.
    async fn cut_prefix(&mut self, cp: &chain::Checkpoint, now: &str) -> Result<u64, sqlx::Error> {
        let removed: i64 = sqlx::query_scalar("SELECT vbridge_cut_prefix($1, $2, $3, $4)")
            .bind(&cp.stream)
            .bind(cp.next_pos)
            .bind(&cp.prev_hash)
            .bind(now)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(removed as u64)
    }

    async fn reconnect(&mut self) -> Result<(), sqlx::Error> {
        self.conn = writer_connection(&self.url).await?;
        Ok(())
    }
}

#[async_trait]
impl Reads for PgStore {
    type Conn = PgConnection;
    type Lent = PoolConnection<Postgres>;
    type Snapshot = Transaction<'static, Postgres>;

    async fn lend(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Reads of one verification see one snapshot.
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
        Ok(tx)
    }

    async fn end(snapshot: Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
        snapshot.rollback().await
    }

    fn group_writer(&self) -> &Writer {
        &self.writer
    }

    async fn lease(&self) -> Result<Option<RelayLease>, StoreError> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(RELAY_LOCK).fetch_one(&mut conn).await?;
        Ok(got.then(|| RelayLease::Postgres(Box::new(conn))))
    }
}

#[async_trait]
impl vbridge_activities::AuditSink for PgStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
    async fn records_of(&self, candidate_id: &str, application_id: &str) -> Result<Vec<DecisionRecord>, String> {
        let rows = self.decisions(Some(candidate_id), Some(application_id)).await.map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|d| d.record).collect())
    }
}
