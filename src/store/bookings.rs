//! Bookings, their segments and travellers, as consent records name them.

use super::{to_millis, values_rows, Conn, Placeholders, StoreError};
use crate::domain::booking::{Flight, RecordLocator};
use crate::domain::ids::{new_id, BOOKING, TRAVELLER};
use sqlx::Row;
use std::collections::HashMap;
use time::OffsetDateTime;
use tracing::instrument;

/// Rows per multi-row upsert: a few hundred parameters a statement (SQLite looks a
/// numbered parameter up by scanning them all, so much longer statements bind slowly).
const UPSERT_ROWS: usize = 150;

/// The ids of the agency's bookings with these locators, creating those that are
/// new. Locators must be distinct.
///
/// The no-op update on conflict makes `RETURNING` answer for an existing booking
/// too: one statement per 150 bookings where an insert and a select per booking
/// were two.
#[instrument(skip_all)]
pub async fn upsert_bookings(
    conn: &mut Conn,
    agency_id: &str,
    locators: &[&RecordLocator],
    now: OffsetDateTime,
) -> Result<HashMap<String, String>, StoreError> {
    let mut ids = HashMap::with_capacity(locators.len());
    for chunk in locators.chunks(UPSERT_ROWS) {
        let sql = format!(
            "INSERT INTO bookings (id, agency_id, record_locator, created_at) VALUES {} \
             ON CONFLICT (agency_id, record_locator) DO UPDATE SET record_locator = excluded.record_locator \
             RETURNING id, record_locator",
            values_rows(Placeholders::of(conn), chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for locator in chunk {
            query = query
                .bind(new_id(BOOKING))
                .bind(agency_id)
                .bind(locator.as_str())
                .bind(to_millis(now));
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.get("record_locator"), row.get("id"));
        }
    }
    Ok(ids)
}

/// Adds segments to bookings, keeping those already there.
#[instrument(skip_all)]
pub async fn add_segments(conn: &mut Conn, segments: &[(&str, &Flight)]) -> Result<(), StoreError> {
    for chunk in segments.chunks(UPSERT_ROWS) {
        let sql = format!(
            "INSERT INTO segments (booking_id, carrier, flight_number, departure_date) VALUES {} \
             ON CONFLICT DO NOTHING",
            values_rows(Placeholders::of(conn), chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (booking_id, segment) in chunk {
            query = query
                .bind(*booking_id)
                .bind(segment.carrier.as_str())
                .bind(segment.flight_number.as_str())
                .bind(segment.date.as_string());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A traveller as [`upsert_travellers`] found or created them.
#[derive(Debug, Clone)]
pub struct TravellerRow {
    /// The traveller's id.
    pub id: String,
    /// Created by this call: a new traveller has no record yet.
    pub created: bool,
}

/// The travellers with these (booking id, name index) pairs, creating those that are
/// new. Pairs must be distinct. The name itself is not stored here (`sealed_name`
/// stays empty): it lives in each record's sealed statement, under the record's own
/// key.
#[instrument(skip_all)]
pub async fn upsert_travellers(
    conn: &mut Conn,
    travellers: &[(&str, &[u8])],
    now: OffsetDateTime,
) -> Result<HashMap<(String, Vec<u8>), TravellerRow>, StoreError> {
    let mut found = HashMap::with_capacity(travellers.len());
    for chunk in travellers.chunks(UPSERT_ROWS) {
        let proposed: Vec<String> = chunk.iter().map(|_| new_id(TRAVELLER)).collect();
        let sql = format!(
            "INSERT INTO travellers (id, booking_id, name_index, sealed_name, created_at) VALUES {} \
             ON CONFLICT (booking_id, name_index) DO UPDATE SET name_index = excluded.name_index \
             RETURNING id, booking_id, name_index",
            values_rows(Placeholders::of(conn), chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for ((booking_id, name_index), id) in chunk.iter().zip(&proposed) {
            query = query
                .bind(id)
                .bind(*booking_id)
                .bind(*name_index)
                .bind(Vec::<u8>::new())
                .bind(to_millis(now));
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let proposed: std::collections::HashSet<&String> = proposed.iter().collect();
        for row in rows {
            let id: String = row.get("id");
            let created = proposed.contains(&id);
            found.insert(
                (row.get("booking_id"), row.get("name_index")),
                TravellerRow { id, created },
            );
        }
    }
    Ok(found)
}

/// Sets (or, with `None`, clears back to the agency's default) the delivery of the
/// traveller of one of the agency's records. Returns whether the record is the
/// agency's.
#[instrument(skip_all)]
pub async fn set_traveller_delivery(
    conn: &mut Conn,
    agency_id: &str,
    consent_id: &str,
    delivery: Option<crate::domain::delivery::Delivery>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE travellers SET delivery = $1 WHERE id = \
         (SELECT traveller_id FROM consents WHERE id = $2 AND agency_id = $3)",
    )
    .bind(delivery.map(|d| d.as_str()))
    .bind(consent_id)
    .bind(agency_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
