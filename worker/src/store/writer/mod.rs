//! The shared group-commit writer: one task per process that commits whatever
//! is queued in one transaction and one fsync.
//!
//! - **Poison-proof.** An op that fails (a constraint, a value the store
//!   cannot hold, anything the database refuses) fails alone: the group is
//!   rolled back and run again without it, and only its caller gets the error.
//! - **Reconnecting.** A lost connection fails the group as `Unavailable`
//!   (the receiver answers 503 + `Retry-After`); the writer then reconnects
//!   with backoff, answering every op that arrives meanwhile at once, and
//!   resumes.

use super::ops;
use super::run::Run;
use super::{Committed, DeliveryContent, DeliveryRecord, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use vbridge_core::chain::floor::Cut;
use vbridge_core::chain::{self, AuditKey};
use vbridge_proto::DecisionRecord;

mod blame;
mod decisions;
mod deliveries;
mod erase;
mod heads;
mod keycache;
mod retain;

use blame::{Blame, Fail, blame};
use decisions::{Observed, append_decision};
use deliveries::commit_one;
pub use deliveries::delivery_stream;
pub use erase::{Erased, Erasure};
use heads::Heads;
pub(crate) use retain::ChainEntry;
pub use retain::Retention;
use retain::retain;

/// Why one op was not done.
#[derive(Debug, Clone)]
enum OpError {
    Unavailable(String),
    Refused(String),
}

impl From<OpError> for StoreError {
    fn from(e: OpError) -> StoreError {
        match e {
            OpError::Unavailable(m) => StoreError::Unavailable(m),
            OpError::Refused(m) => StoreError::Refused(m),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, OpError>>;

// Nearly every op is a Commit; boxing it would only add an allocation per delivery.
#[allow(clippy::large_enum_variant)]
enum Op {
    Commit(DeliveryRecord, Option<Reply<Committed>>),
    Forwarded(Vec<i64>, Reply<()>),
    Decisions(Vec<DecisionRecord>, Reply<()>),
    Retain {
        cut: Cut,
        reply: Reply<Retention>,
    },
    Erase(Erasure, Reply<Erased>),
    /// A candidate's field key, made when it has none (the edge seals a
    /// human move's note before Temporal sees it).
    Key(String, Reply<vbridge_core::seal::FieldKey>),
    Ping(Reply<()>),
}

/// What one op produced inside a committed group.
enum Done {
    Committed(Committed),
    Nothing,
    Retained(Retention),
    Erased(Erased),
    Key(vbridge_core::seal::FieldKey),
}

impl Op {
    fn answer(self, r: Result<Done, OpError>) {
        match self {
            Op::Commit(_, Some(reply)) => {
                let _ = reply.send(r.map(|d| match d {
                    Done::Committed(c) => c,
                    _ => unreachable!("a commit op yields a commit"),
                }));
            }
            Op::Commit(_, None) => {
                if let Err(e) = r {
                    tracing::warn!(error = ?e, "a deferred delivery row was not recorded");
                }
            }
            Op::Forwarded(_, reply) | Op::Decisions(_, reply) | Op::Ping(reply) => {
                let _ = reply.send(r.map(|_| ()));
            }
            Op::Retain { reply, .. } => {
                let _ = reply.send(r.map(|d| match d {
                    Done::Retained(x) => x,
                    _ => Retention::default(),
                }));
            }
            Op::Erase(_, reply) => {
                let _ = reply.send(r.map(|d| match d {
                    Done::Erased(x) => x,
                    _ => unreachable!("an erase op yields an erasure"),
                }));
            }
            Op::Key(_, reply) => {
                let _ = reply.send(r.map(|d| match d {
                    Done::Key(k) => k,
                    _ => unreachable!("a key op yields a key"),
                }));
            }
        }
    }
}

/// The handle every store uses to reach its writer task.
pub struct Writer {
    tx: mpsc::Sender<Op>,
    /// Rows nobody waits for (duplicates, refused deliveries): written after,
    /// and never ahead of, the rows someone's answer waits on; dropped when
    /// this bounded queue is full.
    later: mpsc::Sender<Op>,
    pub(super) notify: Arc<Notify>,
    /// The audit keys: the first links, all verify.
    keys: chain::Keyring,
}

const MAX_GROUP: usize = 512;
/// Deferred rows a group may carry along with rows that are waited on (a few,
/// so that they never starve), and in a group of their own (a bounded number,
/// so that a backlog never holds up the next waited-on commit for long).
const LATER_WITH_WAITED: usize = 2;
const LATER_ALONE: usize = 32;
const LATER_CAPACITY: usize = 8192;
const RECONNECT_MAX: Duration = Duration::from_secs(5);

impl Writer {
    /// The writer task; `keys`' signing key (if any) links every record.
    pub(super) fn spawn<B: Backend>(backend: B, keys: &chain::Keyring) -> Writer {
        let (tx, rx) = mpsc::channel::<Op>(8192);
        let (later, later_rx) = mpsc::channel::<Op>(LATER_CAPACITY);
        let notify = Arc::new(Notify::new());
        let key = keys.signing().cloned();
        tokio::spawn(writer_loop(backend, rx, later_rx, notify.clone(), key));
        Writer { tx, later, notify, keys: keys.clone() }
    }

    pub(super) fn keys(&self) -> &chain::Keyring {
        &self.keys
    }

    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        let gone = || StoreError::Unavailable("the writer has stopped".into());
        self.tx.send(op(reply)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(StoreError::from)
    }

    pub(super) async fn commit(&self, rec: DeliveryRecord) -> Result<Committed, StoreError> {
        self.call(|reply| Op::Commit(rec, Some(reply))).await
    }

    pub(super) fn record_later(&self, rec: DeliveryRecord) -> bool {
        match self.later.try_send(Op::Commit(rec, None)) {
            Ok(()) => true,
            // Counted by the caller (`vbridge_store_deferred_rows_dropped_count`);
            // a log line per dropped row would let a flood fill the logs.
            Err(_) => false,
        }
    }

    pub(super) async fn mark_forwarded(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.call(|reply| Op::Forwarded(seqs, reply)).await
    }

    pub(super) async fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.call(|reply| Op::Decisions(records, reply)).await
    }

    pub(super) async fn retain(&self, cut: &Cut) -> Result<Retention, StoreError> {
        self.call(|reply| Op::Retain { cut: cut.clone(), reply }).await
    }

    /// Erase a candidate (docs/privacy.md): its key and hiring rows go, and
    /// the chained `erased` record is appended, in one transaction.
    pub(super) async fn erase(&self, e: Erasure) -> Result<Erased, StoreError> {
        self.call(|reply| Op::Erase(e, reply)).await
    }

    pub(super) async fn field_key(&self, candidate: &str) -> Result<vbridge_core::seal::FieldKey, StoreError> {
        self.call(|reply| Op::Key(candidate.to_owned(), reply)).await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.call(Op::Ping).await
    }
}

/// What a backend does its own way inside a group transaction; the
/// statements both share are `super::ops`, run on [`Backend::conn`].
#[async_trait]
pub(crate) trait Backend: Send + 'static {
    type Conn: Run;
    /// The writer's connection.
    fn conn(&mut self) -> &mut Self::Conn;
    async fn begin(&mut self) -> Result<(), sqlx::Error>;
    /// Lock the chain heads of these streams (sorted), where other processes
    /// may write the same streams; the heads, as `(stream, chain_pos, hash)`
    /// (a new chain's at 0 and genesis), when the lock read them.
    async fn lock_streams(&mut self, streams: &[String]) -> Result<Option<Vec<(String, i64, String)>>, sqlx::Error>;
    /// Delete a chain's records up to `upto` (inclusive), and save its
    /// checkpoint, guards lifted for this transaction only. Returns how many
    /// records went.
    async fn cut_prefix(&mut self, cp: &chain::Checkpoint, now: &str) -> Result<u64, sqlx::Error>;
    /// Open a new connection in place of a lost one.
    async fn reconnect(&mut self) -> Result<(), sqlx::Error>;
    /// Housekeeping the writer runs between groups; `quiet` when no commit is
    /// waiting.
    async fn between_groups(&mut self, _quiet: bool) {}
    /// After a group that erased a candidate: leave no copy of the deleted
    /// key in the store's files (SQLite: truncate the WAL).
    async fn after_erase(&mut self) {}
}

pub(crate) struct LinkFields {
    pub stream: String,
    pub chain_pos: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The audit key that made `hash`; empty for a plain hash.
    pub key_id: String,
}

pub(crate) struct ChainedDelivery<'a> {
    pub content: DeliveryContent,
    pub link: LinkFields,
    /// The first commit of its key, for an event the bridge acts on: it
    /// enters the outbox, and its job is kept.
    pub accepted: bool,
    pub job: &'a vbridge_core::canary::Job,
}

fn streams_of<'a>(ops: impl Iterator<Item = &'a Op>) -> Vec<String> {
    let mut streams: Vec<String> = ops
        .flat_map(|op| match op {
            Op::Commit(rec, _) => vec![delivery_stream(rec)],
            Op::Decisions(records, _) => records.iter().map(chain::decision_stream).collect(),
            Op::Erase(..) => vec![chain::ERASURE_STREAM.to_owned()],
            Op::Forwarded(..) | Op::Retain { .. } | Op::Key(..) | Op::Ping(_) => vec![],
        })
        .collect();
    streams.sort();
    streams.dedup();
    streams
}

