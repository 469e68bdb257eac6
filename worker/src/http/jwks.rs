//! The issuer's key set (`VBRIDGE_OIDC_JWKS_URL`), cached so that neither a
//! slow issuer nor a flood of made-up key ids can stall or hammer anything:
//!
//! - **single flight**: one fetch at a time, in a task of its own; every
//!   request that needs it waits on that one fetch (a shared future), and no
//!   lock is held across the network call (the state's lock is a plain mutex
//!   taken for a few lookups, never across an `.await`);
//! - **bounded**: a fetch ends within [`FETCH_TIMEOUT`]; the document is read
//!   up to [`MAX_JWKS_BYTES`];
//! - **failures are remembered**: after a failed fetch the next one waits a
//!   backoff (2 s, doubling to 30 s); meanwhile requests that need a fetch
//!   are answered at once from the remembered failure (503);
//! - **unknown key ids are remembered** for [`UNKNOWN_KID_TTL`] (at most
//!   [`MAX_UNKNOWN_KIDS`] of them), and the set is fetched again for a key
//!   it lacks at most once per [`REFETCH_AFTER`]: a flood of made-up key ids
//!   costs at most one fetch per window.
//!
//! The fetch task finishes (and its outcome is remembered) even when the
//! requests that waited on it gave up (the request timeout).

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The soonest the key set is fetched again, for a key it lacks, after a fetch.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait after a first failed fetch; it doubles with each failure after.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a key id the set lacked is answered "unknown" without a fetch.
pub const UNKNOWN_KID_TTL: Duration = Duration::from_secs(300);
/// The most unknown key ids remembered.
pub const MAX_UNKNOWN_KIDS: usize = 1024;
/// The largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why no key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The issuer's set (fetched, or held and fresh) has no such key.
    Unknown,
    /// The set cannot be fetched now (a fetch failed; the next waits a backoff).
    Unavailable(String),
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<JwkSet>, String>>>;

struct Failure {
    until: Instant,
    backoff: Duration,
    error: String,
}

#[derive(Default)]
struct State {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
    failure: Option<Failure>,
    unknown: HashMap<String, Instant>,
    in_flight: Option<Fetch>,
}

impl State {
    fn remember_unknown(&mut self, kid: &str, now: Instant) {
        if self.unknown.len() >= MAX_UNKNOWN_KIDS {
            self.unknown.retain(|_, at| now.duration_since(*at) < UNKNOWN_KID_TTL);
        }
        // Still full: not remembered; the refetch window bounds fetches anyway.
        if self.unknown.len() < MAX_UNKNOWN_KIDS {
            self.unknown.insert(kid.to_owned(), now);
        }
    }
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    timeout: Duration,
    state: Arc<Mutex<State>>,
}

fn find<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    match kid {
        Some(k) => set.find(k),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}

