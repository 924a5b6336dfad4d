//! Rate limits, as token buckets refilled continuously up to a burst. A request that
//! finds its bucket empty is answered `429 Too Many Requests` with `Retry-After`.
//!
//! - Per airline, two budgets (`rate_limit` in the tunables). **Asks**: the travellers
//!   its token requests cover, one for a traveller's token and every traveller on the
//!   flight for a flight's, taken before the request is decided. **Refused uses**: the
//!   uses of tokens that only a faulty or hostile client makes (an unknown token,
//!   another airline's, one used up or expired, a reveal of a relay-only token, a
//!   channel not covered), taken once such a use is refused; while that budget is
//!   spent, every use of the airline's tokens waits. Using the tokens it was granted
//!   costs nothing: the grant bounds it (`tokens.uses`), and a disruption must drain
//!   at the broker's pace, not the limiter's.
//! - Per client address, over the routes that need no API key: a traveller's code
//!   (`/v1/withdrawals`, `/v1/traveller/uses`, the traveller's page) and the pages'
//!   sign-in (`public_rate_limit`), so that codes and keys cannot be guessed at speed.
//!   IPv6 clients are counted per /64, which one host usually holds whole.
//!
//! The airlines' budgets are shared by every broker on a PostgreSQL database (one
//! statement per take, `store::rate_budgets`), and kept in memory by an embedded
//! SQLite broker, the one broker on its file. Each broker also remembers until when a
//! budget it saw spent stays spent, so that a client hammering an empty budget is
//! refused before any work or any database round trip. The per-address buckets stay
//! in each broker's memory. Their number is capped: buckets that have refilled are
//! forgotten first (a full bucket is the same as none), and past the cap a new client
//! is refused until some have.

use crate::policy::tunables::{PublicRateLimit, RateLimit};
use crate::service::{Error, ErrorKind};
use crate::store::rate_budgets::{self, Shape};
use crate::store::{Engine, Store};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    /// Takes one token from `key`'s bucket, or says how many seconds to wait.
    fn take(&self, key: &K, shape: Shape, now: Instant) -> Result<(), f64> {
        self.take_n(key, 1.0, shape, now)
            .map(|_| ())
            .map_err(|level| (1.0 - level) / shape.rate)
    }

    /// Takes `cost` tokens from `key`'s bucket if it holds `min(cost, burst)` (a cost
    /// above the burst passes on a full bucket and leaves it in debt). Either way, says
    /// how many it holds after.
    fn take_n(&self, key: &K, cost: f64, shape: Shape, now: Instant) -> Result<f64, f64> {
        let Shape { rate, burst } = shape;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            let refilled = |b: &Bucket| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate >= burst
            };
            buckets.retain(|_, b| !refilled(b));
            if buckets.len() >= self.capacity {
                // A minute's wait, whatever the rate.
                return Err(1.0 - 60.0 * rate);
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= cost.min(burst) {
            bucket.tokens -= cost;
            return Ok(bucket.tokens);
        }
        Err(bucket.tokens)
    }
}

/// Whole seconds to wait, as `Retry-After` says them.
fn retry_after(seconds: f64) -> u32 {
    seconds.ceil().clamp(1.0, 3600.0) as u32
}

/// An airline's two budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// The travellers its token requests cover.
    Asks,
    /// Its refused token uses.
    RefusedUses,
}

impl Budget {
    /// The name stored beside a shared budget.
    fn as_str(self) -> &'static str {
        match self {
            Budget::Asks => "asks",
            Budget::RefusedUses => "refused_uses",
        }
    }

    fn shape(self, limit: &RateLimit) -> Shape {
        match self {
            Budget::Asks => Shape {
                rate: f64::from(limit.travellers_per_second),
                burst: f64::from(limit.burst),
            },
            Budget::RefusedUses => Shape {
                rate: f64::from(limit.refused_uses_per_minute) / 60.0,
                burst: f64::from(limit.refused_uses_burst),
            },
        }
    }

    /// The refusal, with how long to wait.
    fn refusal(self, limit: &RateLimit, wait: u32) -> Error {
        let detail = match self {
            Budget::Asks => format!(
                "Your airline may ask for {} travellers a second (bursts of {}), each traveller \
                 a flight's request covers counted once; retry in {wait} s. The tokens you \
                 hold can be used meanwhile.",
                limit.travellers_per_second, limit.burst
            ),
            Budget::RefusedUses => format!(
                "Too many of your airline's token uses were refused (unknown, another \
                 airline's, used up or expired tokens: {} a minute, bursts of {}); its token \
                 uses resume in {wait} s.",
                limit.refused_uses_per_minute, limit.refused_uses_burst
            ),
        };
        Error::new(ErrorKind::RateLimited, detail).with_retry_after(wait)
    }
}

/// The airlines' budgets.
#[derive(Debug)]
pub struct RateLimiter {
    /// The budgets of a broker that keeps them in memory (SQLite).
    local: Buckets<(String, Budget)>,
    /// Until when a budget this broker saw spent stays spent.
    spent_until: Mutex<HashMap<(String, Budget), Instant>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            local: Buckets::new(usize::MAX),
            spent_until: Mutex::new(HashMap::new()),
        }
    }
}