/// Run the ops of `batch` named by `live` in one transaction; with `bulk`,
/// each run of deliveries is written in one statement per table (see
/// [`deliveries::Bulk`]). On failure: the position in `live` of the op that
/// failed, when one did.
async fn run_group<B: Backend>(
    b: &mut B,
    batch: &[Op],
    live: &[usize],
    key: Option<&AuditKey>,
    cache: &mut keycache::KeyCache,
    bulk: bool,
) -> Result<(Vec<Done>, bool), (Option<usize>, Fail)> {
    b.begin().await.map_err(|e| (None, e.into()))?;
    let locked = b.lock_streams(&streams_of(live.iter().map(|i| &batch[*i]))).await.map_err(|e| (None, e.into()))?;
    let mut heads = Heads::new(key, &*cache);
    let recs: Vec<&DeliveryRecord> = live
        .iter()
        .filter_map(|i| match &batch[*i] {
            Op::Commit(rec, _) => Some(rec),
            _ => None,
        })
        .collect();
    heads.prefetch(b, &recs, locked).await.map_err(|e| (None, e.into()))?;
    let mut forwardable = false;
    let mut observed: Vec<Observed> = vec![];
    let mut done = Vec::with_capacity(live.len());
    let mut pending = bulk.then(deliveries::Bulk::default);
    for (pos, i) in live.iter().enumerate() {
        if let Some(p) = pending.as_mut() {
            let rec = match &batch[*i] {
                Op::Commit(rec, _) => Some(rec),
                _ => None,
            };
            // Any other op sees the deliveries before it written.
            if rec.is_none_or(|rec| p.holds_key_of(rec)) {
                forwardable |= place_written(&mut done, p.flush(b, &mut heads).await.map_err(|e| (None, e))?);
            }
            if let Some(rec) = rec {
                p.add(b, &mut heads, pos, rec).await.map_err(|e| (Some(pos), e))?;
                done.push(Done::Nothing);
                continue;
            }
        }
        let r: Result<Done, Fail> = async {
            Ok(match &batch[*i] {
                Op::Commit(rec, _) => {
                    let c = commit_one(b, &mut heads, rec).await?;
                    forwardable |= matches!(c, Committed::Accepted { .. });
                    Done::Committed(c)
                }
                Op::Forwarded(seqs, _) => {
                    ops::mark_forwarded(b.conn(), seqs, &crate::now_rfc3339()).await?;
                    Done::Nothing
                }
                Op::Decisions(records, _) => {
                    for r in records {
                        observed.extend(append_decision(b, &mut heads, r).await?);
                    }
                    Done::Nothing
                }
                Op::Retain { cut, .. } => Done::Retained(retain(b, &mut heads, cut).await?),
                Op::Erase(e, _) => {
                    let (record, erased) = erase::erase(b, e).await?;
                    heads.field_keys.erased(&e.candidate_id);
                    append_decision(b, &mut heads, &record).await?;
                    Done::Erased(erased)
                }
                Op::Key(candidate, _) => Done::Key(heads.field_keys.get(b, heads.cache, candidate).await?),
                Op::Ping(_) => Done::Nothing,
            })
        }
        .await;
        done.push(r.map_err(|e| (Some(pos), e))?);
    }
    if let Some(p) = pending.as_mut() {
        forwardable |= place_written(&mut done, p.flush(b, &mut heads).await.map_err(|e| (None, e))?);
    }
    let bulk_written = pending.is_some_and(|p| p.wrote_any());
    let moved: Vec<(&str, i64, &str)> =
        heads.staged.iter().map(|(stream, (pos, hash))| (stream.as_str(), *pos, hash.as_str())).collect();
    ops::set_heads(b.conn(), &moved).await.map_err(|e| (None, e.into()))?;
    ops::commit(b.conn()).await.map_err(|e| (None, e.into()))?;
    let keys = std::mem::take(&mut heads.field_keys);
    drop(heads);
    cache.committed(keys);
    if bulk_written {
        crate::metrics::STORE_BULK_GROUPS.inc();
    }
    // Observed once the records are stored (a group that failed is retried).
    observed.into_iter().for_each(Observed::count);
    Ok((done, forwardable))
}

