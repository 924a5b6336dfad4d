//! The tunables beside the policies (`policies/tunables.toml`): numbers that shape the
//! release path (token lifetime and uses, rate limits, retention, relay limits and
//! retries) but decide nothing. Every key is required and range-checked, so a typo
//! stops the broker at start-up instead of silently taking a default.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// All tunables, as read from the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunables {
    /// Release tokens.
    pub tokens: TokenTunables,
    /// Per-airline rate limits.
    pub rate_limit: RateLimit,
    /// Per-address rate limits of the routes that need no API key.
    pub public_rate_limit: PublicRateLimit,
    /// Retention periods.
    pub retention: Retention,
    /// Relayed messages.
    pub relay: Relay,
    /// Agency webhooks.
    pub webhooks: Webhooks,
    /// Per-airline daily budgets against pretext harvesting.
    pub budgets: Budgets,
    /// Contact verifications an agency asks for.
    pub verification: Verification,
}

/// Release tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTunables {
    /// Seconds a token works after it is granted.
    pub lifetime_seconds: u64,
    /// Uses per token: one reveal, or this many relayed messages.
    pub uses: u32,
}

/// Two budgets per airline, as token buckets: what it asks for, and the refused uses
/// of tokens that only a faulty or hostile client makes. Using the tokens it was
/// granted is not counted: the grant already bounds it (`tokens.uses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained travellers asked for per second: one for a traveller's token, every
    /// traveller on the flight for a flight's.
    pub travellers_per_second: u32,
    /// Travellers that may be asked for at once.
    pub burst: u32,
    /// Sustained refused uses per minute (unknown token, another airline's, used up,
    /// expired, a reveal of a relay-only token, a channel it does not cover).
    pub refused_uses_per_minute: u32,
    /// Refused uses allowed at once; once spent, the airline's token uses wait.
    pub refused_uses_burst: u32,
}

/// A token bucket per client address, over the routes that need no API key (a
/// traveller's withdrawal code, the pages' sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicRateLimit {
    /// Sustained requests per minute.
    pub requests_per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Retention periods, in days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days an airline may keep a revealed contact.
    pub release_days: u32,
    /// Days a contact is kept after the booking's last flight.
    pub contact_days: u32,
    /// Hours an airline has to acknowledge that it erased a revealed contact, once the
    /// broker asks it to (a withdrawal, a changed contact, a purge).
    pub erasure_deadline_hours: u32,
}

/// Relayed messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    /// Longest SMS text, in characters.
    pub sms_max_chars: usize,
    /// Longest email body, in characters.
    pub email_max_chars: usize,
    /// Longest email subject, in characters.
    pub email_subject_max_chars: usize,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// First backoff, doubled at each attempt.
    pub first_retry_seconds: u64,
    /// Longest backoff.
    pub max_backoff_seconds: u64,
    /// A contact delivered to or verified within this many days counts as reached in
    /// the coverage reports.
    pub reached_within_days: u32,
}

/// Agency webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// Attempts before a delivery is abandoned.
    pub max_attempts: u32,
    /// First backoff, doubled at each attempt.
    pub first_retry_seconds: u64,
    /// Longest backoff.
    pub max_backoff_seconds: u64,
    /// How old a signature timestamp agencies should accept.
    pub signature_tolerance_seconds: u64,
}

/// What an airline may take in one UTC day, over every broker: how much of its schedule
/// it may declare disrupted, and how many contacts it may have revealed. A disruption
/// is how an airline gets contacts, so a harvest would look like disruptions declared
/// for flights with nothing wrong, or like reveals far beyond any real day's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Flights put under the disruptions an airline declares in a day, as a
    /// percentage of the flights it operates that the broker knows of, departing
    /// from that day to `window_days` later.
    pub disrupted_flights_percent: u32,
    /// The fewest flights the budget allows, however small the schedule.
    pub disrupted_flights_min: u32,
    /// Days after the declaration's day whose departures count as the schedule.
    pub window_days: u32,
    /// Reveal tokens an airline may be granted in a day (relay tokens reveal nothing).
    pub reveals_per_day: u32,
    /// The percentage of either budget at which officers and agencies are alerted.
    pub alert_percent: u32,
}

impl Budgets {
    /// The flights an airline may put under disruptions today, when it operates
    /// `operated` flights in the window.
    pub fn disrupted_flights(&self, operated: i64) -> i64 {
        let share = operated.saturating_mul(i64::from(self.disrupted_flights_percent)) / 100;
        share.max(i64::from(self.disrupted_flights_min))
    }

