//! The read side of [`EventStore`], written once for both backends over
//! [`Run`]: a backend says how it lends a read connection and opens a
//! snapshot ([`Reads`]), and has the rest.

use super::projection::{controls::Control, dead_letters::DeadLetter, gate, review};
use super::run::{Arg, Run};
use super::{
    DecisionRow, EventStore, Forwardable, Original, RelayLease, StoreError, StoredDecision, StoredDelivery, Writer, sql,
};
use async_trait::async_trait;
use std::ops::DerefMut;
use vbridge_core::canary::Job;
use vbridge_core::chain;

/// What a backend's store provides; [`EventStore`] follows.
#[async_trait]
pub(crate) trait Reads: vbridge_activities::AuditSink + Send + Sync + 'static {
    type Conn: Run;
    /// A pooled read connection.
    type Lent: DerefMut<Target = Self::Conn> + Send;
    /// A read transaction that sees one snapshot from its first read.
    type Snapshot: DerefMut<Target = Self::Conn> + Send;
    async fn lend(&self) -> Result<Self::Lent, sqlx::Error>;
    async fn snapshot(&self) -> Result<Self::Snapshot, sqlx::Error>;
    async fn end(snapshot: Self::Snapshot) -> Result<(), sqlx::Error>;
    /// The right to run the relay (`EventStore::relay_lease`).
    async fn lease(&self) -> Result<Option<RelayLease>, StoreError>;
    fn group_writer(&self) -> &Writer;
}

async fn read_deliveries(
    c: &mut impl Run,
    candidate_id: Option<&str>,
    application_id: Option<&str>,
) -> Result<Vec<StoredDelivery>, sqlx::Error> {
    c.fetch_all(sql::DELIVERIES, &[candidate_id.into(), application_id.into()]).await
}

async fn read_decisions(
    c: &mut impl Run,
    candidate_id: Option<&str>,
    application_id: Option<&str>,
) -> Result<Vec<StoredDecision>, sqlx::Error> {
    let rows: Vec<DecisionRow> = c.fetch_all(sql::DECISIONS, &[candidate_id.into(), application_id.into()]).await?;
    Ok(rows.into_iter().map(StoredDecision::from).collect())
}

async fn read_checkpoints(c: &mut impl Run) -> Result<Vec<chain::Checkpoint>, sqlx::Error> {
    let rows: Vec<(String, i64, String)> = c.fetch_all(sql::CHECKPOINTS, &[]).await?;
    Ok(rows
        .into_iter()
        .map(|(stream, next_pos, prev_hash)| chain::Checkpoint { stream, next_pos, prev_hash })
        .collect())
}

async fn read_heads(c: &mut impl Run) -> Result<Vec<chain::Head>, sqlx::Error> {
    let rows: Vec<(String, i64, String)> = c.fetch_all(sql::HEADS, &[]).await?;
    Ok(rows.into_iter().map(|(stream, chain_pos, hash)| chain::Head { stream, chain_pos, hash }).collect())
}

#[async_trait]
impl<S: Reads> EventStore for S {
    async fn find_key(&self, key: &str) -> Result<Option<Original>, StoreError> {
        Ok(self.lend().await?.fetch_optional(sql::FIND_KEY, &[key.into()]).await?)
    }

    async fn owed_round(&self, oldest: i64, max: i64) -> Result<Vec<Forwardable>, StoreError> {
        let rows: Vec<(i64, String, bool)> =
            self.lend().await?.fetch_all(sql::OWED_ROUND, &[oldest.into(), max.into()]).await?;
        Ok(rows.into_iter().map(|(seq, signal, seen_before)| Forwardable { seq, signal, seen_before }).collect())
    }

