//! Rate limits, as token buckets refilled continuously up to a burst. A request that
//! finds its bucket empty is answered `429 Too Many Requests` with `Retry-After`,
//! before any work.
//!
//! - Per airline, over every airline route (`rate_limit` in the tunables).
//! - Per client address, over the routes that need no API key: a traveller's code
//!   (`/v1/withdrawals`, `/v1/traveller/uses`, the traveller's page) and the pages'
//!   sign-in (`public_rate_limit`), so that codes and keys cannot be guessed at speed.
//!   IPv6 clients are counted per /64, which one host usually holds whole.
//!
//! The buckets live in the broker's memory: with several brokers behind a load
//! balancer each enforces the limit on the requests it sees. Their number is capped:
//! buckets that have refilled are forgotten first (a full bucket is the same as none),
//! and past the cap a new client is refused until some have.

use crate::policy::tunables::{PublicRateLimit, RateLimit};
use crate::service::{Error, ErrorKind};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most client addresses tracked at once.
pub const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, at most `capacity` of them.
#[derive(Debug)]
struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(capacity: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Takes one token from `key`'s bucket (`rate` per second, up to `burst`), or
    /// says how many seconds to wait.
    fn take(&self, key: &K, rate: f64, burst: f64, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            let refilled = |b: &Bucket| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate >= burst
            };
            buckets.retain(|_, b| !refilled(b));
            if buckets.len() >= self.capacity {
                return Err(60);
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(((1.0 - bucket.tokens) / rate).ceil().clamp(1.0, 3600.0) as u32)
    }
}

/// The per-airline buckets.
#[derive(Debug)]
pub struct RateLimiter {
    airlines: Buckets<String>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            airlines: Buckets::new(usize::MAX),
        }
    }
}

impl RateLimiter {
    /// Takes one request from `airline`'s bucket, or says how long to wait.
    pub fn admit(&self, airline: &str, limit: &RateLimit, now: Instant) -> Result<(), Error> {
        let rate = f64::from(limit.requests_per_second);
        let burst = f64::from(limit.burst);
        self.airlines
            .take(&airline.to_string(), rate, burst, now)
            .map_err(|wait| {
                Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Your airline may make {} requests per second (bursts of {}); retry in {wait} s. \
                         Ask for a whole flight in one request rather than one per traveller.",
                        limit.requests_per_second, limit.burst
                    ),
                )
                .with_retry_after(wait)
            })
    }
}

/// The per-address buckets of the routes that need no API key.
#[derive(Debug)]
pub struct PublicLimiter {
    addresses: Buckets<IpAddr>,
}

impl Default for PublicLimiter {
    fn default() -> Self {
        Self {
            addresses: Buckets::new(MAX_ADDRESSES),
        }
    }
}

impl PublicLimiter {
    /// Takes one request from the client address's bucket, or says how long to wait.
    pub fn admit(
        &self,
        client: IpAddr,
        limit: &PublicRateLimit,
        now: Instant,
    ) -> Result<(), Error> {
        let rate = f64::from(limit.requests_per_minute) / 60.0;
        let burst = f64::from(limit.burst);
        self.addresses
            .take(&counted_as(client), rate, burst, now)
            .map_err(|wait| {
                Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Too many requests from your address ({} a minute, bursts of {}); retry in {wait} s.",
                        limit.requests_per_minute, limit.burst
                    ),
                )
                .with_retry_after(wait)
            })
    }
}

/// The address a client is counted under: itself for IPv4, its /64 for IPv6.
fn counted_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate_applies() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            requests_per_second: 2,
            burst: 3,
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit("air_1", &limit, t0).is_ok());
        }
        let refused = limiter.admit("air_1", &limit, t0).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::RateLimited);
        assert!(
            limiter.admit("air_2", &limit, t0).is_ok(),
            "buckets are per airline"
        );
        assert!(limiter
            .admit("air_1", &limit, t0 + Duration::from_millis(500))
            .is_ok());
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_one_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(counted_as(a), counted_as(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(counted_as(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_buckets_stay_within_their_cap_forgetting_refilled_ones_first() {
        let buckets: Buckets<u32> = Buckets::new(2);
        let t0 = Instant::now();
        assert!(buckets.take(&1, 1.0, 1.0, t0).is_ok());
        assert!(buckets.take(&2, 1.0, 1.0, t0).is_ok());
        assert!(
            buckets.take(&3, 1.0, 1.0, t0).is_err(),
            "full, none refilled"
        );
        let later = t0 + Duration::from_secs(2);
        assert!(
            buckets.take(&3, 1.0, 1.0, later).is_ok(),
            "refilled ones go"
        );
        assert!(buckets.buckets.lock().unwrap().len() <= 2);
    }
}
