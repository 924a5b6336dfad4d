//! What the release policies are asked about: travellers on a flight with their
//! booking's itinerary, their current consent record and their agency's delivery
//! choice. Two reads whatever the number of travellers: one for the travellers, one for
//! their bookings' segments.

use super::consents::scope_from_row;
use super::db::Db;
use super::row::Columns;
use super::{arg, from_millis, Param, StoreError};
use crate::domain::booking::{Flight, RecordLocator};
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::scope::ConsentScope;
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};
use tracing::instrument;

/// A traveller's current consent record, as far as release is concerned.
#[derive(Debug, Clone)]
pub struct ConsentFacts {
    /// The record's id.
    pub id: String,
    /// What it allows.
    pub scope: ConsentScope,
    /// The channels it holds a contact for (none once purged).
    pub channels: Vec<Channel>,
    /// The language of the notice the traveller was shown: the one messages to them
    /// are written in.
    pub language: Option<String>,
}

/// A traveller and everything the policies need to decide about them.
#[derive(Debug, Clone)]
pub struct ReleaseFacts {
    /// The agency holding the booking.
    pub agency_id: String,
    /// The booking.
    pub booking_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The traveller.
    pub traveller_id: String,
    /// When the agency first uploaded the booking.
    pub booked_at: OffsetDateTime,
    /// Carriers of the booking's segments.
    pub carriers: Vec<String>,
    /// The last segment's departure date.
    pub last_departure: Option<Date>,
    /// How the agency wants this traveller reached.
    pub delivery: Delivery,
    /// The current record, if any.
    pub consent: Option<ConsentFacts>,
}

impl ReleaseFacts {
    /// End of the trip as the policies see it: the end of the day after the last
    /// departure date (bookings carry dates, not arrival times).
    pub fn travel_ends(&self) -> OffsetDateTime {
        match self.last_departure {
            Some(date) => date
                .saturating_add(time::Duration::days(2))
                .midnight()
                .assume_utc(),
            None => self.booked_at,
        }
    }
}

pub(crate) const TRAVELLER_COLUMNS: &str =
    "b.agency_id, b.id AS booking_id, b.record_locator, b.created_at AS booked_at, \
     t.id AS traveller_id, COALESCE(t.delivery, p.delivery) AS delivery, c.id AS consent_id, \
     c.sealed_mobile IS NOT NULL AS has_mobile, c.sealed_email IS NOT NULL AS has_email, \
     c.decision, c.superseded_by, c.withdrawn_at, c.purposes, c.carriers, c.valid_until, \
     c.notice_language";

const TRAVELLER_JOINS: &str = "FROM travellers t JOIN bookings b ON b.id = t.booking_id \
     JOIN parties p ON p.id = b.agency_id \
     LEFT JOIN consents c ON c.traveller_id = t.id AND c.superseded_by IS NULL";

/// Every traveller the broker holds on `flight`, in a stable order (booking, then
/// traveller).
#[instrument(skip_all)]
pub async fn on_flight(db: &mut impl Db, flight: &Flight) -> Result<Vec<ReleaseFacts>, StoreError> {
    let sql = format!(
        "SELECT {TRAVELLER_COLUMNS} {TRAVELLER_JOINS} \
         WHERE t.booking_id IN (SELECT booking_id FROM segments \
         WHERE carrier = $1 AND flight_number = $2 AND departure_date = $3) \
         ORDER BY b.id, t.id"
    );
    let travellers = db
        .all(&sql, flight_params(flight), |row| facts_from_row(row))
        .await?;
    let itineraries = itineraries_on_flight(db, flight).await?;
    Ok(with_itineraries(travellers, &itineraries))
}

/// The itinerary of every booking on `flight`, found through the flight's index.
///
/// Not as `booking_id IN (…)` over the flight's bookings, as [`itineraries`] reads a
/// few: with no statistics on `segments` (right after a bulk load, or wherever
/// autovacuum is off), PostgreSQL took each `=` of such a list to match 0.5 % of the
/// table, a hundred of them a fifth of it, and scanned the whole table at every flight
/// grant (77 ms on 500,000 segments, against 2 ms this way, statistics or not).
async fn itineraries_on_flight(
    db: &mut impl Db,
    flight: &Flight,
) -> Result<BTreeMap<String, Itinerary>, StoreError> {
    let mut found: BTreeMap<String, Itinerary> = BTreeMap::new();
    db.for_each(
        "SELECT booking_id, carrier, departure_date FROM segments WHERE booking_id IN \
         (SELECT booking_id FROM segments WHERE carrier = $1 AND flight_number = $2 \
         AND departure_date = $3)",
        flight_params(flight),
        |row| add_segment(&mut found, row),
    )
    .await?;
    Ok(found)
}

/// A flight's carrier, number and date, as statements bind them.
fn flight_params(flight: &Flight) -> Vec<Param> {
    vec![
        Param::Text(flight.carrier.as_str().to_string()),
        Param::Text(flight.flight_number.as_str().to_string()),
        Param::Text(flight.date.as_string()),
    ]
}

/// How many travellers the broker holds on `flight`: what asking for its tokens costs
/// an airline's budget.
#[instrument(skip_all)]
pub async fn count_on_flight(db: &mut impl Db, flight: &Flight) -> Result<i64, StoreError> {
    let mut n = 0;
    db.for_each(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM travellers t WHERE t.booking_id IN \
         (SELECT booking_id FROM segments WHERE carrier = $1 AND flight_number = $2 \
         AND departure_date = $3)",
        flight_params(flight),
        |row| {
            n = row.value("n");
            Ok(())
        },
    )
    .await?;
    Ok(n)
}