    /// The use of a budget of `limit` at which it alerts.
    pub fn alert_level(&self, limit: i64) -> i64 {
        (limit.saturating_mul(i64::from(self.alert_percent)) / 100).max(1)
    }
}

/// Contact verifications: a code by SMS or a link by email that the traveller answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Minutes a code or a link works after it is asked for.
    pub expires_minutes: u32,
    /// Wrong codes after which a verification accepts no more.
    pub max_wrong_codes: u32,
    /// Verifications of one record's channel an agency may ask for in 24 hours.
    pub requests_per_day: u32,
}

/// A retry schedule: `first`, doubling, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after attempt number `attempts` (1 for the first) failed.
    pub fn after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

impl Tunables {
    /// Parses and range-checks the file's text; the error names the key and its line.
    pub fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        let tunables: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            (line, e.message().to_string())
        })?;
        tunables.check().map_err(|(key, reason)| {
            let line = key_line(text, key);
            (line, format!("`{key}` {reason}"))
        })?;
        Ok(tunables)
    }

    fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let checks: [(&'static str, bool, &'static str); 27] = [
            (
                "lifetime_seconds",
                (10..=86_400).contains(&self.tokens.lifetime_seconds),
                "must be 10 to 86400 seconds",
            ),
            (
                "uses",
                (1..=20).contains(&self.tokens.uses),
                "must be 1 to 20",
            ),
            (
                "rate_limit.travellers_per_second",
                self.rate_limit.travellers_per_second >= 1,
                "must be at least 1",
            ),
            (
                "rate_limit.burst",
                self.rate_limit.burst >= 1,
                "must be at least 1",
            ),
            (
                "rate_limit.refused_uses_per_minute",
                (1..=60_000).contains(&self.rate_limit.refused_uses_per_minute),
                "must be 1 to 60000",
            ),
            (
                "rate_limit.refused_uses_burst",
                self.rate_limit.refused_uses_burst >= 1,
                "must be at least 1",
            ),
            (
                "public_rate_limit.requests_per_minute",
                (1..=6000).contains(&self.public_rate_limit.requests_per_minute),
                "must be 1 to 6000",
            ),
            (
                "public_rate_limit.burst",
                (1..=1000).contains(&self.public_rate_limit.burst),
                "must be 1 to 1000",
            ),
            (
                "release_days",
                (1..=365).contains(&self.retention.release_days),
                "must be 1 to 365 days",
            ),
            (
                "contact_days",
                (0..=3650).contains(&self.retention.contact_days),
                "must be 0 to 3650 days",
            ),
            (
                "erasure_deadline_hours",
                (1..=720).contains(&self.retention.erasure_deadline_hours),
                "must be 1 to 720 hours",
            ),
            (
                "reached_within_days",
                (1..=3650).contains(&self.relay.reached_within_days),
                "must be 1 to 3650 days",
            ),
            (
                "sms_max_chars",
                (1..=1600).contains(&self.relay.sms_max_chars),
                "must be 1 to 1600",
            ),
            (
                "email_max_chars",
                (1..=20_000).contains(&self.relay.email_max_chars),
                "must be 1 to 20000",
            ),
            (
                "email_subject_max_chars",
                (1..=250).contains(&self.relay.email_subject_max_chars),
                "must be 1 to 250",
            ),
            (
                "max_attempts",
                (1..=50).contains(&self.relay.max_attempts)
                    && (1..=50).contains(&self.webhooks.max_attempts),
                "must be 1 to 50",
            ),
            (
                "first_retry_seconds",
                self.relay.first_retry_seconds >= 1 && self.webhooks.first_retry_seconds >= 1,
                "must be at least 1 second",
            ),
            (
                "max_backoff_seconds",
                self.relay.max_backoff_seconds >= self.relay.first_retry_seconds
                    && self.webhooks.max_backoff_seconds >= self.webhooks.first_retry_seconds,
                "must be at least first_retry_seconds",
            ),
            (
                "signature_tolerance_seconds",
                (30..=3600).contains(&self.webhooks.signature_tolerance_seconds),
                "must be 30 to 3600 seconds",
            ),
            (
                "disrupted_flights_percent",
                (1..=1000).contains(&self.budgets.disrupted_flights_percent),
                "must be 1 to 1000 (percent of the flights operated)",
            ),
            (
                "disrupted_flights_min",
                self.budgets.disrupted_flights_min >= 1,
                "must be at least 1",
            ),
            (
                "window_days",
                (0..=30).contains(&self.budgets.window_days),
                "must be 0 to 30 days",
            ),
            (
                "reveals_per_day",
                self.budgets.reveals_per_day >= 1,
                "must be at least 1",
            ),
            (
                "alert_percent",
                (1..=100).contains(&self.budgets.alert_percent),
                "must be 1 to 100",
            ),
            (
                "expires_minutes",
                (1..=1440).contains(&self.verification.expires_minutes),
                "must be 1 to 1440 minutes",
            ),
            (
                "max_wrong_codes",
                (1..=10).contains(&self.verification.max_wrong_codes),
                "must be 1 to 10",
            ),
            (
                "requests_per_day",
                (1..=20).contains(&self.verification.requests_per_day),
                "must be 1 to 20",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, reason)) => Err((key, reason)),
            None => Ok(()),
        }
    }

    /// Token lifetime.
    pub fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.tokens.lifetime_seconds)
    }

    /// The relay's retry schedule.
    pub fn relay_backoff(&self) -> Backoff {
        Backoff {
            max_attempts: self.relay.max_attempts,
            first: Duration::from_secs(self.relay.first_retry_seconds),
            max: Duration::from_secs(self.relay.max_backoff_seconds),
        }
    }

    /// The webhooks' retry schedule.
    pub fn webhook_backoff(&self) -> Backoff {
        Backoff {
            max_attempts: self.webhooks.max_attempts,
            first: Duration::from_secs(self.webhooks.first_retry_seconds),
            max: Duration::from_secs(self.webhooks.max_backoff_seconds),
        }
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set, for an error that is about its value; a key written
/// `section.key` is looked for after its `[section]` line.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let (from, key) = match key.split_once('.') {
        Some((section, key)) => {
            let header = format!("[{section}]");
            let at = text.lines().position(|l| l.trim() == header)?;
            (at, key)
        }
        None => (0, key),
    };
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, line)| {
            let line = line.trim_start();
            line.starts_with(key) && line[key.len()..].trim_start().starts_with('=')
        })
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../policies/tunables.toml");

    #[test]
    fn the_shipped_file_parses() {
        let t = Tunables::parse(SHIPPED).unwrap();
        assert_eq!(t.tokens.uses, 3);
    }

    #[test]
    fn an_out_of_range_value_names_its_key_and_line() {
        let text = SHIPPED.replace("uses = 3", "uses = 0");
        let (line, message) = Tunables::parse(&text).unwrap_err();
        assert!(message.contains("`uses`"), "{message}");
        assert_eq!(line, key_line(&text, "uses"));
    }

    #[test]
    fn a_key_of_two_sections_is_found_in_its_own() {
        let text = SHIPPED.replace("\nburst = 10\n", "\nburst = 0\n");
        let (line, message) = Tunables::parse(&text).unwrap_err();
        assert!(message.contains("public_rate_limit.burst"), "{message}");
        let line = line.unwrap();
        assert_eq!(text.lines().nth(line - 1).unwrap().trim(), "burst = 0");
    }

    #[test]
    fn an_airline_budget_out_of_range_names_its_key() {
        for (from, to, key) in [
            (
                "refused_uses_per_minute = 600",
                "refused_uses_per_minute = 0",
                "rate_limit.refused_uses_per_minute",
            ),
            (
                "travellers_per_second = 1000",
                "travellers_per_second = 0",
                "rate_limit.travellers_per_second",
            ),
        ] {
            let text = SHIPPED.replace(from, to);
            let (_, message) = Tunables::parse(&text).unwrap_err();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn a_disruption_budget_is_a_share_of_the_schedule_with_a_floor() {
        let mut b = Tunables::parse(SHIPPED).unwrap().budgets;
        b.disrupted_flights_percent = 50;
        b.disrupted_flights_min = 10;
        b.alert_percent = 25;
        assert_eq!(b.disrupted_flights(1000), 500);
        assert_eq!(
            b.disrupted_flights(4),
            10,
            "a small schedule keeps the floor"
        );
        assert_eq!(b.alert_level(500), 125);
        assert_eq!(b.alert_level(2), 1, "an alert level is at least one");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = SHIPPED.replace("uses = 3", "uses = 3\nusse = 4");
        let (line, message) = Tunables::parse(&text).unwrap_err();
        assert!(message.contains("usse"), "{message}");
        assert!(line.is_some());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            max_attempts: 5,
            first: Duration::from_secs(5),
            max: Duration::from_secs(30),
        };
        assert_eq!(b.after(1), Duration::from_secs(5));
        assert_eq!(b.after(2), Duration::from_secs(10));
        assert_eq!(b.after(4), Duration::from_secs(30));
        assert_eq!(b.after(40), Duration::from_secs(30));
    }
}
