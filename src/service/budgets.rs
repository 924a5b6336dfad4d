//! No pretext harvesting: the per-airline daily budgets of `policies/tunables.toml`
//! `[budgets]`, charged by the use cases that spend them (a declaration its flights,
//! a grant its reveal tokens) inside their own transaction, refused with a named rule
//! beyond the budget, and flagged once a day when a use passes the alert level: to
//! officers (their report, the console, `/metrics`) and to the agencies whose clients
//! are on the airline's disruptions (their webhook events and their page).

use crate::domain::party::Party;
use crate::policy::Refusal;
use crate::service::refusal::refusal_problem;
use crate::service::{AppState, Error};
use crate::store::budgets::{self, Alert, Budget, Charged};
use crate::store::db::Db;
use crate::store::StoreError;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long a broker reuses an airline's schedule count. The count is the budget's
/// denominator, never a guard on a contact: a minute's staleness moves the limit by
/// the flights booked in that minute, and saves a scan of the airline's segments on
/// every declaration of a storm.
const SCHEDULE_FRESH_FOR: Duration = Duration::from_secs(60);

/// The airlines' schedule counts, as lately read.
#[derive(Default)]
pub struct Schedules {
    counted: Mutex<HashMap<(String, String), (Instant, i64)>>,
}

/// A budget's state, as officers and agencies read it.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct BudgetAlert {
    /// The airline.
    pub airline_id: String,
    /// The UTC day.
    pub day: String,
    /// `disrupted_flights` or `reveals`.
    pub budget: Budget,
    /// The use so far that day.
    pub used: i64,
    /// The day's budget.
    pub limit: i64,
    /// When the use passed the alert level.
    pub alerted_at: String,
}

impl BudgetAlert {
    pub(crate) fn of(alert: &Alert) -> Self {
        Self {
            airline_id: alert.airline_id.clone(),
            day: alert.day.clone(),
            budget: alert.budget,
            used: alert.used,
            limit: alert.limit,
            alerted_at: crate::domain::time::format_time(alert.alerted_at),
        }
    }
}

/// The UTC day a use counts in, `YYYY-MM-DD`.
pub fn day_of(now: OffsetDateTime) -> String {
    now.date().to_string()
}

/// The UTC day of `at`, from its midnight to the next.
pub fn day_span(at: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let start = at.date().midnight().assume_utc();
    (start, start + time::Duration::days(1))
}

/// Whole seconds until the next UTC day, when the budgets start again.
fn until_tomorrow(now: OffsetDateTime) -> u32 {
    let (_, tomorrow) = day_span(now);
    (tomorrow - now).whole_seconds().clamp(1, 86_400) as u32
}

/// The flights the airline may put under disruptions on `now`'s day: a share of the
/// flights it operates that the broker knows of, departing from that day to
/// `window_days` later, never fewer than the floor.
pub async fn disrupted_flights_limit(
    state: &AppState,
    airline: &Party,
    now: OffsetDateTime,
) -> Result<i64, Error> {
    let budgets = &state.settings.policies.tunables.budgets;
    let carrier = airline.code.clone().unwrap_or_default();
    let from = now.date();
    let to = from
        .checked_add(time::Duration::days(i64::from(budgets.window_days)))
        .unwrap_or(from);
    let key = (carrier.clone(), from.to_string());
    let cached = state
        .schedules
        .counted
        .lock()
        .expect("schedules lock")
        .get(&key)
        .filter(|(at, _)| at.elapsed() < SCHEDULE_FRESH_FOR)
        .map(|(_, n)| *n);
    let operated = match cached {
        Some(n) => n,
        None => {
            let mut reader = state.store.reader().acquire().await?;
            let n = crate::store::bookings::flights_operated(
                &mut reader,
                &carrier,
                &from.to_string(),
                &to.to_string(),
            )
            .await?;
            let mut counted = state.schedules.counted.lock().expect("schedules lock");
            // One count per airline: an earlier day's is never asked again.
            counted.retain(|(_, day), _| *day == key.1);
            counted.insert(key, (Instant::now(), n));
            n
        }
    };
    Ok(budgets.disrupted_flights(operated))
}

