//! A circuit breaker per agency webhook: after a few failures in a row, the agency's
//! pushes wait (without using their attempts) for a while, doubling each time the
//! breaker trips again, so a webhook that never answers costs one timeout per
//! period, not one per push. A success closes it.
//!
//! The state lives in the broker's memory, one entry per agency whose webhook is
//! failing: brokers on one database each keep their own.

use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Failures in a row that trip the breaker.
pub const TRIP_AFTER: u32 = 3;
/// How long the breaker stays open the first time.
pub const FIRST_OPEN: Duration = Duration::seconds(30);
/// The longest it stays open.
pub const MAX_OPEN: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Copy, Default)]
struct Circuit {
    failures: u32,
    trips: u32,
    open_until: Option<OffsetDateTime>,
}

/// The breakers, by agency id.
#[derive(Debug, Default)]
pub struct Breakers {
    circuits: Mutex<HashMap<String, Circuit>>,
}

impl Breakers {
    /// Until when the agency's pushes wait, if its breaker is open at `now`.
    pub fn open_until(&self, agency_id: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        circuits
            .get(agency_id)
            .and_then(|c| c.open_until)
            .filter(|until| *until > now)
    }

    /// A push went through: the breaker closes.
    pub fn succeeded(&self, agency_id: &str) {
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        circuits.remove(agency_id);
    }

    /// A push failed; returns until when the breaker is now open, if it tripped. A
    /// breaker let through after its period trips again on the first failure.
    pub fn failed(&self, agency_id: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = circuits.entry(agency_id.to_string()).or_default();
        circuit.failures += 1;
        if circuit.failures < TRIP_AFTER {
            return None;
        }
        let doublings = circuit.trips.min(10);
        let open = (FIRST_OPEN * (1i32 << doublings)).min(MAX_OPEN);
        circuit.trips += 1;
        circuit.open_until = Some(now + open);
        circuit.open_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn three_failures_open_the_breaker_for_longer_each_time_and_a_success_closes_it() {
        let breakers = Breakers::default();
        let t0 = datetime!(2026-12-01 10:00 UTC);
        assert_eq!(breakers.failed("agy_1", t0), None);
        assert_eq!(breakers.failed("agy_1", t0), None);
        assert_eq!(breakers.failed("agy_1", t0), Some(t0 + FIRST_OPEN));
        assert_eq!(breakers.open_until("agy_1", t0), Some(t0 + FIRST_OPEN));
        assert_eq!(breakers.open_until("agy_2", t0), None, "per agency");
        let later = t0 + FIRST_OPEN;
        assert_eq!(
            breakers.open_until("agy_1", later),
            None,
            "one push goes through"
        );
        assert_eq!(
            breakers.failed("agy_1", later),
            Some(later + FIRST_OPEN * 2),
            "and trips it again at once, for twice as long"
        );
        breakers.succeeded("agy_1");
        assert_eq!(breakers.open_until("agy_1", later), None);
        assert_eq!(
            breakers.failed("agy_1", later),
            None,
            "counting starts over"
        );
    }
}
