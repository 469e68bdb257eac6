//! The candidates' field keys as the writer reads them (docs/privacy.md):
//! a group's own (read or made inside its transaction) and, across groups,
//! a bounded cache of keys from committed groups, so that a candidate's
//! later deliveries cost no read of `candidate_keys` (the bench measured the
//! extra statements at a third of the ack throughput).
//!
//! An erasure in this process removes its key from the cache in the group
//! that erases. An erasure by another process (a second instance, `vbridge
//! erase`) is seen when the entry expires ([`TTL`]): until then a delivery
//! of that candidate is sealed under the destroyed key, and so is as erased
//! as the rest of the candidate's data.

use super::Backend;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use vbridge_core::seal::FieldKey;

/// How long a cached key is used without reading it again.
pub(super) const TTL: Duration = Duration::from_secs(60);
/// The most keys cached; past it the cache starts over.
const MAX_CACHED: usize = 16_384;

/// Keys of committed groups, by candidate.
#[derive(Default)]
pub(super) struct KeyCache(HashMap<String, (FieldKey, Instant)>);

impl KeyCache {
    fn get(&self, candidate: &str) -> Option<&FieldKey> {
        self.0.get(candidate).filter(|(_, at)| at.elapsed() < TTL).map(|(k, _)| k)
    }

    /// After a group committed: forget the keys it destroyed, keep the ones
    /// it read or made.
    pub(super) fn committed(&mut self, group: GroupKeys) {
        for c in &group.erased {
            self.0.remove(c);
        }
        if self.0.len() + group.keys.len() > MAX_CACHED {
            self.0.clear();
        }
        let now = Instant::now();
        for (c, k) in group.keys {
            self.0.entry(c).or_insert((k, now));
        }
    }
}

/// One group's keys: never kept past a group that rolls back (a key made in
/// it was never stored).
#[derive(Default)]
pub(super) struct GroupKeys {
    keys: HashMap<String, FieldKey>,
    /// Candidates erased in this group: the cache's key is no longer theirs.
    erased: HashSet<String>,
    /// Candidates the group's prefetch read to have no key: made without
    /// reading again.
    absent: HashSet<String>,
    /// While set, a key made for an absent candidate is only made in memory
    /// and kept in `made` until [`GroupKeys::store_made`] (the group's rows
    /// go in one statement per table).
    pub(super) defer: bool,
    made: Vec<(String, String)>,
}

impl GroupKeys {
    /// `candidate`'s key: the group's, the cache's, or the store's (made
    /// when it has none).
    pub(super) async fn get<B: Backend>(
        &mut self,
        b: &mut B,
        cache: &KeyCache,
        candidate: &str,
    ) -> Result<FieldKey, sqlx::Error> {
        if let Some(k) = self.keys.get(candidate) {
            return Ok(k.clone());
        }
        let cached = if self.erased.contains(candidate) { None } else { cache.get(candidate).cloned() };
        let k = match cached {
            Some(k) => k,
            None if self.defer && self.absent.remove(candidate) => {
                let (k, hex) = crate::store::keys::fresh()?;
                self.made.push((candidate.to_owned(), hex));
                k
            }
            None if self.absent.remove(candidate) => crate::store::keys::make(b.conn(), candidate).await?,
            None => crate::store::keys::field_key(b.conn(), candidate).await?,
        };
        self.keys.insert(candidate.to_owned(), k.clone());
        Ok(k)
    }

    /// Read, in one statement, the keys of the `candidates` neither this
    /// group nor the cache holds: those found are the group's, the others
    /// are made on first use without reading again.
    pub(super) async fn prefetch<B: Backend>(
        &mut self,
        b: &mut B,
        cache: &KeyCache,
        candidates: &[&str],
    ) -> Result<(), sqlx::Error> {
        let mut wanted: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| !self.keys.contains_key(*c) && (self.erased.contains(*c) || cache.get(c).is_none()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let found = crate::store::keys::existing_of(b.conn(), &wanted).await?;
        for c in wanted {
            self.absent.insert(c.to_owned());
        }
        for (c, k) in found {
            self.absent.remove(&c);
            self.keys.insert(c, k);
        }
        Ok(())
    }

    /// Store the keys made in memory, in one statement: false when another
    /// connection made one of them first (the group must not commit).
    pub(super) async fn store_made<B: Backend>(&mut self, b: &mut B) -> Result<bool, sqlx::Error> {
        let made = std::mem::take(&mut self.made);
        crate::store::keys::put_made(b.conn(), &made).await
    }

    pub(super) fn erased(&mut self, candidate: &str) {
        self.keys.remove(candidate);
        self.absent.remove(candidate);
        self.erased.insert(candidate.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> FieldKey {
        FieldKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn a_committed_groups_keys_are_cached_and_its_erasures_forgotten() {
        let mut cache = KeyCache::default();
        let mut g = GroupKeys::default();
        g.keys.insert("a".into(), key(1));
        g.keys.insert("b".into(), key(2));
        cache.committed(g);
        assert_eq!((cache.get("a"), cache.get("b")), (Some(&key(1)), Some(&key(2))));
        let mut g = GroupKeys::default();
        g.erased("a");
        cache.committed(g);
        assert_eq!(cache.get("a"), None, "erased in this process: never used again");
        // An erased candidate's new key, made later in the same group, is cached.
        let mut g = GroupKeys::default();
        g.erased("b");
        g.keys.insert("b".into(), key(3));
        cache.committed(g);
        assert_eq!(cache.get("b"), Some(&key(3)));
        // Expired entries are read again.
        cache.0.insert("c".into(), (key(4), Instant::now() - TTL - Duration::from_secs(1)));
        assert_eq!(cache.get("c"), None);
    }
}