/// The travellers with this name index on a booking with this locator that holds
/// `flight`. More than one only if two agencies share a locator.
#[instrument(skip_all)]
pub async fn named(
    db: &mut impl Db,
    locator: &RecordLocator,
    name_index: &[u8],
    flight: &Flight,
) -> Result<Vec<ReleaseFacts>, StoreError> {
    let sql = format!(
        "SELECT {TRAVELLER_COLUMNS} {TRAVELLER_JOINS} \
         WHERE b.record_locator = $1 AND t.name_index = $2 AND t.booking_id IN (SELECT booking_id \
         FROM segments WHERE carrier = $3 AND flight_number = $4 AND departure_date = $5)"
    );
    let mut params = vec![
        Param::Text(locator.as_str().to_string()),
        Param::Bytes(name_index.to_vec()),
    ];
    params.extend(flight_params(flight));
    let travellers = db.all(&sql, params, |row| facts_from_row(row)).await?;
    complete(db, travellers).await
}

/// Adds each booking's itinerary to the travellers read.
async fn complete(
    db: &mut impl Db,
    travellers: Vec<ReleaseFacts>,
) -> Result<Vec<ReleaseFacts>, StoreError> {
    let itineraries = itineraries(db, &travellers).await?;
    Ok(with_itineraries(travellers, &itineraries))
}

/// The travellers, each given its booking's itinerary.
fn with_itineraries(
    mut travellers: Vec<ReleaseFacts>,
    itineraries: &BTreeMap<String, Itinerary>,
) -> Vec<ReleaseFacts> {
    for traveller in &mut travellers {
        if let Some(itinerary) = itineraries.get(&traveller.booking_id) {
            itinerary.apply(traveller);
        }
    }
    travellers
}

/// Adds a `segments` row (`booking_id`, `carrier`, `departure_date`) to its booking's
/// itinerary.
fn add_segment(
    found: &mut BTreeMap<String, Itinerary>,
    row: &impl Columns,
) -> Result<(), StoreError> {
    let date: String = row.value("departure_date");
    found
        .entry(row.value("booking_id"))
        .or_default()
        .add(row.value("carrier"), &date)
}

/// A traveller read with [`TRAVELLER_COLUMNS`], its itinerary still empty.
pub(crate) fn facts_from_row(row: &impl Columns) -> Result<ReleaseFacts, StoreError> {
    let consent_id: Option<String> = row.value("consent_id");
    let consent = match consent_id {
        Some(id) => {
            let mut channels = Vec::new();
            if row.flag("has_mobile") {
                channels.push(Channel::Sms);
            }
            if row.flag("has_email") {
                channels.push(Channel::Email);
            }
            Some(ConsentFacts {
                id,
                scope: scope_from_row(row)?,
                channels,
                language: row.value("notice_language"),
            })
        }
        None => None,
    };
    let delivery: String = row.value("delivery");
    Ok(ReleaseFacts {
        agency_id: row.value("agency_id"),
        booking_id: row.value("booking_id"),
        record_locator: row.value("record_locator"),
        traveller_id: row.value("traveller_id"),
        booked_at: from_millis(row.value("booked_at"))?,
        carriers: Vec::new(),
        last_departure: None,
        delivery: Delivery::from_word(&delivery)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {delivery}")))?,
        consent,
    })
}

/// A booking's carriers and last departure date, gathered segment by segment.
#[derive(Debug, Default)]
pub(crate) struct Itinerary {
    carriers: Vec<String>,
    last: Option<Date>,
}

impl Itinerary {
    /// Adds a segment, its departure date as stored.
    pub(crate) fn add(&mut self, carrier: String, date: &str) -> Result<(), StoreError> {
        let date = crate::domain::booking::FlightDate::parse(date)
            .map_err(|_| StoreError::Corrupt(format!("departure date {date}")))?
            .date();
        if !self.carriers.contains(&carrier) {
            self.carriers.push(carrier);
        }
        self.last = Some(self.last.map_or(date, |last| last.max(date)));
        Ok(())
    }

    /// Gives the traveller this itinerary.
    pub(crate) fn apply(&self, traveller: &mut ReleaseFacts) {
        traveller.carriers = self.carriers.clone();
        traveller.last_departure = self.last;
    }
}

/// Each booking's itinerary, in one query: for the few bookings of a traveller asked by
/// name (a flight's many are read by [`itineraries_on_flight`]).
async fn itineraries(
    db: &mut impl Db,
    travellers: &[ReleaseFacts],
) -> Result<BTreeMap<String, Itinerary>, StoreError> {
    let mut bookings: Vec<&str> = travellers.iter().map(|t| t.booking_id.as_str()).collect();
    bookings.sort_unstable();
    bookings.dedup();
    let mut found: BTreeMap<String, Itinerary> = BTreeMap::new();
    // Within the parameter limits of both engines, with room to spare.
    for chunk in bookings.chunks(1000) {
        let mut params = Vec::new();
        let placeholders: Vec<String> = chunk
            .iter()
            .map(|b| arg(&mut params, Param::Text((*b).to_string())))
            .collect();
        let sql = format!(
            "SELECT booking_id, carrier, departure_date FROM segments WHERE booking_id IN ({})",
            placeholders.join(", ")
        );
        db.for_each(&sql, params, |row| add_segment(&mut found, row))
            .await?;
    }
    Ok(found)
}
