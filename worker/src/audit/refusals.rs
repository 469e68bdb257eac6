//! Refused requests, aggregated: what an unauthenticated client can make the
//! bridge store or log is bounded, whatever it sends.
//!
//! A refused operator API request (401/403) and a refused unauthenticated
//! webhook delivery (bad or missing signature, stale timestamp, not JSON, too
//! large, unreadable) are each *noted* here, in memory: counted under a key
//! (source, code, route template or truncated path, subject, claimed ids),
//! with first and last seen and one truncated sample. Once per window (a
//! minute; `VBRIDGE_REFUSAL_WINDOW_MS`) and at shutdown, [`Refusals::flush`]
//! appends one audit record per key: `access_denied` in the `access` chain,
//! `deliveries_refused` in the `rejected` chain, each with its `count`.
//!
//! Bounds: at most [`MAX_KEYS_PER_SOURCE`] keys per source per window; a
//! refusal that would make another is folded into its code's `(other)` key
//! (so a window makes at most `2 × (32 + codes)` records). Samples and claims
//! are truncated ([`SAMPLE_BYTES`], [`CLAIM_BYTES`]) with odd bytes escaped.
//! The request path never waits on the store: noting is a map update under a
//! lock, and the flush is one append a window.
//!
//! Crash points: a window not yet flushed is lost when the process is killed
//! (SIGKILL, OOM, power): at most one window of refusal *aggregates*. The
//! Prometheus counters had counted them already. Accepted deliveries never
//! pass here: they are committed before they are answered.
//!
//! Log lines about refusals go through [`LogThrottle`]: one a second per
//! source, saying how many were held back.

use crate::store::EventStore;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// Keys one source may make in one window; the rest fold into `(other)`.
pub const MAX_KEYS_PER_SOURCE: usize = 32;
/// The longest sample path kept (bytes, after escaping).
pub const SAMPLE_BYTES: usize = 200;
/// The longest claimed id or route kept in a key (bytes, after escaping).
pub const CLAIM_BYTES: usize = 128;
/// The window: one record per key per window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// The route of the keys that overflow folds into.
pub const OTHER: &str = "(other)";

/// Where a refusal happened; which chain its aggregate goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The operator API and the console (`access` chain).
    OperatorApi,
    /// `POST /webhooks/verification` (`rejected` chain).
    Webhook,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OperatorApi => "operator_api",
            Source::Webhook => "webhook",
        }
    }

    fn kind(self) -> RecordKind {
        match self {
            Source::OperatorApi => RecordKind::AccessDenied,
            Source::Webhook => RecordKind::DeliveriesRefused,
        }
    }

    fn index(self) -> usize {
        match self {
            Source::OperatorApi => 0,
            Source::Webhook => 1,
        }
    }
}

/// Ids a refused delivery's body claims: unverified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claimed<'a> {
    pub candidate_id: Option<&'a str>,
    pub application_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

/// One refused request, as noted.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub source: Source,
    /// `unauthenticated`, `forbidden`, or a delivery's `reject_code`.
    pub code: &'static str,
    /// The route template (`GET /v1/candidates/{id}/timeline`), or a path
    /// (truncated here).
    pub route: &'a str,
    /// The request's own path (the sample; truncated here).
    pub path: &'a str,
    /// The credential's subject, when it had one (403).
    pub subject: &'a str,
    pub claimed: Claimed<'a>,
    pub trace_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: Source,
    code: &'static str,
    route: String,
    subject: String,
    candidate_id: String,
    application_id: String,
}

#[derive(Debug, Clone)]
struct Tally {
    count: u64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    sample_path: String,
    sample_event_id: String,
    trace_id: String,
}

#[derive(Default)]
struct Window {
    keys: HashMap<Key, Tally>,
    /// Keys made per source (not counting `(other)` ones).
    made: [usize; 2],
}

/// The aggregator (one per process).
#[derive(Default)]
pub struct Refusals {
    window: Mutex<Window>,
    logs: [LogThrottle; 2],
    /// Refusals whose aggregate could not be appended (a store outage at
    /// flush): counted, and said in a log line.
    lost: AtomicU64,
}

