//! Bookings, travellers and consent records.

use super::{from_millis, to_millis, Conn, StoreError};
use crate::domain::booking::{CarrierCode, Flight, RecordLocator};
use crate::domain::consent::{ConsentScope, ConsentState};
use crate::domain::ids::{new_id, BOOKING, TRAVELLER};
use crate::domain::purpose::Purpose;
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// Returns the id of the agency's booking with this locator, creating it if new.
#[instrument(skip_all)]
pub async fn upsert_booking(
    conn: &mut Conn,
    agency_id: &str,
    locator: &RecordLocator,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    sqlx::query(
        "INSERT INTO bookings (id, agency_id, record_locator, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (agency_id, record_locator) DO NOTHING",
    )
    .bind(new_id(BOOKING))
    .bind(agency_id)
    .bind(locator.as_str())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT id FROM bookings WHERE agency_id = $1 AND record_locator = $2")
        .bind(agency_id)
        .bind(locator.as_str())
        .fetch_one(conn)
        .await?;
    Ok(row.get("id"))
}

/// Adds segments to a booking; segments it already has are kept as they are.
#[instrument(skip_all)]
pub async fn add_segments(
    conn: &mut Conn,
    booking_id: &str,
    segments: &[Flight],
) -> Result<(), StoreError> {
    for segment in segments {
        sqlx::query(
            "INSERT INTO segments (booking_id, carrier, flight_number, departure_date) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(booking_id)
        .bind(segment.carrier.as_str())
        .bind(segment.flight_number.as_str())
        .bind(segment.date.as_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Returns the id of the booking's traveller with this name index, creating the
/// traveller if new. `seal_name` seals the name for the row id it is given.
#[instrument(skip_all)]
pub async fn upsert_traveller(
    conn: &mut Conn,
    booking_id: &str,
    name_index: &[u8],
    seal_name: impl FnOnce(&str) -> Vec<u8>,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = new_id(TRAVELLER);
    sqlx::query(
        "INSERT INTO travellers (id, booking_id, name_index, sealed_name, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (booking_id, name_index) DO NOTHING",
    )
    .bind(&id)
    .bind(booking_id)
    .bind(name_index)
    .bind(seal_name(&id))
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT id FROM travellers WHERE booking_id = $1 AND name_index = $2")
        .bind(booking_id)
        .bind(name_index)
        .fetch_one(conn)
        .await?;
    Ok(row.get("id"))
}

/// A consent record to store.
pub struct NewConsent<'a> {
    /// The record's id, already used to seal its values.
    pub id: &'a str,
    /// The traveller it concerns.
    pub traveller_id: &'a str,
    /// The agency that uploaded it.
    pub agency_id: &'a str,
    /// Purposes consented to.
    pub purposes: &'a [Purpose],
    /// Carriers that may receive the contact.
    pub carriers: &'a [CarrierCode],
    /// When consent was collected.
    pub collected_at: OffsetDateTime,
    /// End of validity, if any.
    pub valid_until: Option<OffsetDateTime>,
    /// Notice version shown.
    pub notice_version: &'a str,
    /// How consent was collected.
    pub collection_method: &'a str,
    /// Key id that signed it.
    pub key_id: &'a str,
    /// The detached JWS.
    pub signature: &'a str,
    /// The canonical statement, sealed.
    pub sealed_statement: Vec<u8>,
    /// The mobile number, sealed.
    pub sealed_mobile: Option<Vec<u8>>,
    /// The email address, sealed.
    pub sealed_email: Option<Vec<u8>>,
    /// When the broker stored it.
    pub now: OffsetDateTime,
}

/// Stores a consent and marks the traveller's earlier live consents superseded by it.
/// Returns the ids of the records it superseded.
#[instrument(skip_all)]
pub async fn insert(conn: &mut Conn, consent: NewConsent<'_>) -> Result<Vec<String>, StoreError> {
    let superseded: Vec<String> = sqlx::query(
        "SELECT id FROM consents WHERE traveller_id = $1 AND state = $2 ORDER BY created_at",
    )
    .bind(consent.traveller_id)
    .bind(ConsentState::Given.as_str())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.get("id"))
    .collect();
    sqlx::query(
        "INSERT INTO consents (id, traveller_id, agency_id, state, purposes, carriers, collected_at, valid_until, \
         notice_version, collection_method, key_id, signature, sealed_statement, sealed_mobile, sealed_email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(consent.id)
    .bind(consent.traveller_id)
    .bind(consent.agency_id)
    .bind(ConsentState::Given.as_str())
    .bind(join(consent.purposes.iter().map(|p| p.as_str())))
    .bind(join(consent.carriers.iter().map(|c| c.as_str())))
    .bind(to_millis(consent.collected_at))
    .bind(consent.valid_until.map(to_millis))
    .bind(consent.notice_version)
    .bind(consent.collection_method)
    .bind(consent.key_id)
    .bind(consent.signature)
    .bind(consent.sealed_statement)
    .bind(consent.sealed_mobile)
    .bind(consent.sealed_email)
    .bind(to_millis(consent.now))
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE consents SET state = $1, superseded_by = $2 WHERE traveller_id = $3 AND state = $4 AND id <> $2")
        .bind(ConsentState::Superseded.as_str())
        .bind(consent.id)
        .bind(consent.traveller_id)
        .bind(ConsentState::Given.as_str())
        .execute(conn)
        .await?;
    Ok(superseded)
}

fn join<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.collect::<Vec<_>>().join(",")
}

/// A traveller an airline named, on a flight it carries, with their live consent.
#[derive(Debug, Clone)]
pub struct FlightTraveller {
    /// The agency that holds the booking.
    pub agency_id: String,
    /// The booking.
    pub booking_id: String,
    /// The traveller.
    pub traveller_id: String,
    /// The traveller's live consent record and what it allows, if any.
    pub consent: Option<(String, ConsentScope)>,
}

/// Finds the travellers with this name index on a booking with this locator that
/// includes this flight. More than one only if two agencies share a locator.
#[instrument(skip_all)]
pub async fn find_on_flight(
    conn: &mut Conn,
    locator: &RecordLocator,
    name_index: &[u8],
    flight: &Flight,
) -> Result<Vec<FlightTraveller>, StoreError> {
    let rows = sqlx::query(
        "SELECT b.agency_id, b.id AS booking_id, t.id AS traveller_id, c.id AS consent_id, c.state, c.purposes, \
         c.carriers, c.valid_until \
         FROM bookings b \
         JOIN segments s ON s.booking_id = b.id \
         JOIN travellers t ON t.booking_id = b.id \
         LEFT JOIN consents c ON c.traveller_id = t.id AND c.state = $1 \
         WHERE b.record_locator = $2 AND s.carrier = $3 AND s.flight_number = $4 AND s.departure_date = $5 \
         AND t.name_index = $6",
    )
    .bind(ConsentState::Given.as_str())
    .bind(locator.as_str())
    .bind(flight.carrier.as_str())
    .bind(flight.flight_number.as_str())
    .bind(flight.date.as_string())
    .bind(name_index)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let consent_id: Option<String> = row.get("consent_id");
            let consent = match consent_id {
                Some(id) => Some((id, scope_from_row(row)?)),
                None => None,
            };
            Ok(FlightTraveller {
                agency_id: row.get("agency_id"),
                booking_id: row.get("booking_id"),
                traveller_id: row.get("traveller_id"),
                consent,
            })
        })
        .collect()
}