/// Put the deliveries written in bulk in their places among a group's
/// outcomes; whether any is forwardable.
fn place_written(done: &mut [Done], written: Vec<(usize, Committed)>) -> bool {
    let mut forwardable = false;
    for (pos, c) in written {
        forwardable |= matches!(c, Committed::Accepted { .. });
        done[pos] = Done::Committed(c);
    }
    forwardable
}

/// Commit a batch, retrying it without each op the database refuses.
/// Returns each op's outcome, whether anything forwardable was committed,
/// and whether the connection was lost.
async fn commit_group<B: Backend>(
    b: &mut B,
    batch: &[Op],
    key: Option<&AuditKey>,
    cache: &mut keycache::KeyCache,
) -> (Vec<Result<Done, OpError>>, bool, bool) {
    let mut answers: Vec<Option<Result<Done, OpError>>> = batch.iter().map(|_| None).collect();
    let mut live: Vec<usize> = (0..batch.len()).collect();
    let mut forwardable = false;
    let mut lost = false;
    // Ops run alone after a failure no op could be blamed for.
    let mut alone: Vec<usize> = vec![];
    // Deliveries in bulk, until anything fails: then one by one, which
    // tells which op failed, and where a delivery that lost a race for its
    // key decides again.
    let mut bulk = true;
    while !live.is_empty() || !alone.is_empty() {
        let group: Vec<usize> = if live.is_empty() { vec![alone.remove(0)] } else { live.clone() };
        match run_group(b, batch, &group, key, cache, bulk && group.len() > 1).await {
            Ok((done, f)) => {
                forwardable |= f;
                for (i, d) in group.iter().zip(done) {
                    answers[*i] = Some(Ok(d));
                }
                if !live.is_empty() {
                    live.clear();
                }
            }
            Err((at, fail)) => {
                ops::rollback(b.conn()).await;
                let how = blame(&fail);
                if bulk && group.len() > 1 && how != Blame::Connection {
                    tracing::debug!(error = %fail, ops = group.len(), "a group in bulk failed; running it one by one");
                    crate::metrics::STORE_BULK_FALLBACKS.inc();
                    bulk = false;
                    continue;
                }
                tracing::warn!(error = %fail, blame = ?how, ops = group.len(), "event store group failed");
                match (how, at) {
                    (Blame::Connection, _) => {
                        lost = true;
                        for i in live.drain(..).chain(alone.drain(..)) {
                            answers[i] = Some(Err(OpError::Unavailable(fail.to_string())));
                        }
                        for i in group {
                            answers[i] = Some(Err(OpError::Unavailable(fail.to_string())));
                        }
                    }
                    (Blame::Op, Some(pos)) => {
                        let i = group[pos];
                        answers[i] = Some(Err(OpError::Refused(fail.to_string())));
                        if live.is_empty() {
                            continue; // it was running alone
                        }
                        live.remove(pos);
                    }
                    (Blame::Op, None) if group.len() > 1 => {
                        // Nothing to blame in particular: run each op alone.
                        alone.append(&mut live);
                    }
                    (Blame::Op, None) => {
                        answers[group[0]] = Some(Err(OpError::Refused(fail.to_string())));
                        live.clear();
                    }
                    (_, _) => {
                        for i in group {
                            answers[i] = Some(Err(OpError::Unavailable(fail.to_string())));
                        }
                        if !live.is_empty() {
                            live.clear();
                        }
                    }
                }
            }
        }
    }
    let answers =
        answers.into_iter().map(|a| a.unwrap_or_else(|| Err(OpError::Unavailable("not run".into())))).collect();
    (answers, forwardable, lost)
}