/// `s` with control characters, non-ASCII and quotes escaped (`\xNN`), cut
/// at `max` bytes on a character boundary.
pub fn truncated(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for b in s.bytes() {
        let piece = if b.is_ascii_graphic() && b != b'\\' && b != b'"' || b == b' ' {
            (b as char).to_string()
        } else {
            format!("\\x{b:02x}")
        };
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

impl Refusals {
    /// Count one refusal. Returns `Some(lines held back)` when a log line
    /// about it may be written now (one a second per source).
    pub fn note(&self, r: Refusal<'_>) -> Option<u64> {
        let now = Utc::now();
        let claim = |v: Option<&str>| v.map(|v| truncated(v, CLAIM_BYTES)).unwrap_or_default();
        let mut key = Key {
            source: r.source,
            code: r.code,
            route: truncated(r.route, CLAIM_BYTES),
            subject: truncated(r.subject, CLAIM_BYTES),
            candidate_id: claim(r.claimed.candidate_id),
            application_id: claim(r.claimed.application_id),
        };
        {
            let mut w = self.window.lock().expect("refusals lock");
            if !w.keys.contains_key(&key) {
                if w.made[r.source.index()] >= MAX_KEYS_PER_SOURCE {
                    key = Key {
                        source: r.source,
                        code: r.code,
                        route: OTHER.into(),
                        subject: String::new(),
                        candidate_id: String::new(),
                        application_id: String::new(),
                    };
                } else {
                    w.made[r.source.index()] += 1;
                }
            }
            let t = w.keys.entry(key).or_insert_with(|| Tally {
                count: 0,
                first_seen: now,
                last_seen: now,
                sample_path: truncated(r.path, SAMPLE_BYTES),
                sample_event_id: claim(r.claimed.event_id),
                trace_id: r.trace_id.to_owned(),
            });
            t.count += 1;
            t.last_seen = now;
        }
        self.logs[r.source.index()].admit()
    }

    /// Refusals noted and not yet flushed.
    pub fn pending(&self) -> u64 {
        self.window.lock().expect("refusals lock").keys.values().map(|t| t.count).sum()
    }

    /// Refusals whose aggregate record could not be stored.
    pub fn lost(&self) -> u64 {
        self.lost.load(Relaxed)
    }

    /// The window's records (one per key), leaving a new window.
    pub fn take(&self) -> Vec<DecisionRecord> {
        let keys = std::mem::take(&mut *self.window.lock().expect("refusals lock")).keys;
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let recorded_at = crate::now_rfc3339();
        let mut records: Vec<DecisionRecord> = keys
            .into_iter()
            .map(|(k, t)| {
                let (first, last) = (at(t.first_seen), at(t.last_seen));
                let what = match k.source {
                    Source::OperatorApi => "operator API requests",
                    Source::Webhook => "webhook deliveries",
                };
                let detail = serde_json::json!({
                    "count": t.count,
                    "first_seen": first,
                    "last_seen": last,
                    "source": k.source.as_str(),
                    "sample_path": t.sample_path,
                    "claims_verified": false,
                });
                DecisionRecord {
                    record_id: format!(
                        "{}-{}",
                        if k.source == Source::OperatorApi { "acc" } else { "rej" },
                        uuid::Uuid::new_v4().simple()
                    ),
                    recorded_at: recorded_at.clone(),
                    kind: k.source.kind().into(),
                    candidate_id: k.candidate_id,
                    application_id: k.application_id,
                    event_id: t.sample_event_id,
                    received_at: first.clone(),
                    reason: format!("{} {what} refused ({}) from {first} to {last}", t.count, k.code),
                    write_targets: k.route,
                    processing_result: k.code.into(),
                    override_actor: k.subject,
                    trace_id: t.trace_id,
                    detail: detail.to_string(),
                    ..Default::default()
                }
            })
            .collect();
        records.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        records
    }

    /// Append the window's records (one append through the store's writer);
    /// refusals whose aggregate could not be appended are added to `unlogged`
    /// (`vbridge_api_denials_unlogged_count`).
    pub async fn flush(&self, store: &dyn EventStore, unlogged: &crate::metrics::Counter) {
        let records = self.take();
        if records.is_empty() {
            return;
        }
        let count: u64 = records.iter().map(count_of).sum();
        if let Err(e) = store.append_decisions(records).await {
            self.lost.fetch_add(count, Relaxed);
            unlogged.add(count);
            tracing::error!(error = %e, refusals = count, "could not record a window of refused requests in the audit log");
        }
    }

    /// Flush every `window` until `shutdown`, then once more.
    pub async fn run(
        &self,
        store: &dyn EventStore,
        window: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        unlogged: &crate::metrics::Counter,
    ) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        let stop = async move {
            let _ = shutdown.wait_for(|v| *v).await;
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(store, unlogged).await,
                _ = &mut stop => break,
            }
        }
        self.flush(store, unlogged).await;
    }
}

