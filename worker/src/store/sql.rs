//! The SQL both backends share, written once with `?` placeholders (SQLite's
//! form; Postgres gets them numbered by [`numbered`]), and the method bodies
//! that run it, stamped into each backend by macros. A backend keeps only what
//! really differs: how a group takes its locks, how the delete guards are
//! lifted for retention, and housekeeping.

/// `?` → `$1, $2, …` (and `?N` → `$N`), for Postgres.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        if digits.is_empty() {
            n += 1;
            digits = n.to_string();
        }
        out.push('$');
        out.push_str(&digits);
    }
    out
}

pub(crate) const FIND_KEY: &str = "SELECT seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result \
     FROM deliveries WHERE idempotency_key = ? AND processing_result IN ('accepted', 'ignored')";
pub(crate) const HEAD: &str = "SELECT chain_pos, hash FROM stream_heads WHERE stream = ?";
pub(crate) const SET_HEAD: &str = "INSERT INTO stream_heads (stream, chain_pos, hash) VALUES (?, ?, ?) \
     ON CONFLICT (stream) DO UPDATE SET chain_pos = excluded.chain_pos, hash = excluded.hash";
pub(crate) const DECISION_EXISTS: &str = "SELECT 1 AS one FROM decisions WHERE record_id = ?";
/// When a verification's accepted events happened (for apply → verified).
pub(crate) const EVENT_TIMES: &str = "SELECT occurred_at FROM deliveries WHERE candidate_id = ? AND application_id = ? \
     AND processing_result = 'accepted' AND occurred_at IS NOT NULL";
/// A losing racer for an accepted key gets no row back and is decided again.
pub(crate) const INSERT_DELIVERY: &str = "INSERT INTO deliveries (received_at, event_id, event_type, occurred_at, \
     candidate_id, application_id, idempotency_key, signature_valid, processing_result, reject_code, trace_id, \
     body_sha256, delivery_attempt, payload, signal, stream, chain_pos, prev_hash, hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (idempotency_key) WHERE processing_result IN ('accepted', 'ignored') DO NOTHING RETURNING seq";
pub(crate) const INSERT_DECISION: &str = "INSERT INTO decisions (record_id, recorded_at, kind, candidate_id, \
     application_id, event_id, event_type, occurred_at, received_at, idempotency_key, state_before, state_after, reason, \
     write_targets, delivery_attempt, processing_result, trace_id, override_actor, override_reason_code, \
     override_timestamp, detail, stream, chain_pos, prev_hash, hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The review queue projection (see `projection::review`): an item opened or
/// escalated, unless a newer record already changed it.
pub(crate) const UPSERT_REVIEW: &str = "INSERT INTO review_items (candidate_id, application_id, is_open, queue, \
     reason_codes, evidence_pack_url, routed_at, due_at, escalations, flags, trace_id, as_of) \
     VALUES (?, ?, TRUE, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (candidate_id, application_id) DO UPDATE SET is_open = TRUE, queue = excluded.queue, \
     reason_codes = excluded.reason_codes, evidence_pack_url = excluded.evidence_pack_url, \
     routed_at = excluded.routed_at, due_at = excluded.due_at, escalations = excluded.escalations, \
     flags = excluded.flags, trace_id = excluded.trace_id, as_of = excluded.as_of \
     WHERE review_items.as_of <= excluded.as_of";
pub(crate) const CLOSE_REVIEW: &str = "UPDATE review_items SET is_open = FALSE, as_of = ?1 \
     WHERE candidate_id = ?2 AND application_id = ?3 AND as_of <= ?1";
