//! Client-side rate limits, so that the bridge stays under an ATS's limit
//! instead of learning it from 429s. A `governor` GCRA limiter (a maintained
//! crate, lock-free, with burst and steady rate in one quota) paces requests;
//! the ATS's own headers adjust it:
//! - `X-RateLimit-Limit` (requests per window; Harvest v3: per 30 s) sets the
//!   quota: half of it as a burst, the rest spread over the window, so no
//!   window of that length sees more than the limit;
//! - `X-RateLimit-Remaining: 0` holds every request until `X-RateLimit-Reset`
//!   (else one window);
//! - a 429 holds every request for its `Retry-After`.
//!
//! A limiter is per process: with several workers, each stays under the
//! limit the ATS reports, and the `Remaining`/429 holds are the shared brake
//! (docs/connectors.md).

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Limiter {
    window: Duration,
    /// Follow the ATS's `X-RateLimit-*` headers (else the quota is fixed).
    adaptive: bool,
    state: Mutex<State>,
}

struct State {
    limit: u32,
    governor: Arc<DefaultDirectRateLimiter>,
    hold_until: Option<Instant>,
}

/// `limit` requests per `window`: a burst of half, the rest spread evenly.
fn quota(limit: u32, window: Duration) -> Quota {
    let limit = limit.max(1);
    let burst = (limit / 2).max(1);
    let spread = (limit - burst).max(1);
    let period = (window / spread).max(Duration::from_millis(1));
    Quota::with_period(period).expect("a positive period").allow_burst(NonZeroU32::new(burst).expect("burst >= 1"))
}

impl Limiter {
    /// A fixed rate with a burst (Lever: 10 req/s, bursts to 20).
    pub fn fixed(per_second: u32, burst: u32) -> Limiter {
        let q = Quota::per_second(NonZeroU32::new(per_second.max(1)).expect(">= 1"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect(">= 1"));
        Limiter {
            window: Duration::from_secs(1),
            adaptive: false,
            state: Mutex::new(State { limit: burst, governor: Arc::new(RateLimiter::direct(q)), hold_until: None }),
        }
    }

    /// Start at `limit` per `window` and follow the ATS's headers.
    pub fn adaptive(limit: u32, window: Duration) -> Limiter {
        Limiter {
            window,
            adaptive: true,
            state: Mutex::new(State {
                limit,
                governor: Arc::new(RateLimiter::direct(quota(limit, window))),
                hold_until: None,
            }),
        }
    }

    /// The limit per window the limiter paces to now.
    pub fn limit(&self) -> u32 {
        self.state.lock().unwrap().limit
    }

    /// Wait for a slot, at most `max`; `Err(wait)` when the wait would be
    /// longer (the caller retries the write later rather than holding an
    /// activity slot).
    pub async fn acquire(&self, max: Duration) -> Result<(), Duration> {
        let deadline = Instant::now() + max;
        let (governor, hold) = {
            let s = self.state.lock().unwrap();
            (s.governor.clone(), s.hold_until)
        };
        if let Some(until) = hold.filter(|u| *u > Instant::now()) {
            if until > deadline {
                return Err(until - Instant::now());
            }
            tokio::time::sleep_until(until.into()).await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, governor.until_ready()).await {
            Ok(()) => Ok(()),
            Err(_) => Err((self.window / self.limit().max(1)).max(Duration::from_millis(100))),
        }
    }

    /// Learn from an answer's headers (and its status: a 429 holds everyone).
    pub fn observe(&self, status: u16, headers: &reqwest::header::HeaderMap) {
        let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let mut s = self.state.lock().unwrap();
        if self.adaptive
            && let Some(limit) = num("x-ratelimit-limit").map(|l| l.clamp(1, u32::MAX as u64) as u32)
            && limit != s.limit
        {
            tracing::info!(limit, window_ms = self.window.as_millis() as u64, "ATS rate limit learned");
            s.limit = limit;
            s.governor = Arc::new(RateLimiter::direct(quota(limit, self.window)));
        }
        let exhausted = self.adaptive && num("x-ratelimit-remaining") == Some(0);
        if status == 429 || exhausted {
            let d = super::throttled_for(headers).unwrap_or(self.window);
            let until = Instant::now() + d;
            s.hold_until = Some(s.hold_until.map_or(until, |u| u.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_never_lets_a_window_see_more_than_the_limit() {
        for limit in [1u32, 2, 5, 10, 50, 100] {
            let window = Duration::from_secs(10);
            let q = quota(limit, window);
            let burst = q.burst_size().get();
            // In any window: the burst, plus what replenishes during it.
            let refills = (window.as_nanos() / q.replenish_interval().as_nanos()) as u32;
            assert!(burst + refills <= limit.max(2), "limit {limit}: burst {burst} + {refills}");
            assert!(burst + refills >= limit / 2, "limit {limit}: paced far below the limit");
        }
    }

    #[tokio::test]
    async fn headers_adjust_the_pace_and_holds_stop_everyone() {
        let l = Limiter::adaptive(50, Duration::from_secs(10));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ratelimit-limit", "4".parse().unwrap());
        h.insert("x-ratelimit-remaining", "3".parse().unwrap());
        l.observe(200, &h);
        assert_eq!(l.limit(), 4);
        // A burst of 2, then one slot per 5 s: the third waits too long.
        assert!(l.acquire(Duration::from_millis(10)).await.is_ok());
        assert!(l.acquire(Duration::from_millis(10)).await.is_ok());
        assert!(l.acquire(Duration::from_millis(10)).await.is_err());
        // A 429 holds every request for its Retry-After.
        let l = Limiter::adaptive(50, Duration::from_secs(10));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "30".parse().unwrap());
        l.observe(429, &h);
        let wait = l.acquire(Duration::from_millis(10)).await.unwrap_err();
        assert!(wait > Duration::from_secs(25), "{wait:?}");
    }
}
