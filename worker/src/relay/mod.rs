//! The transactional outbox relay: committed deliveries → Temporal signals.
//!
//! - at least once: a delivery is marked forwarded only after Temporal took
//!   the signal; the workflow drops a re-forwarded event id as a duplicate;
//! - in commit order per candidate: one workflow's events go one after the
//!   other, and a failure stops that workflow's queue until the next round;
//! - batched: a verification's events owed together (a backlog after an
//!   outage, a provider's catch-up, a storm) go as one `event_batch` signal
//!   (bounded in count and bytes), so a backlog costs the engine one signal
//!   per verification, not one per event; a round reads the oldest owed rows
//!   and the rest of their verifications' with them;
//! - reads the store's outbox, which holds only what is still owed (O(pending));
//! - resumes after a restart from what the outbox holds;
//! - when Temporal is down it waits and retries; the receiver keeps acking.

use crate::metrics::Metrics;
use crate::store::{EventStore, Forwardable};
use crate::temporal::forward::Forwarder;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use vbridge_proto::EventSignal;

pub struct Relay {
    pub store: Arc<dyn EventStore>,
    pub forwarder: Forwarder,
    pub metrics: Arc<Metrics>,
    /// Fault injection for crash tests: abort right after the first forward,
    /// before it is marked (`VBRIDGE_FAULT=crash-after-forward`).
    pub crash_after_forward: bool,
    /// How long a verification's first owed event must have waited for its
    /// batch to be a backlog, whose ATS writes coalesce into one
    /// (`VBRIDGE_RELAY_BACKLOG_AFTER_MS`; see `EventBatch.backlog`).
    pub backlog_after: Duration,
    /// The most events one signal carries (`VBRIDGE_RELAY_BATCH_MAX`, at most
    /// [`BATCH_EVENTS_MAX`](crate::temporal::forward::BATCH_EVENTS_MAX)); 1 sends each event alone, as before batches.
    pub batch_max: usize,
}

/// Outbox rows read per round: the oldest [`ROUND_OLDEST`], and with them
/// the other owed rows of their verifications, up to [`ROUND_MAX`] in all.
const ROUND_OLDEST: i64 = 256;
const ROUND_MAX: i64 = 1024;
const CONCURRENT_WORKFLOWS: usize = 32;
/// The most bytes of stored signals one batch carries: far under Temporal's
/// payload limits (it warns at 2 MiB), whatever the events hold.
const BATCH_BYTES_MAX: usize = 256 * 1024;

