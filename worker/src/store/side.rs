//! A connection of its own for rows outside the audit log (console logouts,
//! the hiring loop's working rows): they never go through the group-commit
//! writer, so they neither wait behind a batch of deliveries nor hold one
//! up. SQLite: one writable connection beside the writer, waiting on its
//! lock like any other process on the file; Postgres: a small pool.

use super::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub(crate) enum SidePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The side pool of the store at `url` (opened, and migrated, by
/// [`super::open`] first).
pub(crate) async fn open(url: &str) -> Result<SidePool, StoreError> {
    if url.starts_with("sqlite:") {
        let opts =
            SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(5)).pragma("secure_delete", "ON");
        Ok(SidePool::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(SidePool::Postgres(PgPoolOptions::new().max_connections(2).connect(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_owned()))
    }
}