    async fn oldest_unforwarded(&self) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = self.lend().await?.fetch_optional(sql::OLDEST_UNFORWARDED, &[]).await?;
        Ok(row.map(|r| r.0))
    }

    async fn heads(&self) -> Result<Vec<chain::Head>, StoreError> {
        Ok(read_heads(&mut *self.lend().await?).await?)
    }

    async fn deliveries(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        Ok(read_deliveries(&mut *self.lend().await?, candidate_id, application_id).await?)
    }

    async fn decisions(
        &self,
        candidate_id: Option<&str>,
        application_id: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        Ok(read_decisions(&mut *self.lend().await?, candidate_id, application_id).await?)
    }

    async fn existing_field_key(&self, candidate_id: &str) -> Result<Option<vbridge_core::seal::FieldKey>, StoreError> {
        Ok(super::keys::existing(&mut *self.lend().await?, candidate_id).await?)
    }

    async fn erasures(&self, candidate_id: Option<&str>) -> Result<Vec<StoredDecision>, StoreError> {
        let rows: Vec<DecisionRow> = self.lend().await?.fetch_all(sql::ERASURES, &[candidate_id.into()]).await?;
        Ok(rows.into_iter().map(StoredDecision::from).collect())
    }

    async fn verify_streams(&self, streams: Option<&[String]>) -> Result<chain::Report, StoreError> {
        let mut tx = self.snapshot().await?;
        let deliveries = read_deliveries(&mut *tx, None, None).await?;
        let decisions = read_decisions(&mut *tx, None, None).await?;
        let checkpoints = read_checkpoints(&mut *tx).await?;
        let heads = read_heads(&mut *tx).await?;
        S::end(tx).await?;
        Ok(super::verify_rows(deliveries, decisions, &checkpoints, &heads, streams, self.group_writer().keys()))
    }

    async fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, StoreError> {
        Ok(read_checkpoints(&mut *self.lend().await?).await?)
    }

    async fn review_queue(
        &self,
        filter: &review::Filter,
        after: Option<&review::Cursor>,
        limit: u32,
        now: &str,
    ) -> Result<Vec<review::Row>, StoreError> {
        let pattern = filter.reason_code.as_deref().map(review::reason_code_pattern);
        let args: [Arg<'_>; 8] = [
            filter.queue.as_deref().into(),
            filter.overdue.into(),
            now.into(),
            pattern.as_deref().into(),
            after.map(|c| c.due_at.as_str()).into(),
            after.map(|c| c.candidate_id.as_str()).into(),
            after.map(|c| c.application_id.as_str()).into(),
            (limit as i64).into(),
        ];
        Ok(self.lend().await?.fetch_all(sql::REVIEW_QUEUE, &args).await?)
    }

    async fn review_item(&self, candidate_id: &str, application_id: &str) -> Result<Option<review::Row>, StoreError> {
        Ok(self.lend().await?.fetch_optional(sql::REVIEW_ITEM, &[candidate_id.into(), application_id.into()]).await?)
    }

    async fn review_counts(&self, now: &str) -> Result<(u64, u64), StoreError> {
        let (open, overdue): (i64, i64) = self.lend().await?.fetch_one(sql::REVIEW_COUNTS, &[now.into()]).await?;
        Ok((open.max(0) as u64, overdue.max(0) as u64))
    }

    async fn control(&self, name: &str) -> Result<Option<Control>, StoreError> {
        Ok(self.lend().await?.fetch_optional(sql::GET_CONTROL, &[name.into()]).await?)
    }

    async fn gate_row(&self, application_id: &str) -> Result<Option<gate::Row>, StoreError> {
        Ok(self.lend().await?.fetch_optional(sql::GATE_ROW, &[application_id.into()]).await?)
    }

    async fn dead_letters(&self, key: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.lend().await?.fetch_all(sql::OPEN_DEAD_LETTERS, &[key.into(), (limit as i64).into()]).await?)
    }

    async fn job(&self, application_id: &str) -> Result<Job, StoreError> {
        let row: Option<(Option<String>, Option<String>, Option<String>)> =
            self.lend().await?.fetch_optional(sql::JOB, &[application_id.into()]).await?;
        Ok(row.map(|(requisition, role, region)| Job { requisition, role, region }).unwrap_or_default())
    }

    async fn expected_page(
        &self,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<vbridge_proto::ExpectedWrite>, StoreError> {
        let args = [after.0.into(), after.1.into(), (limit as i64).into()];
        let rows: Vec<(String, String, String, String)> =
            self.lend().await?.fetch_all(sql::EXPECTED_PAGE, &args).await?;
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
        let (n,): (i64,) = self.lend().await?.fetch_one(sql::EXPECTED_COUNT, &[]).await?;
        Ok(n.max(0) as u64)
    }

    async fn reconcile_run(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = self.lend().await?.fetch_optional(sql::GET_RUN, &[run_id.into()]).await?;
        Ok(row.map(|r| r.0))
    }

    async fn refused_deliveries(
        &self,
        filter: &super::refused::Filter,
        after: Option<&super::refused::Cursor>,
        limit: u32,
    ) -> Result<Vec<super::refused::Row>, StoreError> {
        let args: [Arg<'_>; 8] = [
            filter.since.as_deref().into(),
            filter.until.as_deref().into(),
            filter.code.as_deref().into(),
            filter.candidate_id.as_deref().into(),
            after.map(|c| c.first_seen.as_str()).into(),
            after.map(|c| c.source.as_str()).into(),
            after.map(|c| c.seq).into(),
            (limit as i64).into(),
        ];
        Ok(self.lend().await?.fetch_all(sql::REFUSED_DELIVERIES, &args).await?)
    }

    async fn knows(&self, candidate_id: &str, application_id: &str) -> Result<bool, StoreError> {
        let (known,): (bool,) =
            self.lend().await?.fetch_one(sql::KNOWN, &[candidate_id.into(), application_id.into()]).await?;
        Ok(known)
    }

    async fn relay_lease(&self) -> Result<Option<RelayLease>, StoreError> {
        self.lease().await
    }

    fn writer(&self) -> &Writer {
        self.group_writer()
    }
}