/// Reconnect with backoff. Every waited-on op that arrives meanwhile is
/// answered `Unavailable` at once; deferred rows wait in their queue.
async fn reconnect<B: Backend>(b: &mut B, rx: &mut mpsc::Receiver<Op>) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match tokio::time::timeout(RECONNECT_MAX, b.reconnect()).await {
            Ok(Ok(())) => {
                tracing::info!("event store writer reconnected");
                return true;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event store reconnect failed")
            }
            Err(_) => tracing::warn!("event store reconnect timed out"),
        }
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                op = rx.recv() => match op {
                    Some(op) => op.answer(Err(OpError::Unavailable("the event store connection was lost; reconnecting".into()))),
                    None => return false,
                },
            }
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

async fn writer_loop<B: Backend>(
    mut b: B,
    mut rx: mpsc::Receiver<Op>,
    mut later: mpsc::Receiver<Op>,
    notify: Arc<Notify>,
    key: Option<AuditKey>,
) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    let mut cache = keycache::KeyCache::default();
    loop {
        b.between_groups(rx.is_empty()).await;
        let first = tokio::select! {
            biased;
            op = rx.recv() => op,
            op = later.recv() => op,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let waited_on = batch.iter().any(|op| !matches!(op, Op::Commit(_, None)));
        let room = if waited_on { LATER_WITH_WAITED } else { LATER_ALONE.saturating_sub(batch.len()) };
        for _ in 0..room.min(MAX_GROUP.saturating_sub(batch.len())) {
            match later.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (answers, forwardable, lost) = commit_group(&mut b, &batch, key.as_ref(), &mut cache).await;
        if forwardable {
            notify.notify_one();
        }
        if !lost && batch.iter().any(|op| matches!(op, Op::Erase(..))) {
            b.after_erase().await;
        }
        for (op, r) in batch.drain(..).zip(answers) {
            op.answer(r);
        }
        if lost && !reconnect(&mut b, &mut rx).await {
            break;
        }
    }
}
