//! Console logouts, kept in the store so that every replica refuses a
//! replayed cookie: a revoked session id and the end the session had
//! anyway (`console_revocations`). Rows past that end are pruned at each
//! revocation, so the table stays as small as the logouts of the last
//! session lifetime (8 hours).
//!
//! Not the event store's group-commit writer: these rows are no part of the
//! audit log or its chains, and a logout must not wait behind a batch of
//! deliveries. A connection of its own does the writing (SQLite: one
//! writable connection beside the writer, waiting on its lock like any other
//! process on the file; Postgres: a small pool).

use super::StoreError;
use super::run::Run;
use super::side::SidePool;
use super::sql;
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// End session `sid` now; remembered until `until` (Unix seconds), when
    /// the session would have ended anyway.
    async fn revoke(&self, sid: &str, until: i64, now: i64) -> Result<(), StoreError>;
    /// Whether `sid` was revoked.
    async fn is_revoked(&self, sid: &str) -> Result<bool, StoreError>;
}

pub struct SessionStore(SidePool);

/// The revocations of the store at `url` (opened, and migrated, by
/// [`super::open`] first).
pub async fn open_revocations(url: &str) -> Result<Arc<dyn Revocations>, StoreError> {
    let pool = super::side::open(url).await?;
    Ok(Arc::new(SessionStore(pool)))
}

async fn revoke(c: &mut impl Run, sid: &str, until: i64, now: i64) -> Result<(), sqlx::Error> {
    c.execute(sql::PRUNE_REVOCATIONS, &[now.into()]).await?;
    c.execute(sql::REVOKE_SESSION, &[sid.into(), until.into()]).await?;
    Ok(())
}

async fn revoked(c: &mut impl Run, sid: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = c.fetch_optional(sql::SESSION_REVOKED, &[sid.into()]).await?;
    Ok(row.is_some())
}

#[async_trait]
impl Revocations for SessionStore {
    async fn revoke(&self, sid: &str, until: i64, now: i64) -> Result<(), StoreError> {
        match &self.0 {
            SidePool::Sqlite(p) => revoke(&mut *p.acquire().await?, sid, until, now).await?,
            SidePool::Postgres(p) => revoke(&mut *p.acquire().await?, sid, until, now).await?,
        }
        Ok(())
    }

    async fn is_revoked(&self, sid: &str) -> Result<bool, StoreError> {
        Ok(match &self.0 {
            SidePool::Sqlite(p) => revoked(&mut *p.acquire().await?, sid).await?,
            SidePool::Postgres(p) => revoked(&mut *p.acquire().await?, sid).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_holds_across_connections_and_is_pruned_after_its_end() {
        let dir = std::env::temp_dir().join(format!("vbridge-rev-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("s.db").display());
        let _store = super::super::open(&url, Default::default()).await.unwrap();
        let (a, b) = (open_revocations(&url).await.unwrap(), open_revocations(&url).await.unwrap());
        a.revoke("sid-1", 2_000, 1_000).await.unwrap();
        assert!(b.is_revoked("sid-1").await.unwrap(), "another replica sees it");
        assert!(!b.is_revoked("sid-2").await.unwrap());
        // Past its end the row goes with the next revocation.
        b.revoke("sid-2", 9_000, 2_000).await.unwrap();
        assert!(!a.is_revoked("sid-1").await.unwrap(), "pruned");
        assert!(a.is_revoked("sid-2").await.unwrap());
        std::fs::remove_dir_all(dir).ok();
    }
}