impl RateLimiter {
    /// Refuses at once, before any work, a budget this broker knows to be spent.
    pub fn check(
        &self,
        airline: &str,
        budget: Budget,
        limit: &RateLimit,
        now: Instant,
    ) -> Result<(), Error> {
        let spent = self.spent_until.lock().unwrap_or_else(|p| p.into_inner());
        match spent.get(&(airline.to_string(), budget)) {
            Some(until) if *until > now => {
                Err(budget.refusal(limit, retry_after((*until - now).as_secs_f64())))
            }
            _ => Ok(()),
        }
    }

    /// Takes `cost` from `airline`'s `budget`: in the database every broker shares on
    /// PostgreSQL, in memory on SQLite. When it cannot pay, the refusal says how long
    /// until it can. A budget left with less than one, paid or not, is remembered as
    /// spent until it holds one again (a smaller ask may still pass before a larger
    /// one, so a refusal alone does not mark it).
    pub async fn take(
        &self,
        store: &Store,
        airline: &str,
        budget: Budget,
        cost: f64,
        limit: &RateLimit,
    ) -> Result<(), Error> {
        let shape = budget.shape(limit);
        let now = Instant::now();
        let taken = match store.engine() {
            Engine::Sqlite => self
                .local
                .take_n(&(airline.to_string(), budget), cost, shape, now),
            Engine::Postgres => {
                rate_budgets::take(store, airline, budget.as_str(), cost, shape).await?
            }
        };
        let (Ok(level) | Err(level)) = taken;
        if level < 1.0 {
            let until = ((1.0 - level) / shape.rate).min(3600.0);
            let mut spent = self.spent_until.lock().unwrap_or_else(|p| p.into_inner());
            spent.insert(
                (airline.to_string(), budget),
                now + Duration::from_secs_f64(until),
            );
        }
        if taken.is_ok() {
            return Ok(());
        }
        let wait = (cost.min(shape.burst) - level) / shape.rate;
        Err(budget.refusal(limit, retry_after(wait)))
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
        let shape = Shape {
            rate: f64::from(limit.requests_per_minute) / 60.0,
            burst: f64::from(limit.burst),
        };
        self.addresses
            .take(&counted_as(client), shape, now)
            .map_err(|wait| {
                let wait = retry_after(wait);
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

    const SHAPE: Shape = Shape {
        rate: 2.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_is_allowed_then_the_rate_applies() {
        let buckets: Buckets<&str> = Buckets::new(10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take(&"air_1", SHAPE, t0).is_ok());
        }
        let wait = buckets.take(&"air_1", SHAPE, t0).unwrap_err();
        assert_eq!(retry_after(wait), 1);
        assert!(
            buckets.take(&"air_2", SHAPE, t0).is_ok(),
            "buckets are per key"
        );
        assert!(buckets
            .take(&"air_1", SHAPE, t0 + Duration::from_millis(500))
            .is_ok());
    }

    #[test]
    fn a_cost_is_weighed_and_one_above_the_burst_passes_a_full_bucket_into_debt() {
        let buckets: Buckets<&str> = Buckets::new(10);
        let t0 = Instant::now();
        assert!(buckets.take_n(&"air_1", 2.0, SHAPE, t0).is_ok());
        assert!(buckets.take_n(&"air_1", 2.0, SHAPE, t0).is_err(), "1 left");
        assert_eq!(buckets.take_n(&"air_2", 7.0, SHAPE, t0), Ok(-4.0), "full");
        assert_eq!(
            buckets.take_n(&"air_2", 7.0, SHAPE, t0 + Duration::from_secs(9)),
            Ok(-4.0)
        );
        let level = buckets
            .take_n(&"air_2", 1.0, SHAPE, t0 + Duration::from_secs(9))
            .unwrap_err();
        assert!((level + 4.0).abs() < 1e-9, "4 in debt: {level}");
        let wait = buckets
            .take(&"air_2", SHAPE, t0 + Duration::from_secs(9))
            .unwrap_err();
        assert!((wait - 2.5).abs() < 1e-9, "1 needed at 2 a second: {wait}");
    }

    #[tokio::test]
    async fn a_spent_budget_is_refused_before_any_work_until_it_refills() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            travellers_per_second: 1,
            burst: 1,
            refused_uses_per_minute: 60,
            refused_uses_burst: 2,
        };
        let now = Instant::now();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let take = || limiter.take(&store, "air_1", Budget::RefusedUses, 1.0, &limit);
        assert!(take().await.is_ok());
        assert!(limiter
            .check("air_1", Budget::RefusedUses, &limit, now)
            .is_ok());
        assert!(take().await.is_ok(), "the last one is paid");
        let checked = limiter.check("air_1", Budget::RefusedUses, &limit, Instant::now());
        assert_eq!(checked.unwrap_err().kind(), ErrorKind::RateLimited);
        assert!(
            limiter
                .check("air_1", Budget::Asks, &limit, Instant::now())
                .is_ok(),
            "the other budget is untouched"
        );
        let later = Instant::now() + Duration::from_secs(2);
        assert!(limiter
            .check("air_1", Budget::RefusedUses, &limit, later)
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
        let one = Shape {
            rate: 1.0,
            burst: 1.0,
        };
        assert!(buckets.take(&1, one, t0).is_ok());
        assert!(buckets.take(&2, one, t0).is_ok());
        assert!(buckets.take(&3, one, t0).is_err(), "full, none refilled");
        let later = t0 + Duration::from_secs(2);
        assert!(buckets.take(&3, one, later).is_ok(), "refilled ones go");
        assert!(buckets.buckets.lock().unwrap().len() <= 2);
    }
}