/// Open items in due order, filtered, after a keyset cursor.
/// ?1 queue, ?2 overdue, ?3 now, ?4 reason-code pattern, ?5..?7 cursor, ?8 limit.
pub(crate) const REVIEW_QUEUE: &str = "SELECT candidate_id, application_id, queue, reason_codes, evidence_pack_url, \
     routed_at, due_at, escalations, flags, trace_id FROM review_items WHERE is_open = TRUE \
     AND (?1 IS NULL OR queue = ?1) \
     AND (?2 IS NULL OR (escalations > 0 OR due_at <= ?3) = ?2) \
     AND (?4 IS NULL OR reason_codes LIKE ?4 ESCAPE '\\') \
     AND (?5 IS NULL OR due_at > ?5 OR (due_at = ?5 AND (candidate_id > ?6 OR (candidate_id = ?6 AND application_id > ?7)))) \
     ORDER BY due_at, candidate_id, application_id LIMIT ?8";
/// One verification's open item.
pub(crate) const REVIEW_ITEM: &str = "SELECT candidate_id, application_id, queue, reason_codes, evidence_pack_url, \
     routed_at, due_at, escalations, flags, trace_id FROM review_items \
     WHERE candidate_id = ? AND application_id = ? AND is_open = TRUE";
/// (open items, overdue among them) at ?1.
pub(crate) const REVIEW_COUNTS: &str = "SELECT CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN escalations > 0 OR due_at <= ?1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM review_items WHERE is_open = TRUE";
pub(crate) const GET_CONTROL: &str = "SELECT name, value, actor, reason, changed_at FROM controls WHERE name = ?";
pub(crate) const SET_CONTROL: &str = "INSERT INTO controls (name, value, actor, reason, changed_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, actor = excluded.actor, \
     reason = excluded.reason, changed_at = excluded.changed_at";
/// The gate projection (see `projection::gate`).
pub(crate) const GATE_STATE: &str = "INSERT INTO gate_items (application_id, candidate_id, state, ats_sync, as_of) \
     VALUES (?, ?, ?, 'pending-sync', ?) ON CONFLICT (application_id) DO UPDATE SET \
     candidate_id = excluded.candidate_id, state = excluded.state, ats_sync = excluded.ats_sync, as_of = excluded.as_of \
     WHERE gate_items.as_of <= excluded.as_of";
pub(crate) const GATE_WRITTEN: &str =
    "UPDATE gate_items SET ats_sync = 'synced' WHERE application_id = ? AND state = ?";
pub(crate) const GATE_SYNC: &str = "UPDATE gate_items SET ats_sync = ? WHERE application_id = ?";
pub(crate) const GATE_ROW: &str =
    "SELECT application_id, candidate_id, state, ats_sync FROM gate_items WHERE application_id = ?";
/// Dead letters (see `projection::dead_letters`).
pub(crate) const DEAD_LETTER: &str = "INSERT INTO dead_letters (idempotency_key, candidate_id, application_id, \
     event_id, target, state, reason, failed_at, is_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, TRUE) \
     ON CONFLICT (idempotency_key) DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at, \
     is_open = TRUE, resolved_at = NULL";
pub(crate) const DEAD_LETTERS_RESOLVED: &str = "UPDATE dead_letters SET is_open = FALSE, resolved_at = ?1 \
     WHERE target = ?2 AND is_open = TRUE AND failed_at <= ?1";
pub(crate) const OPEN_DEAD_LETTERS: &str = "SELECT idempotency_key, candidate_id, application_id, event_id, target, \
     state, reason, failed_at FROM dead_letters WHERE is_open = TRUE \
     AND (?1 IS NULL OR idempotency_key = ?1) ORDER BY failed_at DESC LIMIT ?2";
/// The job an accepted delivery named (a field it leaves out keeps its value).
pub(crate) const UPSERT_JOB: &str = "INSERT INTO application_jobs (application_id, requisition, role, region, updated_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_id) DO UPDATE SET \
     requisition = COALESCE(excluded.requisition, application_jobs.requisition), \
     role = COALESCE(excluded.role, application_jobs.role), \
     region = COALESCE(excluded.region, application_jobs.region), updated_at = excluded.updated_at";
