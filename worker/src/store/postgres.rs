//! Postgres: for several bridge processes on one database. Each process runs
//! the shared group-commit writer on a connection of its own; chain heads are
//! locked per stream (`FOR UPDATE`, in stream order, so groups never
//! deadlock); a key two processes commit at once is settled by the unique
//! index (`ON CONFLICT DO NOTHING`) and decided again. One relay forwards at a
//! time, chosen by a session advisory lock.

use super::sql::{self, backend_impl, store_impl};
use super::{
    Backend, ChainEntry, ChainedDelivery, DecisionRow, EventStore, Forwardable, LinkFields, Original, RelayLease,
    StoreError, StoredDecision, StoredDelivery, Writer, bind_decision, bind_delivery,
};
use crate::chain::{self, GENESIS};
use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::borrow::Cow;
use vbridge_proto::DecisionRecord;

/// The advisory lock key of the relay lease ("vbridge relay").
const RELAY_LOCK: i64 = 0x0076_6272_656c_6179;

const GUARDS: [(&str, &str); 3] = [
    ("deliveries", "deliveries_append_only"),
    ("decisions", "decisions_append_only"),
    ("forwards", "forwards_append_only"),
];

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

    fn sql(statement: &'static str) -> Cow<'static, str> {
        PgBackend::sql(statement)
    }
}

struct PgBackend {
    conn: PgConnection,
}

impl PgBackend {
    fn sql(statement: &'static str) -> Cow<'static, str> {
        Cow::Owned(sql::numbered(statement))
    }

    /// DISABLE TRIGGER holds the tables' exclusive lock until commit: no other
    /// session writes while the guards are down.
    async fn lift_guards(&mut self) -> Result<(), sqlx::Error> {
        for (table, trigger) in GUARDS {
            sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn restore_guards(&mut self) -> Result<(), sqlx::Error> {
        for (table, trigger) in GUARDS {
            sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER {trigger}")).execute(&mut self.conn).await?;
        }
        Ok(())
    }
}

backend_impl!(PgBackend, {
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
});

store_impl!(PgStore, {
    fn seq_is_commit_order(&self) -> bool {
        // Sequence numbers are taken before commit, and several processes
        // commit: a smaller seq may become visible after a larger one.
        false
    }

    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(RELAY_LOCK).fetch_one(&mut conn).await?;
        Ok(got.then(|| RelayLease::Postgres(Box::new(conn))))
    }
});

#[async_trait]
impl vbridge_activities::AuditSink for PgStore {
    async fn append(&self, records: Vec<DecisionRecord>) -> Result<(), String> {
        self.append_decisions(records).await.map_err(|e| e.to_string())
    }
}
