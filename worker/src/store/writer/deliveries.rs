//! A delivery's commit inside a group: its chain (a candidate's, or
//! `rejected`), the first-vs-duplicate rule, its body sealed under the
//! candidate's key, its link.

use super::{Backend, ChainedDelivery, Fail, Heads};
use crate::store::{Committed, DeliveryContent, DeliveryRecord, Intent, Original, ProcessingResult, ops};
use std::collections::HashSet;
use vbridge_core::chain::{self, REJECTED_STREAM};

/// The stream a delivery belongs to: rejected deliveries, whose fields cannot
/// be trusted, have their own; every other one is its candidate's.
pub fn delivery_stream(rec: &DeliveryRecord) -> String {
    match (rec.intent, rec.candidate_id.as_deref(), rec.application_id.as_deref()) {
        (Intent::Rejected, _, _) => REJECTED_STREAM.to_owned(),
        (_, Some(c), Some(a)) => chain::stream_of(c, a),
        _ => REJECTED_STREAM.to_owned(),
    }
}

/// The first-vs-duplicate rule, given what the key already points to.
fn settle(rec: &DeliveryRecord, original: Option<&Original>) -> (ProcessingResult, DeliveryContent) {
    let result = match (rec.intent, original) {
        (Intent::Rejected, _) => ProcessingResult::Rejected,
        (_, Some(o)) if Some(o.event_id.as_str()) == rec.event_id.as_deref() => ProcessingResult::Duplicate,
        (_, Some(_)) => ProcessingResult::Rejected,
        (Intent::FreshIgnored, None) => ProcessingResult::Ignored,
        (_, None) => ProcessingResult::Accepted,
    };
    let conflict = result == ProcessingResult::Rejected && rec.intent != Intent::Rejected;
    // Only the first commit of a key keeps a signal and is forwarded; rejected
    // rows keep no payload.
    let keep_payload =
        matches!(result, ProcessingResult::Accepted | ProcessingResult::Ignored | ProcessingResult::Duplicate);
    let content = DeliveryContent {
        received_at: rec.received_at.clone(),
        event_id: rec.event_id.clone(),
        event_type: rec.event_type.clone(),
        occurred_at: rec.occurred_at.clone(),
        candidate_id: rec.candidate_id.clone(),
        application_id: rec.application_id.clone(),
        idempotency_key: rec.idempotency_key.clone(),
        signature_valid: rec.signature_valid,
        processing_result: result.as_str().to_owned(),
        reject_code: if conflict { Some("idempotency_conflict".into()) } else { rec.reject_code.clone() },
        trace_id: rec.trace_id.clone(),
        body_sha256: rec.body_sha256.clone(),
        delivery_attempt: rec.delivery_attempt,
        payload: if keep_payload { rec.payload.clone() } else { None },
        signal: if result == ProcessingResult::Accepted { rec.signal.clone() } else { None },
    };
    (result, content)
}

/// A delivery decided and linked, its row not yet written.
pub(super) struct Prepared<'a> {
    pub(super) row: ChainedDelivery<'a>,
    result: ProcessingResult,
    original: Option<Original>,
    intent: Intent,
}

impl Prepared<'_> {
    fn committed(self, seq: i64) -> Committed {
        match (self.result, self.original) {
            (ProcessingResult::Accepted, _) => Committed::Accepted { seq },
            (ProcessingResult::Ignored, _) => Committed::Ignored { seq },
            (ProcessingResult::Duplicate, Some(original)) => Committed::Duplicate { seq, original },
            (ProcessingResult::Rejected, Some(original)) if self.intent != Intent::Rejected => {
                Committed::Conflict { seq, original }
            }
            _ => Committed::Rejected { seq },
        }
    }
}

