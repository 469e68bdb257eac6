//! The writer's statements inside a group transaction, written once for both
//! backends over [`Run`]. What a backend does differently (locks, retention's
//! guards, housekeeping) is its own `Backend` impl.

use super::Original;
use super::projection::{controls, dead_letters, gate, reconcile, review};
use super::run::{Arg, Run};
use super::sql;
use super::writer::{ChainEntry, ChainedDelivery, LinkFields};
use vbridge_proto::DecisionRecord;

pub(crate) async fn find_key(c: &mut impl Run, key: &str) -> Result<Option<Original>, sqlx::Error> {
    c.fetch_optional(sql::FIND_KEY, &[key.into()]).await
}

pub(crate) async fn head(c: &mut impl Run, stream: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    c.fetch_optional(sql::HEAD, &[stream.into()]).await
}

/// Insert a delivery row (and, when it is accepted, its outbox row and the
/// job it named); `None` when an accepted/ignored row lost a race for its
/// idempotency key to another process.
pub(crate) async fn insert_delivery(c: &mut impl Run, row: &ChainedDelivery<'_>) -> Result<Option<i64>, sqlx::Error> {
    let seq: Option<(i64,)> = c.fetch_optional(sql::INSERT_DELIVERY, &delivery_args(row)).await?;
    let seq = seq.map(|s| s.0);
    if let Some(seq) = seq
        && row.accepted
    {
        c.execute(sql::INSERT_OUTBOX, &[seq.into(), (&row.content.received_at).into()]).await?;
        upsert_job(c, row).await?;
    }
    Ok(seq)
}

/// [`insert_delivery`] for a list of rows: one statement for the rows and
/// one for their outbox rows, whatever their number (a statement is a round
/// trip on Postgres). Their seqs in list order; `None` when any row lost a
/// race for its key, and then the caller's transaction must not commit (the
/// rows that won are in it).
pub(crate) async fn insert_deliveries<C: Run>(
    c: &mut C,
    rows: &[&ChainedDelivery<'_>],
) -> Result<Option<Vec<i64>>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Some(vec![]));
    }
    let list: Vec<serde_json::Value> = rows.iter().map(|r| delivery_object(r)).collect();
    let list = json_list(&list)?;
    let back: Vec<(i64, String, i64)> =
        c.fetch_all(sql::INSERT_DELIVERIES.pick::<C>(), &[list.as_str().into()]).await?;
    let seq_of: std::collections::HashMap<(&str, i64), i64> =
        back.iter().map(|(seq, stream, pos)| ((stream.as_str(), *pos), *seq)).collect();
    let Some(seqs) = rows
        .iter()
        .map(|r| seq_of.get(&(r.link.stream.as_str(), r.link.chain_pos)).copied())
        .collect::<Option<Vec<i64>>>()
    else {
        return Ok(None);
    };
    let owed: Vec<(i64, &str)> = rows
        .iter()
        .zip(&seqs)
        .filter(|(r, _)| r.accepted)
        .map(|(r, seq)| (*seq, r.content.received_at.as_str()))
        .collect();
    if !owed.is_empty() {
        let list = json_list(&owed)?;
        c.execute(sql::INSERT_OUTBOXES.pick::<C>(), &[list.as_str().into()]).await?;
    }
    for r in rows.iter().filter(|r| r.accepted) {
        upsert_job(c, r).await?;
    }
    Ok(Some(seqs))
}

/// The job an accepted delivery named (most name none).
async fn upsert_job(c: &mut impl Run, row: &ChainedDelivery<'_>) -> Result<(), sqlx::Error> {
    let job = row.job;
    if let (false, Some(app)) = (job.is_empty(), row.content.application_id.as_deref()) {
        let args = [
            app.into(),
            (&job.requisition).into(),
            (&job.role).into(),
            (&job.region).into(),
            (&row.content.received_at).into(),
        ];
        c.execute(sql::UPSERT_JOB, &args).await?;
    }
    Ok(())
}

