//! Phase 6: the relay's outbox read against a long forwarded history, and
//! the scratch Postgres databases the bench measures on.

use super::*;

/// The outbox read the relay does (its round: the 256 oldest owed rows and
/// their verifications' others, up to 1,024), p50 of 50 reads, on a store with no
/// history and on one with 100k accepted rows already forwarded, with the
/// anti-join the relay used before the outbox for comparison. Per backend:
/// (name, empty ms, 100k ms, old query ms).
pub(super) async fn outbox_phase(
    dir: &std::path::Path,
    postgres_admin: Option<&str>,
    run: &str,
) -> anyhow::Result<Vec<(String, f64, f64, f64)>> {
    const OLD: &str = "SELECT d.seq, COALESCE(d.signal, '') AS signal FROM deliveries d \
         WHERE d.processing_result = 'accepted' AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) \
         ORDER BY d.seq LIMIT 512";
    async fn reads(store: &dyn crate::store::EventStore) -> f64 {
        let mut lat = vec![];
        for _ in 0..50 {
            let t = Instant::now();
            let _ = store.owed_round(256, 1024).await;
            lat.push(t.elapsed());
        }
        figures(lat, Duration::from_secs(1), 0).p50_ms
    }
    let mut out = vec![];
    let mut urls = vec![("SQLite".to_owned(), format!("sqlite://{}", dir.join("outbox.db").display()), None)];
    if let Some(admin) = postgres_admin {
        let (url, db) = scratch_postgres(admin, &format!("ob{run}")).await?;
        urls.push(("Postgres".to_owned(), url, Some(db)));
    }
    for (name, url, scratch) in urls {
        let store = crate::config::open_store(&url).await?;
        for i in 0..20 {
            let r = crate::store::DeliveryRecord {
                received_at: crate::now_rfc3339(),
                signature_valid: true,
                event_id: Some(format!("pending-{i}")),
                candidate_id: Some("c".into()),
                application_id: Some("a".into()),
                idempotency_key: Some(format!("pending-{i}")),
                trace_id: "t".into(),
                signal: Some("{}".into()),
                ..Default::default()
            };
            store.commit(r).await?;
        }
        let empty = reads(store.as_ref()).await;
        // 100k accepted rows, forwarded long ago, written in bulk.
        let bulk_deliveries = "INSERT INTO deliveries (received_at, event_id, idempotency_key, signature_valid, \
             processing_result, trace_id, body_sha256, signal) \
             SELECT '2020-01-01T00:00:00.000Z', 'old-' || n, 'old-' || n, TRUE, 'accepted', 't', '00', '{}' FROM {series}";
        let bulk_forwards = "INSERT INTO forwards (seq, forwarded_at) SELECT seq, '2020-01-01T00:00:00.000Z' \
             FROM deliveries WHERE event_id LIKE 'old-%'";
        if name == "SQLite" {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            let series =
                "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000) SELECT n FROM s)";
            sqlx::query(&bulk_deliveries.replace("{series}", series)).execute(&mut c).await?;
            sqlx::query(bulk_forwards).execute(&mut c).await?;
        } else {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(&bulk_deliveries.replace("{series}", "generate_series(1, 100000) AS n"))
                .execute(&mut c)
                .await?;
            sqlx::query(bulk_forwards).execute(&mut c).await?;
            sqlx::query("ANALYZE").execute(&mut c).await?;
        }
        let full = reads(store.as_ref()).await;
        // The same reads with the relay's old query, on one connection.
        let mut lat = vec![];
        if name == "SQLite" {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            for _ in 0..10 {
                let t = Instant::now();
                sqlx::query(OLD).fetch_all(&mut c).await?;
                lat.push(t.elapsed());
            }
        } else {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await?;
            for _ in 0..10 {
                let t = Instant::now();
                sqlx::query(OLD).fetch_all(&mut c).await?;
                lat.push(t.elapsed());
            }
        }
        let old = figures(lat, Duration::from_secs(1), 0).p50_ms;
        print(
            &format!("6. outbox read, {name}, 100k forwarded"),
            &Figures { p50_ms: full, ..figures(vec![], Duration::from_secs(1), 0) },
        );
        out.push((name, empty, full, old));
        drop(store);
        if let (Some(db), Some(admin)) = (scratch, postgres_admin) {
            drop_scratch_postgres(admin, &db).await;
        }
    }
    Ok(out)
}

pub(super) async fn scratch_postgres(admin: &str, run: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.map_err(|e| {
        anyhow::anyhow!("the Postgres part of the bench needs {admin}: {e} (or pass --postgres-url none)")
    })?;
    let db = format!("vbridge_bench_{run}_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await?;
    let (base, _) = admin.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("{admin} does not end in /DATABASE"))?;
    Ok((format!("{base}/{db}"), db))
}

pub(super) async fn drop_scratch_postgres(admin: &str, db: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
    }
}
