//! What a group transaction knows of the chains and keys it touches: the
//! heads it moved (staged until the commit), what it read ahead for its
//! deliveries, and the candidates' field keys.

use super::{Backend, LinkFields, delivery_stream, keycache};
use crate::store::{DeliveryRecord, Intent, Original, ops};
use std::collections::HashMap;
use vbridge_core::chain::{self, AuditKey};

/// Chain heads touched by the current group, the key that links, and the
/// candidates' field keys read in this group (never kept past it: a key
/// made in a group that rolls back was never stored).
pub(super) struct Heads<'k> {
    pub(super) staged: HashMap<String, (i64, String)>,
    key: Option<&'k AuditKey>,
    pub(super) field_keys: keycache::GroupKeys,
    pub(super) cache: &'k keycache::KeyCache,
    /// Read ahead for the group's deliveries ([`Heads::prefetch`]): heads
    /// (None: a new chain) and keys' first commits (None: a fresh key), each
    /// taken once; a second look reads the store.
    heads_read: HashMap<String, Option<(i64, String)>>,
    originals: HashMap<String, Option<Original>>,
}

impl<'k> Heads<'k> {
    pub(super) fn new(key: Option<&'k AuditKey>, cache: &'k keycache::KeyCache) -> Heads<'k> {
        Heads {
            staged: HashMap::new(),
            key,
            field_keys: Default::default(),
            cache,
            heads_read: HashMap::new(),
            originals: HashMap::new(),
        }
    }

    /// Read in one statement each what the group's deliveries would read one
    /// by one: their keys' first commits, their chains' heads, their
    /// candidates' field keys. A statement is a round trip on Postgres, and
    /// these were most of a delivery's (the bench's run L). The group holds
    /// its streams' locks, so a head read here cannot move; a key another
    /// process commits meanwhile makes the insert lose its race, and the
    /// delivery decides again after reading it (as before).
    /// `locked`: the heads the group's lock read already (Postgres), for
    /// every stream of the group.
    pub(super) async fn prefetch<B: Backend>(
        &mut self,
        b: &mut B,
        recs: &[&DeliveryRecord],
        locked: Option<Vec<(String, i64, String)>>,
    ) -> Result<(), sqlx::Error> {
        let keys: Vec<&str> =
            recs.iter().filter(|r| r.intent != Intent::Rejected).filter_map(|r| r.idempotency_key.as_deref()).collect();
        let streams: Vec<String> = recs.iter().map(|r| delivery_stream(r)).collect();
        let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
        let candidates: Vec<&str> =
            recs.iter().filter(|r| r.payload.is_some()).filter_map(|r| r.candidate_id.as_deref()).collect();
        self.originals = keys.iter().map(|k| ((*k).to_owned(), None)).collect();
        for (key, original) in ops::find_keys(b.conn(), &keys).await? {
            self.originals.insert(key, Some(original));
        }
        self.heads_read = streams.iter().map(|s| ((*s).to_owned(), None)).collect();
        let heads = match locked {
            Some(heads) => heads,
            None => ops::heads_of(b.conn(), &streams).await?,
        };
        // A new chain's head reads (0, genesis): its first link is at 1 either way.
        for (stream, pos, hash) in heads {
            self.heads_read.insert(stream, Some((pos, hash)));
        }
        self.field_keys.prefetch(b, self.cache, &candidates).await
    }

    /// What `key` points to: read ahead once, else read now.
    pub(super) async fn original<B: Backend>(&mut self, b: &mut B, key: &str) -> Result<Option<Original>, sqlx::Error> {
        match self.originals.remove(key) {
            Some(read) => Ok(read),
            None => ops::find_key(b.conn(), key).await,
        }
    }

    /// Seal `text` under `candidate`'s field key (made when it has none).
    pub(super) async fn seal<B: Backend>(
        &mut self,
        b: &mut B,
        candidate: &str,
        text: &str,
    ) -> Result<String, sqlx::Error> {
        let k = self.field_keys.get(b, self.cache, candidate).await?;
        crate::store::keys::seal_text(&k, candidate, text)
    }

    pub(super) async fn next<B: Backend>(&mut self, b: &mut B, stream: &str) -> Result<(i64, String), sqlx::Error> {
        if let Some(h) = self.staged.get(stream) {
            return Ok((h.0 + 1, h.1.clone()));
        }
        let head = match self.heads_read.remove(stream) {
            Some(read) => read,
            None => ops::head(b.conn(), stream).await?,
        };
        Ok(match head {
            Some((pos, hash)) => (pos + 1, hash),
            None => (1, chain::GENESIS.to_owned()),
        })
    }

    pub(super) fn link<T: serde::Serialize>(&mut self, stream: &str, next: (i64, String), record: &T) -> LinkFields {
        let (pos, prev) = next;
        let (key_id, hash) = chain::make_link(self.key, stream, pos, &prev, record);
        self.staged.insert(stream.to_owned(), (pos, hash.clone()));
        LinkFields { stream: stream.to_owned(), chain_pos: pos, prev_hash: prev, hash, key_id }
    }
}