impl Jwks {
    pub fn new(url: String, timeout: Duration) -> Jwks {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("building the HTTP client");
        Jwks { url, client, timeout, state: Default::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key a token names (by `kid`; without one, the set's only key).
    pub async fn key(&self, kid: Option<&str>) -> Result<Jwk, Missing> {
        let name = kid.unwrap_or("");
        let mut fetched = false;
        loop {
            let fetch = {
                let mut s = self.lock();
                let now = Instant::now();
                if let Some(jwk) = s.set.as_deref().and_then(|set| find(set, kid)) {
                    return Ok(jwk.clone());
                }
                if fetched {
                    s.remember_unknown(name, now);
                    return Err(Missing::Unknown);
                }
                if s.unknown.get(name).is_some_and(|at| now.duration_since(*at) < UNKNOWN_KID_TTL) {
                    return Err(Missing::Unknown);
                }
                if let Some(f) = s.failure.as_ref().filter(|f| now < f.until) {
                    return Err(Missing::Unavailable(f.error.clone()));
                }
                if s.fetched_at.is_some_and(|at| now.duration_since(at) < REFETCH_AFTER) {
                    s.remember_unknown(name, now);
                    return Err(Missing::Unknown);
                }
                match &s.in_flight {
                    Some(f) => f.clone(),
                    None => self.start(&mut s),
                }
            };
            fetch.await.map_err(Missing::Unavailable)?;
            fetched = true;
        }
    }

    /// Start the one fetch, in a task of its own (it outlives the requests
    /// waiting on it), which records its outcome.
    fn start(&self, s: &mut State) -> Fetch {
        let (client, url, timeout, state) = (self.client.clone(), self.url.clone(), self.timeout, self.state.clone());
        let task = tokio::spawn(async move {
            let outcome = match tokio::time::timeout(timeout, fetch(&client, &url)).await {
                Ok(r) => r.map(Arc::new),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            s.in_flight = None;
            match &outcome {
                Ok(set) => {
                    s.set = Some(set.clone());
                    s.fetched_at = Some(now);
                    s.failure = None;
                    s.unknown.clear();
                }
                Err(error) => {
                    let backoff = s.failure.as_ref().map_or(BACKOFF_FIRST, |f| (f.backoff * 2).min(BACKOFF_MAX));
                    tracing::warn!(%error, retry_in = ?backoff, "the issuer's key set could not be fetched");
                    s.failure = Some(Failure { until: now + backoff, backoff, error: error.clone() });
                }
            }
            outcome
        });
        let f: Fetch =
            async move { task.await.unwrap_or_else(|e| Err(format!("the fetch task failed: {e}"))) }.boxed().shared();
        s.in_flight = Some(f.clone());
        f
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<JwkSet, String> {
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("the key set is over {MAX_JWKS_BYTES} bytes"));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("not a JWKS document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server that accepts connections and never answers; how many it took.
    async fn silent_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(sock);
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn a_silent_issuer_gets_one_fetch_and_its_failure_is_remembered() {
        let (url, accepted) = silent_server().await;
        let timeout = Duration::from_millis(500);
        let jwks = Arc::new(Jwks::new(url, timeout));
        let start = Instant::now();
        let calls: Vec<_> = (0..40)
            .map(|i| {
                let jwks = jwks.clone();
                tokio::spawn(async move { jwks.key(Some(&format!("made-up-{i}"))).await })
            })
            .collect();
        for c in calls {
            assert!(matches!(c.await.unwrap(), Err(Missing::Unavailable(_))));
        }
        assert!(start.elapsed() < timeout * 4, "answered within about the fetch timeout: {:?}", start.elapsed());
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one fetch for 40 requests");
        // Within the backoff: answered at once, no new connection.
        let again = Instant::now();
        for i in 0..40 {
            assert!(matches!(jwks.key(Some(&format!("more-{i}"))).await, Err(Missing::Unavailable(_))));
        }
        assert!(again.elapsed() < Duration::from_millis(200), "{:?}", again.elapsed());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn made_up_key_ids_cost_one_fetch_per_window() {
        let jwks_json =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/oidc/jwks.json")).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = jwks_json.clone();
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let jwks = Jwks::new(url, FETCH_TIMEOUT);
        assert!(jwks.key(Some("it-key-1")).await.is_ok());
        for i in 0..100 {
            assert_eq!(jwks.key(Some(&format!("rogue-{i}"))).await.unwrap_err(), Missing::Unknown);
        }
        assert!(jwks.key(Some("it-key-1")).await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the refetch window holds");
        // Past the window, a kid already found unknown is still not fetched for.
        jwks.lock().fetched_at = Some(Instant::now() - REFETCH_AFTER);
        assert_eq!(jwks.key(Some("rogue-1")).await.unwrap_err(), Missing::Unknown);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "remembered as unknown");
        assert_eq!(jwks.key(Some("rogue-new")).await.unwrap_err(), Missing::Unknown);
        assert_eq!(hits.load(Ordering::SeqCst), 2, "a new kid past the window: one fetch");
    }
}
