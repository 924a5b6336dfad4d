//! Per-airline rate limits: a token bucket per airline, refilled continuously at the
//! tunables' `requests_per_second` up to `burst`. A request that finds the bucket
//! empty is answered `429 Too Many Requests` with `Retry-After`, before any work.
//!
//! The buckets live in the broker's memory: with several brokers behind a load
//! balancer each enforces the limit on the requests it sees.

use super::problem::{Problem, ProblemKind};
use crate::policy::tunables::RateLimit;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The buckets, by airline id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one request from `airline`'s bucket, or says how long to wait.
    pub fn admit(&self, airline: &str, limit: &RateLimit, now: Instant) -> Result<(), Problem> {
        let rate = f64::from(limit.requests_per_second);
        let burst = f64::from(limit.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(airline.to_string()).or_insert(Bucket {
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
        let wait = ((1.0 - bucket.tokens) / rate).ceil().clamp(1.0, 3600.0) as u32;
        Err(Problem::new(
            ProblemKind::RateLimited,
            format!(
                "Your airline may make {} requests per second (bursts of {}); retry in {wait} s. \
                 Ask for a whole flight in one request rather than one per traveller.",
                limit.requests_per_second, limit.burst
            ),
        )
        .with_retry_after(wait))
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
        assert_eq!(refused.kind(), ProblemKind::RateLimited);
        assert!(
            limiter.admit("air_2", &limit, t0).is_ok(),
            "buckets are per airline"
        );
        assert!(limiter
            .admit("air_1", &limit, t0 + Duration::from_millis(500))
            .is_ok());
    }
}
