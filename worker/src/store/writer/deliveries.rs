//! A delivery's commit inside a group: its chain (a candidate's, or
//! `rejected`), the first-vs-duplicate rule, its body sealed under the
//! candidate's key, its link.

use super::{Backend, ChainedDelivery, Fail, Heads};
use crate::store::{Committed, DeliveryContent, DeliveryRecord, Intent, Original, ProcessingResult, ops};
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

pub(super) async fn commit_one<B: Backend>(
    b: &mut B,
    heads: &mut Heads<'_>,
    rec: &DeliveryRecord,
) -> Result<Committed, Fail> {
    let stream = delivery_stream(rec);
    for _ in 0..3 {
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
        let staged_before = heads.staged.get(&stream).cloned();
        let link = heads.link(&stream, next, &content);
        let row = ChainedDelivery { content, link, accepted: result == ProcessingResult::Accepted, job: &rec.job };
        let Some(seq) = ops::insert_delivery(b.conn(), &row).await? else {
            // Another process committed this key first: undo the staged link
            // and decide again, now that its row is visible.
            match staged_before {
                Some(h) => heads.staged.insert(stream.clone(), h),
                None => heads.staged.remove(&stream),
            };
            continue;
        };
        return Ok(match (result, original) {
            (ProcessingResult::Accepted, _) => Committed::Accepted { seq },
            (ProcessingResult::Ignored, _) => Committed::Ignored { seq },
            (ProcessingResult::Duplicate, Some(original)) => Committed::Duplicate { seq, original },
            (ProcessingResult::Rejected, Some(original)) if rec.intent != Intent::Rejected => {
                Committed::Conflict { seq, original }
            }
            _ => Committed::Rejected { seq },
        });
    }
    Err(Fail::KeyContention)
}