/// The count an aggregate record carries (`detail.count`).
pub fn count_of(r: &DecisionRecord) -> u64 {
    serde_json::from_str::<serde_json::Value>(&r.detail).ok().and_then(|d| d["count"].as_u64()).unwrap_or(1)
}

/// Lets one log line through per second, and says how many it held back.
#[derive(Default)]
pub struct LogThrottle {
    second: AtomicU64,
    held: AtomicU64,
}

impl LogThrottle {
    /// `Some(lines held back since the last one)` when this one may be logged.
    pub fn admit(&self) -> Option<u64> {
        let now = Utc::now().timestamp() as u64;
        let last = self.second.load(Relaxed);
        if now != last && self.second.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
            Some(self.held.swap(0, Relaxed))
        } else {
            self.held.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_makes_a_line_a_second() {
        let t = LogThrottle::default();
        let admitted: Vec<u64> = (0..10_000).filter_map(|_| t.admit()).collect();
        // The loop may cross one second boundary.
        assert!((1..=2).contains(&admitted.len()), "{admitted:?}");
        assert_eq!(admitted[0], 0);
    }

    fn refusal<'a>(route: &'a str, candidate: &'a str) -> Refusal<'a> {
        Refusal {
            source: Source::Webhook,
            code: "invalid_signature",
            route,
            path: route,
            subject: "",
            claimed: Claimed { candidate_id: Some(candidate), ..Default::default() },
            trace_id: "t",
        }
    }

    #[test]
    fn keys_are_bounded_and_the_rest_is_folded_and_counted() {
        let r = Refusals::default();
        for i in 0..1000 {
            r.note(refusal("POST /webhooks/verification", &format!("cand-{i}")));
        }
        let records = r.take();
        assert_eq!(records.len(), MAX_KEYS_PER_SOURCE + 1, "32 keys and one (other)");
        assert_eq!(records.iter().map(count_of).sum::<u64>(), 1000, "every refusal counted");
        let other = records.iter().find(|r| r.write_targets == OTHER).expect("the (other) key");
        assert_eq!(count_of(other), 1000 - MAX_KEYS_PER_SOURCE as u64);
        assert!(other.candidate_id.is_empty());
        assert!(records.iter().all(|r| r.kind == RecordKind::DeliveriesRefused));
        assert!(r.take().is_empty(), "a new window");
    }

    #[test]
    fn what_is_kept_is_truncated_and_escaped() {
        let r = Refusals::default();
        let path = format!("/v1/candidates/{}\u{1}\"é/timeline", "a".repeat(4096));
        r.note(Refusal {
            source: Source::OperatorApi,
            code: "unauthenticated",
            route: &path,
            path: &path,
            subject: "",
            claimed: Claimed::default(),
            trace_id: "t",
        });
        let rec = &r.take()[0];
        let d: serde_json::Value = serde_json::from_str(&rec.detail).unwrap();
        assert!(d["sample_path"].as_str().unwrap().len() <= SAMPLE_BYTES);
        assert!(rec.write_targets.len() <= CLAIM_BYTES);
        assert_eq!(truncated("a\u{1}\"é b", 100), "a\\x01\\x22\\xc3\\xa9 b");
        assert_eq!(truncated("ab\u{1}", 3), "ab", "an escape is never cut in half");
        assert_eq!(rec.kind, RecordKind::AccessDenied);
        assert_eq!(d["count"], 1);
    }
}
