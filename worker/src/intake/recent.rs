//! Idempotency keys this process committed lately, so that a duplicate is
//! answered without a database read. Two generations bound the memory; a key
//! that fell out is still found in the store.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct RecentKeys {
    generations: Mutex<[HashMap<String, (String, String)>; 2]>,
}

const RECENT_KEYS_PER_GENERATION: usize = 50_000;

impl RecentKeys {
    /// (event id, trace id) of the committed delivery holding `key`.
    pub fn get(&self, key: &str) -> Option<(String, String)> {
        let g = self.generations.lock().expect("recent keys lock");
        g[0].get(key).or_else(|| g[1].get(key)).cloned()
    }

    pub fn insert(&self, key: String, event_id: String, trace_id: String) {
        let mut g = self.generations.lock().expect("recent keys lock");
        if g[0].len() >= RECENT_KEYS_PER_GENERATION {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(key, (event_id, trace_id));
    }
}