/// A delivery row as `sql::INSERT_DELIVERIES` reads it.
fn delivery_object(row: &ChainedDelivery<'_>) -> serde_json::Value {
    let (c, l) = (&row.content, &row.link);
    serde_json::json!({
        "received_at": c.received_at, "event_id": c.event_id, "event_type": c.event_type,
        "occurred_at": c.occurred_at, "candidate_id": c.candidate_id, "application_id": c.application_id,
        "idempotency_key": c.idempotency_key, "signature_valid": c.signature_valid,
        "processing_result": c.processing_result, "reject_code": c.reject_code, "trace_id": c.trace_id,
        "body_sha256": c.body_sha256, "delivery_attempt": c.delivery_attempt, "payload": c.payload,
        "signal": c.signal, "stream": l.stream, "chain_pos": l.chain_pos, "prev_hash": l.prev_hash,
        "hash": l.hash, "key_id": l.key_id,
    })
}

/// A delivery's values in `sql::INSERT_DELIVERY` order.
fn delivery_args<'a>(row: &'a ChainedDelivery<'_>) -> [Arg<'a>; 20] {
    let (c, l) = (&row.content, &row.link);
    [
        (&c.received_at).into(),
        (&c.event_id).into(),
        (&c.event_type).into(),
        (&c.occurred_at).into(),
        (&c.candidate_id).into(),
        (&c.application_id).into(),
        (&c.idempotency_key).into(),
        c.signature_valid.into(),
        (&c.processing_result).into(),
        (&c.reject_code).into(),
        (&c.trace_id).into(),
        (&c.body_sha256).into(),
        c.delivery_attempt.into(),
        (&c.payload).into(),
        (&c.signal).into(),
        (&l.stream).into(),
        l.chain_pos.into(),
        (&l.prev_hash).into(),
        (&l.hash).into(),
        (&l.key_id).into(),
    ]
}

pub(crate) async fn decision_exists(c: &mut impl Run, record_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i32,)> = c.fetch_optional(sql::DECISION_EXISTS, &[record_id.into()]).await?;
    Ok(row.is_some())
}

/// The times a verification's apply → verified clock may start at: its
/// events' and, from the hiring loop, the application's own.
pub(crate) async fn event_times(
    c: &mut impl Run,
    candidate_id: &str,
    application_id: &str,
    key: Option<&vbridge_core::seal::FieldKey>,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> =
        c.fetch_all(sql::EVENT_TIMES, &[candidate_id.into(), application_id.into()]).await?;
    // Bodies are sealed under the candidate's key (docs/privacy.md).
    let rows: Vec<(String, Option<String>)> =
        rows.into_iter().map(|(t, p)| (t, p.map(|p| vbridge_core::seal::reveal(key, candidate_id, &p)))).collect();
    // The ATS application's own time, when the hiring loop's request gave
    // it, starts `time_apply_to_verified` (docs/hiring.md).
    let applied = rows.iter().filter_map(|(_, p)| {
        let v: serde_json::Value = serde_json::from_str(p.as_deref()?).ok()?;
        v.pointer("/signals/applied_at").and_then(serde_json::Value::as_str).map(str::to_owned)
    });
    let applied: Vec<String> = applied.collect();
    Ok(rows.into_iter().map(|r| r.0).chain(applied).collect())
}