pub(crate) const JOB: &str = "SELECT requisition, role, region FROM application_jobs WHERE application_id = ?";
/// The reconciliation's expectation (see `projection::reconcile`).
pub(crate) const EXPECTED_OF: &str =
    "SELECT fields FROM ats_expected WHERE application_id = ? AND verification_check_id = ?";
pub(crate) const SET_EXPECTED: &str = "INSERT INTO ats_expected (application_id, verification_check_id, candidate_id, \
     fields) VALUES (?, ?, ?, ?) ON CONFLICT (application_id, verification_check_id) DO UPDATE SET \
     candidate_id = excluded.candidate_id, fields = excluded.fields";
/// A page in (application, check) order after ?1/?2.
pub(crate) const EXPECTED_PAGE: &str = "SELECT application_id, verification_check_id, candidate_id, fields \
     FROM ats_expected WHERE application_id > ?1 OR (application_id = ?1 AND verification_check_id > ?2) \
     ORDER BY application_id, verification_check_id LIMIT ?3";
pub(crate) const EXPECTED_COUNT: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM ats_expected";
pub(crate) const SAVE_RUN: &str = "INSERT INTO reconcile_runs (run_id, finished_at, report) VALUES (?, ?, ?) \
     ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, report = excluded.report";
pub(crate) const GET_RUN: &str = "SELECT report FROM reconcile_runs WHERE run_id = ?";
/// Whether the store accepted any delivery of a verification.
pub(crate) const KNOWN: &str = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE candidate_id = ? AND application_id = ? \
     AND processing_result = 'accepted')";
/// An accepted delivery enters the outbox in the transaction that commits it.
pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO outbox (seq, received_at) VALUES (?, ?)";
pub(crate) const MARK_FORWARDED: &str = "INSERT INTO forwards (seq, forwarded_at) VALUES (?, ?) ON CONFLICT DO NOTHING";
pub(crate) const TAKE_FROM_OUTBOX: &str = "DELETE FROM outbox WHERE seq = ?";
pub(crate) const CHAIN_ENTRIES: &str = "SELECT d.stream, d.chain_pos, d.hash, d.received_at AS at, \
     EXISTS (SELECT 1 FROM outbox o WHERE o.seq = d.seq) AS pending FROM deliveries d \
     WHERE d.stream IS NOT NULL AND d.chain_pos IS NOT NULL \
     UNION ALL SELECT stream, chain_pos, hash, recorded_at AS at, FALSE AS pending FROM decisions";
/// The outbox is O(pending): rows leave it when forwarded.
/// `seen_before`: an earlier accepted delivery of the same verification (the
/// `deliveries_candidate` index answers it).
pub(crate) const UNFORWARDED: &str = "SELECT o.seq, COALESCE(d.signal, '') AS signal, \
     EXISTS (SELECT 1 FROM deliveries p WHERE p.candidate_id = d.candidate_id \
     AND p.application_id = d.application_id AND p.seq < d.seq AND p.processing_result = 'accepted') AS seen_before \
     FROM outbox o JOIN deliveries d ON d.seq = o.seq ORDER BY o.seq LIMIT ?";
pub(crate) const OLDEST_UNFORWARDED: &str = "SELECT received_at FROM outbox ORDER BY seq LIMIT 1";
pub(crate) const HEADS: &str = "SELECT stream, chain_pos, hash FROM stream_heads";
pub(crate) const DELIVERIES: &str = "SELECT d.*, EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) AS forwarded \
     FROM deliveries d WHERE (?1 IS NULL OR d.candidate_id = ?1) AND (?2 IS NULL OR d.application_id = ?2) \
     ORDER BY d.seq";
pub(crate) const DECISIONS: &str = "SELECT * FROM decisions WHERE (?1 IS NULL OR candidate_id = ?1) \
     AND (?2 IS NULL OR application_id = ?2) ORDER BY seq";
pub(crate) const CHECKPOINTS: &str = "SELECT stream, next_pos, prev_hash FROM chain_checkpoints";