/// What a stored consent allows now, read fresh (for redemption time).
#[instrument(skip_all)]
pub async fn scope(conn: &mut Conn, consent_id: &str) -> Result<ConsentScope, StoreError> {
    let row =
        sqlx::query("SELECT state, purposes, carriers, valid_until FROM consents WHERE id = $1")
            .bind(consent_id)
            .fetch_one(conn)
            .await?;
    scope_from_row(&row)
}

fn scope_from_row(row: &sqlx::any::AnyRow) -> Result<ConsentScope, StoreError> {
    let state: String = row.get("state");
    let purposes: String = row.get("purposes");
    let carriers: String = row.get("carriers");
    let valid_until: Option<i64> = row.get("valid_until");
    Ok(ConsentScope {
        state: ConsentState::from_word(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("consent state {state}")))?,
        purposes: purposes
            .split(',')
            .map(|w| {
                Purpose::from_word(w).ok_or_else(|| StoreError::Corrupt(format!("purpose {w}")))
            })
            .collect::<Result<_, _>>()?,
        carriers: carriers
            .split(',')
            .map(|c| CarrierCode::parse(c).map_err(|_| StoreError::Corrupt(format!("carrier {c}"))))
            .collect::<Result<_, _>>()?,
        valid_until: valid_until.map(from_millis).transpose()?,
    })
}

/// A consent's sealed contacts.
#[derive(Debug)]
pub struct SealedContacts {
    /// The mobile number, sealed for (`consents`, `mobile`, consent id).
    pub mobile: Option<Vec<u8>>,
    /// The email address, sealed for (`consents`, `email`, consent id).
    pub email: Option<Vec<u8>>,
}

/// Reads a consent's sealed contacts.
#[instrument(skip_all)]
pub async fn sealed_contacts(
    conn: &mut Conn,
    consent_id: &str,
) -> Result<SealedContacts, StoreError> {
    let row = sqlx::query("SELECT sealed_mobile, sealed_email FROM consents WHERE id = $1")
        .bind(consent_id)
        .fetch_one(conn)
        .await?;
    Ok(SealedContacts {
        mobile: row.get("sealed_mobile"),
        email: row.get("sealed_email"),
    })
}
