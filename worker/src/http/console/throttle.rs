//! The console's login throttle: every login attempt (a token pasted, a
//! sign-in with the issuer started or returning) spends one of its source's
//! [`BURST`] attempts, given back at one per [`REFILL`] (GCRA, the
//! `governor` crate the ATS connectors already use). Past them: 429
//! `rate_limited`, so guessing tokens from one address costs minutes per
//! handful.
//!
//! The source is the peer address of the TCP connection, IPv6 by its /64
//! (one host commonly has the whole /64). Behind a reverse proxy every user
//! shares the proxy's address: the proxy should throttle logins itself (see
//! docs/operations.md). At most [`MAX_SOURCES`] sources are tracked; when
//! more are in the window at once, new sources are refused until it drains
//! (bounded memory beats an open door).

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Attempts one source has at once.
pub const BURST: u32 = 10;
/// How often an attempt is given back.
pub const REFILL: Duration = Duration::from_secs(6);
/// Sources tracked at most.
pub const MAX_SOURCES: usize = 10_000;

pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let quota = Quota::with_period(REFILL)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(BURST).expect("a non-zero burst"));
        LoginThrottle { limiter: RateLimiter::keyed(quota) }
    }
}

/// The key of a source: the address, an IPv6 one by its /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl LoginThrottle {
    /// Spend one attempt of `source`; false: refused (429).
    pub fn attempt(&self, source: IpAddr) -> bool {
        if self.limiter.len() >= MAX_SOURCES {
            self.limiter.retain_recent();
            if self.limiter.len() >= MAX_SOURCES {
                return false;
            }
        }
        self.limiter.check_key(&source_key(source)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_has_its_burst_then_is_refused_and_others_are_not() {
        let t = LoginThrottle::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..BURST {
            assert!(t.attempt(a));
        }
        assert!(!t.attempt(a), "past the burst");
        assert!(t.attempt("192.0.2.2".parse().unwrap()), "another source");
        // One IPv6 host's /64 is one source.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..BURST {
            assert!(t.attempt(v6(&format!("2001:db8::{i:x}"))));
        }
        assert!(!t.attempt(v6("2001:db8::ffff")));
    }
}
