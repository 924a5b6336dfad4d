//! Bookings, their segments and travellers, as consent records name them.

use super::db::Db;
use super::row::Columns;
use super::{to_millis, values_rows, Conn, Param, StoreError};
use crate::domain::booking::{Airport, RecordLocator, Segment};
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
    db: &mut impl Db,
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
            values_rows(db.placeholders(), chunk.len(), 4)
        );
        let mut params = Vec::with_capacity(chunk.len() * 4);
        for locator in chunk {
            params.extend([
                Param::Text(new_id(BOOKING)),
                Param::Text(agency_id.to_string()),
                Param::Text(locator.as_str().to_string()),
                Param::Int(to_millis(now)),
            ]);
        }
        db.for_each(&sql, params, |row| {
            ids.insert(row.value("record_locator"), row.value("id"));
            Ok(())
        })
        .await?;
    }
    Ok(ids)
}

/// Adds segments to bookings, keeping those already there; a segment listed again
/// with its airports gains those it lacked.
#[instrument(skip_all)]
pub async fn add_segments(
    db: &mut impl Db,
    segments: &[(&str, &Segment)],
) -> Result<(), StoreError> {
    const COLUMNS: usize = 6;
    // Each segment once, with the airports any of its listings gave: PostgreSQL
    // refuses an upsert that changes one row twice, and the travellers of one booking
    // list the same segments.
    let mut rows: Vec<[Param; COLUMNS]> = Vec::with_capacity(segments.len());
    let mut at = std::collections::HashMap::new();
    for (booking_id, s) in segments {
        let key = (
            *booking_id,
            s.carrier.as_str(),
            s.flight_number.as_str(),
            s.date,
        );
        let airport = |a: &Option<Airport>| Param::text(a.as_ref().map(|a| a.as_str().to_string()));
        match at.get(&key) {
            Some(&i) => {
                let row: &mut [Param; COLUMNS] = &mut rows[i];
                if matches!(row[4], Param::NullText) {
                    row[4] = airport(&s.origin);
                }
                if matches!(row[5], Param::NullText) {
                    row[5] = airport(&s.destination);
                }
            }
            None => {
                at.insert(key, rows.len());
                rows.push([
                    Param::Text((*booking_id).to_string()),
                    Param::Text(s.carrier.as_str().to_string()),
                    Param::Text(s.flight_number.as_str().to_string()),
                    Param::Text(s.date.as_string()),
                    airport(&s.origin),
                    airport(&s.destination),
                ]);
            }
        }
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<[Param; COLUMNS]> = rows.by_ref().take(UPSERT_ROWS).collect();
        let sql = format!(
            "INSERT INTO segments (booking_id, carrier, flight_number, departure_date, origin, destination) \
             VALUES {} ON CONFLICT (booking_id, carrier, flight_number, departure_date) DO UPDATE \
             SET origin = COALESCE(excluded.origin, segments.origin), \
             destination = COALESCE(excluded.destination, segments.destination)",
            values_rows(db.placeholders(), chunk.len(), COLUMNS)
        );
        let params: Vec<Param> = chunk.into_iter().flatten().collect();
        db.execute(&sql, params).await?;
    }
    Ok(())
}

/// The distinct flights of `carrier` departing from `from` to `to` (dates,
/// `YYYY-MM-DD`, inclusive) that any booking in the broker holds: the airline's
/// schedule as the broker knows it.
#[instrument(skip_all)]
pub async fn flights_operated(
    conn: &mut Conn,
    carrier: &str,
    from: &str,
    to: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT flight_number, departure_date FROM segments \
         WHERE carrier = $1 AND departure_date >= $2 AND departure_date <= $3) AS flights",
    )
    .bind(carrier)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?)
}

/// The airline's flights (`carrier`) departing from `from` to `until` (dates,
/// inclusive) that fly from or to `airport`, as the bookings' segments say: what an
/// airport's closure disrupts. At most `limit`, in date and number order.
#[instrument(skip_all)]
pub async fn flights_at_airport(
    conn: &mut Conn,
    carrier: &str,
    airport: &str,
    from: &str,
    until: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT flight_number, departure_date FROM segments \
         WHERE carrier = $1 AND departure_date >= $2 AND departure_date <= $3 \
         AND (origin = $4 OR destination = $4) \
         ORDER BY departure_date, flight_number LIMIT $5",
    )
    .bind(carrier)
    .bind(from)
    .bind(until)
    .bind(airport)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("flight_number"), r.get("departure_date")))
        .collect())
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
    db: &mut impl Db,
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
            values_rows(db.placeholders(), chunk.len(), 5)
        );
        let mut params = Vec::with_capacity(chunk.len() * 5);
        for ((booking_id, name_index), id) in chunk.iter().zip(&proposed) {
            params.extend([
                Param::Text(id.clone()),
                Param::Text((*booking_id).to_string()),
                Param::Bytes(name_index.to_vec()),
                Param::Bytes(Vec::new()),
                Param::Int(to_millis(now)),
            ]);
        }
        let proposed: std::collections::HashSet<&String> = proposed.iter().collect();
        db.for_each(&sql, params, |row| {
            let id: String = row.value("id");
            let created = proposed.contains(&id);
            found.insert(
                (row.value("booking_id"), row.value("name_index")),
                TravellerRow { id, created },
            );
            Ok(())
        })
        .await?;
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
