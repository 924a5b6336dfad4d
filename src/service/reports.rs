//! The reports: what compliance officers ask of a period, as counts (the API's
//! `GET /v1/audit/reports` and the console's reports page).
//!
//! Contact coverage by agency and by airline (travellers flying in the period with a
//! consent in force holding a contact), releases by purpose and event, refusals by
//! reason, the time from an airline's first request under a disruption reference to
//! its releases, and the relay's deliveries and failures.

use crate::domain::time::format_time;
use crate::service::budgets::{self, BudgetAlert};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
pub use crate::store::reports::Period;
use crate::store::reports::{self, CoverageOf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// The period; by default the 30 days up to now.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    /// Start, inclusive (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

impl PeriodQuery {
    /// The period asked for, checked.
    pub fn period(&self, now: OffsetDateTime) -> Result<Period, Error> {
        let until = self.until.unwrap_or(now);
        let since = self.since.unwrap_or(until - Duration::days(30));
        if until <= since {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "until",
                "must be later than `since`",
            ));
        }
        Ok(Period { since, until })
    }
}

/// Coverage of one agency or airline.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct CoverageRow {
    /// IATA agency number or airline designator.
    pub party: String,
    /// Travellers flying in the period.
    pub travellers: i64,
    /// Of those, reachable under a consent in force.
    pub with_contact: i64,
    /// `with_contact / travellers`, 0 to 1.
    pub share: f64,
    /// Of those with a contact, travellers a message was delivered to lately (within
    /// `relay.reached_within_days`), at the contact their record holds now.
    pub reached: i64,
    /// Of those with a contact, travellers one of whose contacts is known not to reach
    /// them (an undeliverable SMS, a hard bounce).
    pub unreachable: i64,
}

/// Coverage both ways.
#[derive(Serialize, Deserialize, Debug)]
pub struct CoverageReport {
    /// By the agency holding the booking.
    pub by_agency: Vec<CoverageRow>,
    /// By operating carrier.
    pub by_airline: Vec<CoverageRow>,
    /// By flight (`AF1234/2026-12-01`, counting consents that name its carrier), those
    /// whose travellers can least be reached first; at most [`FLIGHTS_LISTED`].
    pub by_flight: Vec<CoverageRow>,
}

/// Most flights the report's coverage lists.
pub const FLIGHTS_LISTED: i64 = 500;

/// Uses under one purpose and event category.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
pub struct ReleaseRow {
    /// The purpose.
    pub purpose: Option<String>,
    /// The event category.
    pub event_category: Option<String>,
    /// Tokens granted.
    pub grants: i64,
    /// Contacts revealed.
    pub releases: i64,
    /// Messages accepted for relay.
    pub relays: i64,
}

/// Releases on one UTC day under one event category: the chart of releases over time.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DailyRow {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The event category.
    pub event_category: Option<String>,
    /// Contacts revealed and messages accepted for relay that day.
    pub releases: i64,
}

/// Refusals of one action for one reason.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct RefusalRow {
    /// What was asked.
    pub action: Option<String>,
    /// The reason code.
    pub reason: Option<String>,
    /// How many.
    pub count: i64,
}

/// One airline disruption.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DisruptionRow {
    /// The airline.
    pub airline: Option<String>,
    /// Its disruption reference (a declared disruption's id).
    pub event_reference: String,
    /// When the disruption was declared (absent for an event not declared here).
    pub declared_at: Option<String>,
    /// First token request under it.
    pub first_request_at: Option<String>,
    /// First contact revealed or message accepted.
    pub first_release_at: Option<String>,
    /// Last one.
    pub last_release_at: Option<String>,
    /// Seconds from the first request to the first release.
    pub seconds_to_first_release: Option<f64>,
    /// Seconds from the first request to the last release.
    pub seconds_to_last_release: Option<f64>,
    /// First relayed message a gateway accepted.
    pub first_message_delivered_at: Option<String>,
    /// Last one.
    pub last_message_delivered_at: Option<String>,
    /// Last contact revealed to the airline.
    pub last_redeemed_at: Option<String>,
    /// The time to tell (Regulation 261/2004 art. 5 and 14): seconds from the
    /// declaration to the first message a gateway accepted.
    pub seconds_to_first_message: Option<f64>,
    /// Seconds from the declaration to the last message a gateway accepted.
    pub seconds_to_last_message: Option<f64>,
    /// Seconds from the declaration to the last contact revealed.
    pub seconds_to_last_redemption: Option<f64>,
    /// Releases under the reference.
    pub releases: i64,
}

/// Relay outcomes by channel.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct RelayRow {
    /// `sms` or `email`.
    pub channel: Option<String>,
    /// `delivered`, `deferred`, `failed` or `cancelled`.
    pub outcome: Option<String>,
    /// Why, for failures.
    pub reason: Option<String>,
    /// How many attempts ended so.
    pub count: i64,
}

/// The whole report.
#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    /// Start of the period.
    pub since: String,
    /// End of the period.
    pub until: String,
    /// Contact coverage.
    pub coverage: CoverageReport,
    /// Releases by purpose and event.
    pub releases: Vec<ReleaseRow>,
    /// Releases per day and event category.
    pub releases_by_day: Vec<DailyRow>,
    /// Refusals by reason.
    pub refusals: Vec<RefusalRow>,
    /// Disruption reference to release times.
    pub disruptions: Vec<DisruptionRow>,
    /// Relay deliveries and failures.
    pub relay: Vec<RelayRow>,
    /// Airlines' daily budgets that passed their alert level in the period (see
    /// `policies/tunables.toml` `[budgets]`), newest first.
    pub budget_alerts: Vec<BudgetAlert>,
    /// Erasure requests airlines have not acknowledged by their deadline, as of now
    /// (whatever the period), newest first.
    pub erasures_overdue: Vec<crate::service::erasures::ErasureRequest>,
}