/// Decide a delivery (first, duplicate, conflict...), seal its body and
/// link it into its chain; the link is staged in `heads`.
async fn prepare<'a, B: Backend>(
    b: &mut B,
    heads: &mut Heads<'_>,
    rec: &'a DeliveryRecord,
) -> Result<Prepared<'a>, Fail> {
    let stream = delivery_stream(rec);
    let original = match (rec.intent, rec.idempotency_key.as_deref()) {
        (Intent::Rejected, _) | (_, None) => None,
        (_, Some(key)) => heads.original(b, key).await?,
    };
    let (result, mut content) = settle(rec, original.as_ref());
    // The body as stored may hold the candidate's personal data (free-form
    // `signals`): sealed under the candidate's key before it is linked.
    if let (Some(payload), Some(cand)) = (&content.payload, &content.candidate_id) {
        content.payload = Some(heads.seal(b, cand, payload).await?);
    }
    let next = heads.next(b, &stream).await?;
    let link = heads.link(&stream, next, &content);
    let row = ChainedDelivery { content, link, accepted: result == ProcessingResult::Accepted, job: &rec.job };
    Ok(Prepared { row, result, original, intent: rec.intent })
}

/// Commit one delivery, its row written now.
pub(super) async fn commit_one<B: Backend>(
    b: &mut B,
    heads: &mut Heads<'_>,
    rec: &DeliveryRecord,
) -> Result<Committed, Fail> {
    let stream = delivery_stream(rec);
    for _ in 0..3 {
        let staged_before = heads.staged.get(&stream).cloned();
        let prepared = prepare(b, heads, rec).await?;
        let Some(seq) = ops::insert_delivery(b.conn(), &prepared.row).await? else {
            // Another process committed this key first: undo the staged link
            // and decide again, now that its row is visible.
            match staged_before {
                Some(h) => heads.staged.insert(stream.clone(), h),
                None => heads.staged.remove(&stream),
            };
            continue;
        };
        return Ok(prepared.committed(seq));
    }
    Err(Fail::KeyContention)
}

/// A run of a group's deliveries decided and linked one by one, their rows
/// (and new candidates' keys) then written in one statement per table. A
/// row that loses a race for its key fails the whole group with
/// [`Fail::Raced`]: it runs again one by one, where a loser decides again.
#[derive(Default)]
pub(super) struct Bulk<'a> {
    rows: Vec<(usize, Prepared<'a>)>,
    /// The idempotency keys of `rows`: a delivery of one of them must see
    /// the row written first (it is a duplicate of it).
    keys: HashSet<&'a str>,
    flushed_many: bool,
}

impl<'a> Bulk<'a> {
    /// Whether any row was written in bulk (a flush of more than one).
    pub(super) fn wrote_any(&self) -> bool {
        self.flushed_many
    }

    /// Whether `rec` must wait until the rows held are written.
    pub(super) fn holds_key_of(&self, rec: &DeliveryRecord) -> bool {
        rec.idempotency_key.as_deref().is_some_and(|k| self.keys.contains(k))
    }

    /// Decide and link `rec`, the op at `pos` of the group; its row waits.
    pub(super) async fn add<B: Backend>(
        &mut self,
        b: &mut B,
        heads: &mut Heads<'_>,
        pos: usize,
        rec: &'a DeliveryRecord,
    ) -> Result<(), Fail> {
        heads.field_keys.defer = true;
        let prepared = prepare(b, heads, rec).await;
        heads.field_keys.defer = false;
        if let Some(key) = rec.idempotency_key.as_deref() {
            self.keys.insert(key);
        }
        self.rows.push((pos, prepared?));
        Ok(())
    }

    /// Write the keys made and the rows held: each row's position and what
    /// its commit was.
    pub(super) async fn flush<B: Backend>(
        &mut self,
        b: &mut B,
        heads: &mut Heads<'_>,
    ) -> Result<Vec<(usize, Committed)>, Fail> {
        if !heads.field_keys.store_made(b).await? {
            return Err(Fail::Raced);
        }
        self.keys.clear();
        let rows = std::mem::take(&mut self.rows);
        self.flushed_many |= rows.len() > 1;
        let list: Vec<&ChainedDelivery> = rows.iter().map(|(_, p)| &p.row).collect();
        let Some(seqs) = ops::insert_deliveries(b.conn(), &list).await? else { return Err(Fail::Raced) };
        Ok(rows.into_iter().zip(seqs).map(|((pos, p), seq)| (pos, p.committed(seq))).collect())
    }
}