/// `impl Backend` for a backend: its own methods, given, plus those whose SQL
/// is the same on both. Expects `self.conn`, `Self::sql(&'static str) ->
/// Cow<'static, str>`.
macro_rules! backend_impl {
    ($backend:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl Backend for $backend {
        $($own)*

        async fn find_key(&mut self, key: &str) -> Result<Option<Original>, sqlx::Error> {
            sqlx::query_as(&Self::sql(sql::FIND_KEY)).bind(key).fetch_optional(&mut self.conn).await
        }

        async fn head(&mut self, stream: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
            sqlx::query_as(&Self::sql(sql::HEAD)).bind(stream).fetch_optional(&mut self.conn).await
        }

        async fn insert_delivery(&mut self, row: &ChainedDelivery<'_>) -> Result<Option<i64>, sqlx::Error> {
            let statement = Self::sql(sql::INSERT_DELIVERY);
            let seq: Option<i64> = bind_delivery!(sqlx::query_scalar(&statement), row).fetch_optional(&mut self.conn).await?;
            if let Some(seq) = seq && row.accepted {
                sqlx::query(&Self::sql(sql::INSERT_OUTBOX))
                    .bind(seq)
                    .bind(&row.content.received_at)
                    .execute(&mut self.conn)
                    .await?;
                let job = row.job;
                if let (false, Some(app)) = (job.is_empty(), row.content.application_id.as_deref()) {
                    sqlx::query(&Self::sql(sql::UPSERT_JOB))
                        .bind(app)
                        .bind(&job.requisition)
                        .bind(&job.role)
                        .bind(&job.region)
                        .bind(&row.content.received_at)
                        .execute(&mut self.conn)
                        .await?;
                }
            }
            Ok(seq)
        }

        async fn decision_exists(&mut self, record_id: &str) -> Result<bool, sqlx::Error> {
            let row: Option<(i32,)> =
                sqlx::query_as(&Self::sql(sql::DECISION_EXISTS)).bind(record_id).fetch_optional(&mut self.conn).await?;
            Ok(row.is_some())
        }

        async fn event_times(&mut self, candidate_id: &str, application_id: &str) -> Result<Vec<String>, sqlx::Error> {
            let rows: Vec<(String,)> = sqlx::query_as(&Self::sql(sql::EVENT_TIMES))
                .bind(candidate_id)
                .bind(application_id)
                .fetch_all(&mut self.conn)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }

        async fn insert_decision(&mut self, r: &DecisionRecord, l: &LinkFields) -> Result<(), sqlx::Error> {
            let statement = Self::sql(sql::INSERT_DECISION);
            bind_decision!(sqlx::query(&statement), r, l).execute(&mut self.conn).await.map(|_| ())
        }

        async fn project_gate(&mut self, change: &super::projection::gate::Change) -> Result<(), sqlx::Error> {
            use super::projection::gate::Change;
            match change {
                Change::State { application_id, candidate_id, state, as_of } => {
                    sqlx::query(&Self::sql(sql::GATE_STATE))
                        .bind(application_id)
                        .bind(candidate_id)
                        .bind(state)
                        .bind(as_of)
                        .execute(&mut self.conn)
                        .await?;
                }
                Change::Written { application_id, written } => {
                    sqlx::query(&Self::sql(sql::GATE_WRITTEN))
                        .bind(application_id)
                        .bind(written)
                        .execute(&mut self.conn)
                        .await?;
                }
                Change::Sync { application_id, ats_sync } => {
                    sqlx::query(&Self::sql(sql::GATE_SYNC))
                        .bind(ats_sync)
                        .bind(application_id)
                        .execute(&mut self.conn)
                        .await?;
                }
            }
            Ok(())
        }

        async fn project_dead_letter(&mut self, change: &super::projection::dead_letters::Change) -> Result<(), sqlx::Error> {
            use super::projection::dead_letters::Change;
            match change {
                Change::Failed(d) => {
                    sqlx::query(&Self::sql(sql::DEAD_LETTER))
                        .bind(&d.idempotency_key)
                        .bind(&d.candidate_id)
                        .bind(&d.application_id)
                        .bind(&d.event_id)
                        .bind(&d.target)
                        .bind(&d.state)
                        .bind(&d.reason)
                        .bind(&d.failed_at)
                        .execute(&mut self.conn)
                        .await?;
                }
                Change::Written { target, at } => {
                    sqlx::query(&Self::sql(sql::DEAD_LETTERS_RESOLVED)).bind(at).bind(target).execute(&mut self.conn).await?;
                }
            }
            Ok(())
        }

        async fn project_run(&mut self, run_id: &str, at: &str, report: &str) -> Result<(), sqlx::Error> {
            sqlx::query(&Self::sql(sql::SAVE_RUN)).bind(run_id).bind(at).bind(report).execute(&mut self.conn).await.map(|_| ())
        }

        async fn project_expected(&mut self, w: &super::projection::reconcile::Written) -> Result<(), sqlx::Error> {
            let old: Option<String> = sqlx::query_scalar(&Self::sql(sql::EXPECTED_OF))
                .bind(&w.application_id)
                .bind(&w.check_id)
                .fetch_optional(&mut self.conn)
                .await?;
            let mut fields: std::collections::BTreeMap<String, String> =
                old.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default();
            fields.extend(w.fields.clone());
            sqlx::query(&Self::sql(sql::SET_EXPECTED))
                .bind(&w.application_id)
                .bind(&w.check_id)
                .bind(&w.candidate_id)
                .bind(serde_json::to_string(&fields).expect("fields serialize"))
                .execute(&mut self.conn)
                .await
                .map(|_| ())
        }

        async fn project_control(&mut self, c: &super::projection::controls::Control) -> Result<(), sqlx::Error> {
            sqlx::query(&Self::sql(sql::SET_CONTROL))
                .bind(&c.name)
                .bind(&c.value)
                .bind(&c.actor)
                .bind(&c.reason)
                .bind(&c.changed_at)
                .execute(&mut self.conn)
                .await
                .map(|_| ())
        }

        async fn project_review(&mut self, change: &super::projection::review::Change) -> Result<(), sqlx::Error> {
            use super::projection::review::Change;
            let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
            match change {
                Change::Upsert { candidate_id, application_id, item, as_of } => {
                    sqlx::query(&Self::sql(sql::UPSERT_REVIEW))
                        .bind(candidate_id)
                        .bind(application_id)
                        .bind(&item.queue)
                        .bind(json(&item.reason_codes))
                        .bind(&item.evidence_pack_url)
                        .bind(&item.routed_at)
                        .bind(&item.due_at)
                        .bind(item.escalations as i64)
                        .bind(json(&item.flags))
                        .bind(&item.trace_id)
                        .bind(as_of)
                        .execute(&mut self.conn)
                        .await?;
                }
                Change::Close { candidate_id, application_id, as_of } => {
                    sqlx::query(&Self::sql(sql::CLOSE_REVIEW))
                        .bind(as_of)
                        .bind(candidate_id)
                        .bind(application_id)
                        .execute(&mut self.conn)
                        .await?;
                }
            }
            Ok(())
        }

        async fn mark_forwarded(&mut self, seqs: &[i64], now: &str) -> Result<(), sqlx::Error> {
            for seq in seqs {
                sqlx::query(&Self::sql(sql::MARK_FORWARDED)).bind(seq).bind(now).execute(&mut self.conn).await?;
                sqlx::query(&Self::sql(sql::TAKE_FROM_OUTBOX)).bind(seq).execute(&mut self.conn).await?;
            }
            Ok(())
        }

        async fn set_head(&mut self, stream: &str, pos: i64, hash: &str) -> Result<(), sqlx::Error> {
            sqlx::query(&Self::sql(sql::SET_HEAD)).bind(stream).bind(pos).bind(hash).execute(&mut self.conn).await.map(|_| ())
        }

        async fn chain_entries(&mut self) -> Result<Vec<ChainEntry>, sqlx::Error> {
            sqlx::query_as(sql::CHAIN_ENTRIES).fetch_all(&mut self.conn).await
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
    };
}

/// `impl EventStore` for a store: its own methods, given, plus the read side,
/// which is the same on both. Expects `self.pool`, `self.writer` and
/// `$store::sql`.
macro_rules! store_impl {
    ($backend:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl EventStore for $backend {
        $($own)*

        async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError> {
            Ok(sqlx::query_as(&<$backend>::sql(sql::FIND_KEY)).bind(key).fetch_optional(&self.pool).await?)
        }

        async fn unforwarded(&self, limit: i64) -> Result<Vec<Forwardable>, StoreError> {
            let rows: Vec<(i64, String, bool)> =
                sqlx::query_as(&<$backend>::sql(sql::UNFORWARDED)).bind(limit).fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(|(seq, signal, seen_before)| Forwardable { seq, signal, seen_before }).collect())
        }

        async fn oldest_unforwarded(&self) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar(sql::OLDEST_UNFORWARDED).fetch_optional(&self.pool).await?)
        }

        async fn heads(&self) -> Result<Vec<chain::Head>, StoreError> {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(sql::HEADS).fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(|(stream, chain_pos, hash)| chain::Head { stream, chain_pos, hash }).collect())
        }

        async fn deliveries(
            &self,
            candidate_id: Option<&str>,
            application_id: Option<&str>,
        ) -> Result<Vec<StoredDelivery>, StoreError> {
            Ok(sqlx::query_as::<_, StoredDelivery>(&<$backend>::sql(sql::DELIVERIES))
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
            let rows = sqlx::query_as::<_, DecisionRow>(&<$backend>::sql(sql::DECISIONS))
                .bind(candidate_id)
                .bind(application_id)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(StoredDecision::from).collect())
        }

        async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError> {
            let mut tx = self.pool.begin().await?;
            if let Some(first) = <$backend>::SNAPSHOT {
                sqlx::query(first).execute(&mut *tx).await?;
            }
            let deliveries = sqlx::query_as::<_, StoredDelivery>(&<$backend>::sql(sql::DELIVERIES))
                .bind(None::<&str>)
                .bind(None::<&str>)
                .fetch_all(&mut *tx)
                .await?;
            let decisions: Vec<StoredDecision> = sqlx::query_as::<_, DecisionRow>(&<$backend>::sql(sql::DECISIONS))
                .bind(None::<&str>)
                .bind(None::<&str>)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(StoredDecision::from)
                .collect();
            let checkpoints: Vec<chain::Checkpoint> = sqlx::query_as::<_, (String, i64, String)>(sql::CHECKPOINTS)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(stream, next_pos, prev_hash)| chain::Checkpoint { stream, next_pos, prev_hash })
                .collect();
            let heads: Vec<chain::Head> = sqlx::query_as::<_, (String, i64, String)>(sql::HEADS)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(stream, chain_pos, hash)| chain::Head { stream, chain_pos, hash })
                .collect();
            tx.rollback().await?;
            Ok(crate::store::verify_rows(deliveries, decisions, &checkpoints, &heads, streams))
        }

        async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError> {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(sql::CHECKPOINTS).fetch_all(&self.pool).await?;
            Ok(rows
                .into_iter()
                .map(|(stream, next_pos, prev_hash)| chain::Checkpoint { stream, next_pos, prev_hash })
                .collect())
        }

        async fn review_queue(
            &self,
            filter: &super::projection::review::Filter,
            after: Option<&super::projection::review::Cursor>,
            limit: u32,
            now: &str,
        ) -> Result<Vec<super::projection::review::Row>, StoreError> {
            let pattern = filter.reason_code.as_deref().map(super::projection::review::reason_code_pattern);
            Ok(sqlx::query_as(&<$backend>::sql(sql::REVIEW_QUEUE))
                .bind(filter.queue.as_deref())
                .bind(filter.overdue)
                .bind(now)
                .bind(pattern)
                .bind(after.map(|c| c.due_at.as_str()))
                .bind(after.map(|c| c.candidate_id.as_str()))
                .bind(after.map(|c| c.application_id.as_str()))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn review_item(
            &self,
            candidate_id: &str,
            application_id: &str,
        ) -> Result<Option<super::projection::review::Row>, StoreError> {
            Ok(sqlx::query_as(&<$backend>::sql(sql::REVIEW_ITEM))
                .bind(candidate_id)
                .bind(application_id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn review_counts(&self, now: &str) -> Result<(u64, u64), StoreError> {
            let (open, overdue): (i64, i64) =
                sqlx::query_as(&<$backend>::sql(sql::REVIEW_COUNTS)).bind(now).fetch_one(&self.pool).await?;
            Ok((open.max(0) as u64, overdue.max(0) as u64))
        }

        async fn control(&self, name: &str) -> Result<Option<super::projection::controls::Control>, StoreError> {
            Ok(sqlx::query_as(&<$backend>::sql(sql::GET_CONTROL)).bind(name).fetch_optional(&self.pool).await?)
        }

        async fn gate_row(&self, application_id: &str) -> Result<Option<super::projection::gate::Row>, StoreError> {
            Ok(sqlx::query_as(&<$backend>::sql(sql::GATE_ROW)).bind(application_id).fetch_optional(&self.pool).await?)
        }

        async fn dead_letters(
            &self,
            key: Option<&str>,
            limit: u32,
        ) -> Result<Vec<super::projection::dead_letters::DeadLetter>, StoreError> {
            Ok(sqlx::query_as(&<$backend>::sql(sql::OPEN_DEAD_LETTERS))
                .bind(key)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn job(&self, application_id: &str) -> Result<vbridge_core::canary::Job, StoreError> {
            let row: Option<(Option<String>, Option<String>, Option<String>)> =
                sqlx::query_as(&<$backend>::sql(sql::JOB)).bind(application_id).fetch_optional(&self.pool).await?;
            Ok(row
                .map(|(requisition, role, region)| vbridge_core::canary::Job { requisition, role, region })
                .unwrap_or_default())
        }

        async fn expected_page(
            &self,
            after: (&str, &str),
            limit: u32,
        ) -> Result<Vec<vbridge_proto::ExpectedWrite>, StoreError> {
            let rows: Vec<(String, String, String, String)> = sqlx::query_as(&<$backend>::sql(sql::EXPECTED_PAGE))
                .bind(after.0)
                .bind(after.1)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .into_iter()
                .map(|(application_id, verification_check_id, candidate_id, fields)| vbridge_proto::ExpectedWrite {
                    candidate_id,
                    application_id,
                    verification_check_id,
                    fields: serde_json::from_str(&fields).unwrap_or_default(),
                })
                .collect())
        }

        async fn expected_count(&self) -> Result<u64, StoreError> {
            let n: i64 = sqlx::query_scalar(sql::EXPECTED_COUNT).fetch_one(&self.pool).await?;
            Ok(n.max(0) as u64)
        }

        async fn reconcile_run(&self, run_id: &str) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar(&<$backend>::sql(sql::GET_RUN)).bind(run_id).fetch_optional(&self.pool).await?)
        }

        async fn knows(&self, candidate_id: &str, application_id: &str) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(&<$backend>::sql(sql::KNOWN))
                .bind(candidate_id)
                .bind(application_id)
                .fetch_one(&self.pool)
                .await?)
        }

        fn writer(&self) -> &Writer {
            &self.writer
        }
        }
    };
}

pub(crate) use {backend_impl, store_impl};

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(numbered("(?1 IS NULL OR c = ?1) AND (?2 IS NULL)"), "($1 IS NULL OR c = $1) AND ($2 IS NULL)");
    }
}