pub(crate) fn coverage_rows(rows: Vec<reports::Coverage>) -> Vec<CoverageRow> {
    rows.into_iter()
        .map(|c| CoverageRow {
            share: if c.travellers == 0 {
                0.0
            } else {
                (c.with_contact as f64 / c.travellers as f64 * 10_000.0).round() / 10_000.0
            },
            party: c.party,
            travellers: c.travellers,
            with_contact: c.with_contact,
            reached: c.reached,
            unreachable: c.unreachable,
        })
        .collect()
}

fn millis_text(ms: Option<i64>) -> Option<String> {
    ms.and_then(|ms| crate::store::from_millis(ms).ok())
        .map(format_time)
}

fn seconds_between(from: Option<i64>, to: Option<i64>) -> Option<f64> {
    Some((to? - from?) as f64 / 1000.0)
}

/// The oldest delivery that still counts a contact as reached.
pub(crate) fn reached_since(state: &AppState, now: OffsetDateTime) -> OffsetDateTime {
    let days = state.settings.policies.tunables.relay.reached_within_days;
    now - time::Duration::days(i64::from(days))
}

/// Builds the report of a period.
pub async fn build(state: &AppState, period: Period) -> Result<Report, Error> {
    let now = state.clock.now();
    let mut conn = state.store.reader().acquire().await?;
    let reached_since = reached_since(state, now);
    let by_agency = coverage_rows(
        reports::coverage(&mut conn, period, CoverageOf::ByAgency, now, reached_since).await?,
    );
    let by_airline = coverage_rows(
        reports::coverage(&mut conn, period, CoverageOf::ByAirline, now, reached_since).await?,
    );
    let by_flight = coverage_rows(
        reports::coverage(
            &mut conn,
            period,
            CoverageOf::ByFlight(FLIGHTS_LISTED),
            now,
            reached_since,
        )
        .await?,
    );
    let uses = reports::count_entries(
        &mut conn,
        period,
        &["purpose", "event_category", "action"],
        "(action = 'token_request' AND outcome = 'granted') OR (action = 'token_redemption' AND outcome = 'released') \
         OR (action = 'message_relay' AND outcome = 'queued')",
    )
    .await?;
    let mut releases: BTreeMap<(Option<String>, Option<String>), ReleaseRow> = BTreeMap::new();
    for count in uses {
        let [purpose, event, action] =
            <[Option<String>; 3]>::try_from(count.labels).expect("three labels");
        let row = releases
            .entry((purpose.clone(), event.clone()))
            .or_insert_with(|| ReleaseRow {
                purpose,
                event_category: event,
                ..ReleaseRow::default()
            });
        match action.as_deref() {
            Some("token_request") => row.grants += count.count,
            Some("token_redemption") => row.releases += count.count,
            _ => row.relays += count.count,
        }
    }
    let releases_by_day = reports::releases_by_day(&mut conn, period)
        .await?
        .into_iter()
        .map(|d| DailyRow {
            day: d.day.to_string(),
            event_category: d.event_category,
            releases: d.releases,
        })
        .collect();
    let refusals = reports::count_entries(
        &mut conn,
        period,
        &["action", "reason"],
        "outcome = 'refused'",
    )
    .await?
    .into_iter()
    .map(|c| {
        let [action, reason] = <[Option<String>; 2]>::try_from(c.labels).expect("two labels");
        RefusalRow {
            action,
            reason,
            count: c.count,
        }
    })
    .collect();
    let disruptions = reports::disruptions(&mut conn, period)
        .await?
        .into_iter()
        .map(|d| DisruptionRow {
            seconds_to_first_release: seconds_between(d.first_request, d.first_release),
            seconds_to_last_release: seconds_between(d.first_request, d.last_release),
            seconds_to_first_message: seconds_between(d.declared, d.first_delivered),
            seconds_to_last_message: seconds_between(d.declared, d.last_delivered),
            seconds_to_last_redemption: seconds_between(d.declared, d.last_redeemed),
            declared_at: millis_text(d.declared),
            first_message_delivered_at: millis_text(d.first_delivered),
            last_message_delivered_at: millis_text(d.last_delivered),
            last_redeemed_at: millis_text(d.last_redeemed),
            first_request_at: millis_text(d.first_request),
            first_release_at: millis_text(d.first_release),
            last_release_at: millis_text(d.last_release),
            airline: d.airline,
            event_reference: d.event_reference,
            releases: d.releases,
        })
        .collect();
    let relay = reports::count_entries(
        &mut conn,
        period,
        &["channel", "outcome", "reason"],
        "action = 'message_delivery'",
    )
    .await?
    .into_iter()
    .map(|c| {
        let [channel, outcome, reason] =
            <[Option<String>; 3]>::try_from(c.labels).expect("three labels");
        RelayRow {
            channel,
            outcome,
            reason,
            count: c.count,
        }
    })
    .collect();
    let budget_alerts = budgets::alerts(&mut conn, None, period.since, period.until).await?;
    let erasures_overdue =
        crate::service::erasures::overdue(&mut conn, state.clock.now(), None).await?;
    Ok(Report {
        since: format_time(period.since),
        until: format_time(period.until),
        coverage: CoverageReport {
            by_agency,
            by_airline,
            by_flight,
        },
        releases: releases.into_values().collect(),
        releases_by_day,
        refusals,
        disruptions,
        relay,
        budget_alerts,
        erasures_overdue,
    })
}

/// The report of the period a query names.
pub async fn read(state: &AppState, query: PeriodQuery) -> Result<Report, Error> {
    let period = query.period(state.clock.now())?;
    build(state, period).await
}