pub(crate) async fn insert_decision(c: &mut impl Run, r: &DecisionRecord, l: &LinkFields) -> Result<(), sqlx::Error> {
    let args: [Arg<'_>; 26] = [
        (&r.record_id).into(),
        (&r.recorded_at).into(),
        (&r.kind).into(),
        (&r.candidate_id).into(),
        (&r.application_id).into(),
        (&r.event_id).into(),
        (&r.event_type).into(),
        (&r.occurred_at).into(),
        (&r.received_at).into(),
        (&r.idempotency_key).into(),
        (&r.state_before).into(),
        (&r.state_after).into(),
        (&r.reason).into(),
        (&r.write_targets).into(),
        (r.delivery_attempt as i64).into(),
        (&r.processing_result).into(),
        (&r.trace_id).into(),
        (&r.override_actor).into(),
        (&r.override_reason_code).into(),
        (&r.override_timestamp).into(),
        (&r.detail).into(),
        (&l.stream).into(),
        l.chain_pos.into(),
        (&l.prev_hash).into(),
        (&l.hash).into(),
        (&l.key_id).into(),
    ];
    c.execute(sql::INSERT_DECISION, &args).await.map(|_| ())
}

/// Apply one change to the gate's projection.
pub(crate) async fn project_gate(c: &mut impl Run, change: &gate::Change) -> Result<(), sqlx::Error> {
    match change {
        gate::Change::State { application_id, candidate_id, state, as_of } => {
            let args = [application_id.into(), candidate_id.into(), state.into(), as_of.into()];
            c.execute(sql::GATE_STATE, &args).await?;
            // Decided: the hiring loop needs the candidate's address no more
            // (docs/privacy.md); it goes in the transaction that records it.
            if matches!(state.as_str(), "verified" | "failed") {
                c.execute(sql::FORGET_CONTACT, &[candidate_id.into(), application_id.into()]).await?;
            }
        }
        gate::Change::Written { application_id, written } => {
            c.execute(sql::GATE_WRITTEN, &[application_id.into(), written.into()]).await?;
        }
        gate::Change::Sync { application_id, ats_sync } => {
            c.execute(sql::GATE_SYNC, &[ats_sync.into(), application_id.into()]).await?;
        }
    }
    Ok(())
}

/// Apply one change to the dead letters.
pub(crate) async fn project_dead_letter(c: &mut impl Run, change: &dead_letters::Change) -> Result<(), sqlx::Error> {
    match change {
        dead_letters::Change::Failed(d) => {
            let args = [
                (&d.idempotency_key).into(),
                (&d.candidate_id).into(),
                (&d.application_id).into(),
                (&d.event_id).into(),
                (&d.target).into(),
                (&d.state).into(),
                (&d.reason).into(),
                (&d.failed_at).into(),
            ];
            c.execute(sql::DEAD_LETTER, &args).await?;
        }
        dead_letters::Change::Written { target, at } => {
            c.execute(sql::DEAD_LETTERS_RESOLVED, &[at.into(), target.into()]).await?;
        }
    }
    Ok(())
}

/// Keep a finished reconciliation run's report.
pub(crate) async fn project_run(c: &mut impl Run, run_id: &str, at: &str, report: &str) -> Result<(), sqlx::Error> {
    c.execute(sql::SAVE_RUN, &[run_id.into(), at.into(), report.into()]).await.map(|_| ())
}

/// Merge a write's fields into the reconciliation's expectation.
pub(crate) async fn project_expected(c: &mut impl Run, w: &reconcile::Written) -> Result<(), sqlx::Error> {
    let old: Option<(String,)> =
        c.fetch_optional(sql::EXPECTED_OF, &[(&w.application_id).into(), (&w.check_id).into()]).await?;
    let mut fields: std::collections::BTreeMap<String, String> =
        old.and_then(|o| serde_json::from_str(&o.0).ok()).unwrap_or_default();
    fields.extend(w.fields.clone());
    let fields = serde_json::to_string(&fields).expect("fields serialize");
    let args = [(&w.application_id).into(), (&w.check_id).into(), (&w.candidate_id).into(), (&fields).into()];
    c.execute(sql::SET_EXPECTED, &args).await.map(|_| ())
}

/// Store a control's new value.
pub(crate) async fn project_control(c: &mut impl Run, ctl: &controls::Control) -> Result<(), sqlx::Error> {
    let args =
        [(&ctl.name).into(), (&ctl.value).into(), (&ctl.actor).into(), (&ctl.reason).into(), (&ctl.changed_at).into()];
    c.execute(sql::SET_CONTROL, &args).await.map(|_| ())
}