impl Relay {
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let notify = self.store.committed_notify();
        let mut backoff = Duration::from_millis(200);
        let mut lease = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Only the holder of the lease forwards: one relay at a time keeps
            // each candidate's events in commit order across processes.
            let holds = match lease.as_mut() {
                Some(l) => crate::store::RelayLease::alive(l).await,
                None => false,
            };
            if !holds {
                lease = match self.store.relay_lease().await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "relay cannot take its lease");
                        None
                    }
                };
                if lease.is_none() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                tracing::info!("relay lease taken; forwarding");
            }
            let items = match self.store.owed_round(ROUND_OLDEST, ROUND_MAX).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::error!(error = %e, "relay cannot read the event store");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // New runs start with the kill switch's banner as it stands.
            if let Err(e) =
                crate::controls::refresh_banner(self.store.as_ref(), &self.forwarder.policy, &self.forwarder.banner)
                    .await
            {
                tracing::warn!(error = %e, "relay cannot read the kill switch; keeping the last banner");
            }
            let (done, failed) = self.forward_round(items).await;
            if let Err(e) = self.store.mark_forwarded(done.clone()).await {
                tracing::error!(error = %e, "relay could not mark forwarded events; they will be sent again");
            }
            self.metrics.relay_forwarded.add(done.len() as u64);
            if failed.is_empty() {
                backoff = Duration::from_millis(200);
            } else {
                self.metrics.relay_errors.inc();
                tracing::warn!(
                    waiting = failed.len(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "Temporal did not take some events; retrying"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// Forward one round. Returns (forwarded seqs, seqs left for later).
    async fn forward_round(&self, items: Vec<Forwardable>) -> (Vec<i64>, Vec<i64>) {
        let mut groups: BTreeMap<String, Vec<Owed>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for it in items {
            let event = serde_json::from_str::<EventSignal>(&it.signal).ok();
            let key = event
                .as_ref()
                .map(|ev| vbridge_core::domain::workflow_id(&ev.candidate_id, &ev.application_id))
                .unwrap_or_else(|| format!("unparsable:{}", it.seq));
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            let bytes = it.signal.len();
            groups.entry(key).or_default().push(Owed { seq: it.seq, event, seen_before: it.seen_before, bytes });
        }
        let results: Vec<(Vec<i64>, Vec<i64>)> =
            futures::stream::iter(order.into_iter().map(|k| groups.remove(&k).unwrap_or_default()))
                .map(|group| self.forward_group(group))
                .buffer_unordered(CONCURRENT_WORKFLOWS)
                .collect()
                .await;
        let mut done = vec![];
        let mut failed = vec![];
        for (d, f) in results {
            done.extend(d);
            failed.extend(f);
        }
        (done, failed)
    }

    /// Forward one verification's owed events in commit order, as few
    /// signals as the bounds allow; the first failure leaves the rest owed.
    async fn forward_group(&self, group: Vec<Owed>) -> (Vec<i64>, Vec<i64>) {
        let mut done = vec![];
        let mut rest = group.into_iter().peekable();
        loop {
            let chunk = take_batch(&mut rest, self.batch_max);
            let Some(first) = chunk.first() else {
                // An unreadable signal (alone in its group) or nothing left.
                return match rest.next() {
                    None => (done, vec![]),
                    Some(o) => {
                        tracing::error!(seq = o.seq, "stored signal is unreadable; it stays in the outbox");
                        (done, std::iter::once(o.seq).chain(rest.map(|o| o.seq)).collect())
                    }
                };
            };
            let seen_before = first.1;
            // With batches off (`VBRIDGE_RELAY_BATCH_MAX=1`, a rolling upgrade
            // from workers before them), nothing is a backlog: every event
            // goes alone as `on_event`, which every worker knows.
            let backlog = self.batch_max > 1 && waited(&first.2.received_at, chrono::Utc::now()) >= self.backlog_after;
            let (seqs, events): (Vec<i64>, Vec<EventSignal>) = chunk.into_iter().map(|(seq, _, ev)| (seq, ev)).unzip();
            match self.forwarder.forward_batch(&events, seen_before, backlog).await {
                Ok(()) => {
                    self.metrics.relay_signals.inc();
                    for (seq, ev) in seqs.iter().zip(&events) {
                        tracing::info!(seq, trace_id = %ev.trace_id, event_id = %ev.event_id, batch = events.len(),
                            "event forwarded to Temporal");
                    }
                    if self.crash_after_forward {
                        tracing::error!("fault injection: aborting after forward, before marking it");
                        std::process::abort();
                    }
                    done.extend(seqs);
                }
                Err(e) => {
                    for (seq, ev) in seqs.iter().zip(&events) {
                        tracing::warn!(seq, trace_id = %ev.trace_id, error = %e, "forward failed");
                    }
                    return (done, seqs.into_iter().chain(rest.map(|o| o.seq)).collect());
                }
            }
        }
    }
}

/// How long an event received at `received_at` (RFC 3339) has waited by
/// `now`; zero when the time does not parse or is ahead.
fn waited(received_at: &str, now: chrono::DateTime<chrono::Utc>) -> Duration {
    chrono::DateTime::parse_from_rfc3339(received_at)
        .ok()
        .and_then(|t| (now - t.with_timezone(&chrono::Utc)).to_std().ok())
        .unwrap_or_default()
}

/// One owed outbox row: its stored signal parsed (None: unreadable), and its
/// size as stored.
#[derive(Debug)]
struct Owed {
    seq: i64,
    event: Option<EventSignal>,
    seen_before: bool,
    bytes: usize,
}

/// The next batch of a group: readable events in order, at most `max` of
/// them and [`BATCH_BYTES_MAX`] bytes (always at least one, whatever its
/// size); stops before an unreadable one. As (seq, seen_before, event).
fn take_batch(rest: &mut std::iter::Peekable<impl Iterator<Item = Owed>>, max: usize) -> Vec<(i64, bool, EventSignal)> {
    let mut chunk = vec![];
    let mut bytes = 0;
    while let Some(next) = rest.peek() {
        if next.event.is_none() || (!chunk.is_empty() && (chunk.len() >= max || bytes + next.bytes > BATCH_BYTES_MAX)) {
            break;
        }
        let Some(Owed { seq, event: Some(ev), seen_before, bytes: b }) = rest.next() else { break };
        bytes += b;
        chunk.push((seq, seen_before, ev));
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(seq: i64, readable: bool, bytes: usize) -> Owed {
        let event = readable.then(|| EventSignal { event_id: format!("e{seq}"), ..Default::default() });
        Owed { seq, event, seen_before: seq > 1, bytes }
    }

    #[test]
    fn an_events_wait_is_measured_from_its_receipt_and_never_negative() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:10Z").unwrap().with_timezone(&chrono::Utc);
        let rows = [
            ("2026-12-03T10:00:04.500Z", Duration::from_millis(5_500)),
            ("2026-12-03T11:00:04+01:00", Duration::from_secs(6)),
            ("2026-12-03T10:00:11Z", Duration::ZERO),
            ("yesterday", Duration::ZERO),
        ];
        for (at, want) in rows {
            assert_eq!(waited(at, now), want, "{at}");
        }
    }

    #[test]
    fn a_group_is_cut_into_bounded_batches_in_order_stopping_before_an_unreadable_row() {
        // (what, rows as (seq, readable, bytes), max, the batches' seqs, left)
        type Row = (&'static str, Vec<(i64, bool, usize)>, usize, Vec<Vec<i64>>, Vec<i64>);
        let k = 1024;
        let rows: Vec<Row> = vec![
            ("one event is one batch", vec![(1, true, k)], 32, vec![vec![1]], vec![]),
            (
                "a group under the bounds is one batch",
                vec![(1, true, k), (2, true, k), (3, true, k)],
                32,
                vec![vec![1, 2, 3]],
                vec![],
            ),
            (
                "the count bound cuts",
                vec![(1, true, k), (2, true, k), (3, true, k)],
                2,
                vec![vec![1, 2], vec![3]],
                vec![],
            ),
            ("a max of one sends each alone", vec![(1, true, k), (2, true, k)], 1, vec![vec![1], vec![2]], vec![]),
            (
                "the byte bound cuts, and an oversized one still goes alone",
                vec![(1, true, 200 * k), (2, true, 100 * k), (3, true, 300 * k), (4, true, k)],
                32,
                vec![vec![1], vec![2], vec![3], vec![4]],
                vec![],
            ),
            (
                "an unreadable row stops the batches before it",
                vec![(1, true, k), (2, false, k), (3, true, k)],
                32,
                vec![vec![1]],
                vec![2, 3],
            ),
        ];
        for (what, input, max, want, want_left) in rows {
            let mut rest = input.into_iter().map(|(s, r, b)| owed(s, r, b)).peekable();
            let mut got = vec![];
            loop {
                let chunk = take_batch(&mut rest, max);
                if chunk.is_empty() {
                    break;
                }
                assert_eq!(chunk[0].1, chunk[0].0 > 1, "{what}: the batch carries its first row's seen_before");
                got.push(chunk.into_iter().map(|(s, ..)| s).collect::<Vec<_>>());
            }
            let left: Vec<i64> = rest.map(|o| o.seq).collect();
            assert_eq!((got, left), (want, want_left), "{what}");
        }
    }
}