/// The reveal tokens an airline may be granted in a day.
pub fn reveals_limit(state: &AppState) -> i64 {
    i64::from(state.settings.policies.tunables.budgets.reveals_per_day)
}

/// The airline's use of a budget today, as `db` sees it.
pub async fn used_today(
    db: &mut impl Db,
    airline: &Party,
    budget: Budget,
    now: OffsetDateTime,
) -> Result<i64, StoreError> {
    budgets::used(db, &airline.id, &day_of(now), budget).await
}

/// Takes `amount` from the airline's budget today, in the caller's transaction.
pub async fn take(
    db: &mut impl Db,
    state: &AppState,
    airline_id: &str,
    budget: Budget,
    amount: i64,
    limit: i64,
    now: OffsetDateTime,
) -> Result<Charged, StoreError> {
    let day = day_of(now);
    let charge = charge(state, airline_id, &day, budget, amount, limit, now);
    charge.add(db).await
}

/// [`take`] only while the day's use stays within `limit`: `None`, with nothing taken,
/// when `amount` more would pass it.
pub async fn take_within(
    db: &mut impl Db,
    state: &AppState,
    airline_id: &str,
    budget: Budget,
    amount: i64,
    limit: i64,
    now: OffsetDateTime,
) -> Result<Option<Charged>, StoreError> {
    let day = day_of(now);
    let charge = charge(state, airline_id, &day, budget, amount, limit, now);
    charge.add_within(db).await
}

/// A charge of the airline's budget on `day`, alerting at the tunables' level.
fn charge<'a>(
    state: &AppState,
    airline_id: &'a str,
    day: &'a str,
    budget: Budget,
    amount: i64,
    limit: i64,
    now: OffsetDateTime,
) -> budgets::Charge<'a> {
    budgets::Charge {
        airline_id,
        day,
        budget,
        amount,
        limit,
        alert_level: state.settings.policies.tunables.budgets.alert_level(limit),
        now,
    }
}

/// Counts an alert raised by a charge, once it is committed.
pub fn raised(state: &AppState, airline: &Party, budget: Budget, charged: Charged) {
    if charged.alerted {
        state.metrics.observe_budget_alert(budget.as_str());
        tracing::warn!(
            airline_id = %airline.id,
            budget = budget.as_str(),
            used = charged.used,
            "an airline passed the alert level of a daily budget"
        );
    }
}

/// The refusal of a request beyond a budget: 429, the rule, the day's figures, and
/// Retry-After until the next UTC day.
pub fn spent(refusal: Refusal, used: i64, limit: i64, now: OffsetDateTime) -> Error {
    refusal_problem(refusal, &[])
        .with_extension("used_today", serde_json::Value::from(used))
        .with_extension("budget", serde_json::Value::from(limit))
        .with_retry_after(until_tomorrow(now))
}

/// The most alerts one read answers (a day has two per airline at most).
const ALERTS_READ: i64 = 500;

/// The budgets that passed their alert level from `since` to before `until`, of one
/// airline or all, newest first.
pub async fn alerts(
    db: &mut impl Db,
    airline_id: Option<&str>,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<BudgetAlert>, Error> {
    let found = budgets::alerts(db, airline_id, since, until, ALERTS_READ).await?;
    Ok(found.iter().map(BudgetAlert::of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn budgets_start_again_at_the_next_utc_day() {
        assert_eq!(until_tomorrow(datetime!(2026-12-05 23:59:00 UTC)), 60);
        assert_eq!(until_tomorrow(datetime!(2026-12-05 00:00:00 UTC)), 86_400);
        assert_eq!(day_of(datetime!(2026-12-05 23:59:59 UTC)), "2026-12-05");
    }
}
