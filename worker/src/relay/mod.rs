//! The transactional outbox relay: committed deliveries → Temporal signals.
//!
//! - at least once: a delivery is marked forwarded only after Temporal took
//!   the signal; the workflow drops a re-forwarded event id as a duplicate;
//! - in commit order per candidate: one workflow's events go one after the
//!   other, and a failure stops that workflow's queue until the next round;
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
}

const BATCH: i64 = 512;
const CONCURRENT_WORKFLOWS: usize = 32;

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
            let items = match self.store.unforwarded(BATCH).await {
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

    /// Forward one batch. Returns (forwarded seqs, seqs left for later).
    async fn forward_round(&self, items: Vec<Forwardable>) -> (Vec<i64>, Vec<i64>) {
        let mut groups: BTreeMap<String, Vec<(i64, Option<EventSignal>, bool)>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for it in items {
            let parsed = serde_json::from_str::<EventSignal>(&it.signal).ok();
            let key = parsed
                .as_ref()
                .map(|ev| vbridge_core::domain::workflow_id(&ev.candidate_id, &ev.application_id))
                .unwrap_or_else(|| format!("unparsable:{}", it.seq));
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push((it.seq, parsed, it.seen_before));
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

    async fn forward_group(&self, group: Vec<(i64, Option<EventSignal>, bool)>) -> (Vec<i64>, Vec<i64>) {
        let mut done = vec![];
        let mut iter = group.into_iter();
        while let Some((seq, ev, seen_before)) = iter.next() {
            let Some(ev) = ev else {
                tracing::error!(seq, "stored signal is unreadable; it stays in the outbox");
                return (done, std::iter::once(seq).chain(iter.map(|(s, ..)| s)).collect());
            };
            match self.forwarder.forward(&ev, seen_before).await {
                Ok(()) => {
                    tracing::info!(seq, trace_id = %ev.trace_id, event_id = %ev.event_id, "event forwarded to Temporal");
                    if self.crash_after_forward {
                        tracing::error!("fault injection: aborting after forward, before marking it");
                        std::process::abort();
                    }
                    done.push(seq);
                }
                Err(e) => {
                    tracing::warn!(seq, trace_id = %ev.trace_id, error = %e, "forward failed");
                    return (done, std::iter::once(seq).chain(iter.map(|(s, ..)| s)).collect());
                }
            }
        }
        (done, vec![])
    }
}