/// Apply one change to the review queue projection.
pub(crate) async fn project_review(c: &mut impl Run, change: &review::Change) -> Result<(), sqlx::Error> {
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    match change {
        review::Change::Upsert { candidate_id, application_id, item, as_of } => {
            let (codes, flags) = (json(&item.reason_codes), json(&item.flags));
            let args = [
                candidate_id.into(),
                application_id.into(),
                (&item.queue).into(),
                (&codes).into(),
                (&item.evidence_pack_url).into(),
                (&item.routed_at).into(),
                (&item.due_at).into(),
                (item.escalations as i64).into(),
                (&flags).into(),
                (&item.trace_id).into(),
                as_of.into(),
            ];
            c.execute(sql::UPSERT_REVIEW, &args).await?;
        }
        review::Change::Close { candidate_id, application_id, as_of } => {
            c.execute(sql::CLOSE_REVIEW, &[as_of.into(), candidate_id.into(), application_id.into()]).await?;
        }
    }
    Ok(())
}

/// Record the forwards and take the rows out of the outbox: two statements
/// for the whole list.
pub(crate) async fn mark_forwarded<C: Run>(c: &mut C, seqs: &[i64], now: &str) -> Result<(), sqlx::Error> {
    if seqs.is_empty() {
        return Ok(());
    }
    let list = json_list(seqs)?;
    c.execute(sql::MARK_FORWARDED_ALL.pick::<C>(), &[list.as_str().into(), now.into()]).await?;
    c.execute(sql::TAKE_ALL_FROM_OUTBOX.pick::<C>(), &[list.as_str().into()]).await?;
    Ok(())
}

/// Move the chains' heads: one statement for every stream a group touched.
pub(crate) async fn set_heads<C: Run>(c: &mut C, heads: &[(&str, i64, &str)]) -> Result<(), sqlx::Error> {
    if heads.is_empty() {
        return Ok(());
    }
    let list = json_list(heads)?;
    c.execute(sql::SET_HEADS.pick::<C>(), &[list.as_str().into()]).await.map(|_| ())
}

/// The first commits of a list of idempotency keys, as (key, original).
pub(crate) async fn find_keys<C: Run>(c: &mut C, keys: &[&str]) -> Result<Vec<(String, Original)>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let list = json_list(keys)?;
    let rows: Vec<(String, i64, String, String, String)> =
        c.fetch_all(sql::FIND_KEYS.pick::<C>(), &[list.as_str().into()]).await?;
    Ok(rows
        .into_iter()
        .map(|(key, seq, event_id, trace_id, processing_result)| {
            (key, Original { seq, event_id, trace_id, processing_result })
        })
        .collect())
}

/// The heads of a list of streams, as (stream, chain_pos, hash).
pub(crate) async fn heads_of<C: Run>(c: &mut C, streams: &[&str]) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    if streams.is_empty() {
        return Ok(vec![]);
    }
    let list = json_list(streams)?;
    c.fetch_all(sql::HEADS_OF.pick::<C>(), &[list.as_str().into()]).await
}

/// A list bound as one text value (see [`sql::Listed`]).
pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(items).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Every chained record's stream, position, hash and time.
pub(crate) async fn chain_entries(c: &mut impl Run) -> Result<Vec<ChainEntry>, sqlx::Error> {
    c.fetch_all(sql::CHAIN_ENTRIES, &[]).await
}

pub(crate) async fn commit(c: &mut impl Run) -> Result<(), sqlx::Error> {
    c.execute("COMMIT", &[]).await.map(|_| ())
}

pub(crate) async fn rollback(c: &mut impl Run) {
    if let Err(e) = c.execute("ROLLBACK", &[]).await {
        tracing::debug!(error = %e, "rollback after a failed group");
    }
}
