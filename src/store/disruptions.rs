//! Disruptions and the flights they carry (`disruptions`, `disruption_flights`).
//!
//! Every read is scoped to the party asking: an airline sees its own, an agency those
//! carrying a flight one of its bookings is on, an officer all of them.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, Conn, Param, StoreError};
use crate::domain::booking::{Airport, CarrierCode, Flight, FlightDate, FlightNumber};
use crate::domain::disruption::{Closure, Disruption, DisruptionState};
use crate::domain::purpose::EventCategory;
use time::OffsetDateTime;
use tracing::instrument;

/// Whose disruptions a read may see.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// The airline's own.
    Airline(&'a str),
    /// Those carrying a flight a booking of the agency is on.
    Agency(&'a str),
    /// Those carrying a flight of the traveller's booking.
    Traveller(&'a str),
    /// All of them.
    Officer,
}

const COLUMNS: &str =
    "d.id, d.airline_id, d.category, d.reference, d.occurred_at, d.new_departure, \
     d.note, d.state, d.revision, d.declared_at, d.updated_at, d.closed_at, \
     d.closure_airport, d.closure_from, d.closure_until";

/// Stores a new disruption and its flights. `false`, storing nothing, when the
/// airline already declared one with this reference.
#[instrument(skip_all)]
pub async fn insert(conn: &mut Conn, d: &Disruption) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO disruptions (id, airline_id, category, reference, occurred_at, new_departure, \
         note, state, revision, declared_at, updated_at, closed_at, \
         closure_airport, closure_from, closure_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (airline_id, reference) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.airline_id)
    .bind(d.category.as_str())
    .bind(&d.reference)
    .bind(to_millis(d.occurred_at))
    .bind(d.new_departure.map(to_millis))
    .bind(&d.note)
    .bind(d.state.as_str())
    .bind(d.revision)
    .bind(to_millis(d.declared_at))
    .bind(to_millis(d.updated_at))
    .bind(d.closed_at.map(to_millis))
    .bind(d.closure.as_ref().map(|c| c.airport.as_str().to_string()))
    .bind(d.closure.as_ref().map(|c| c.from.as_string()))
    .bind(d.closure.as_ref().map(|c| c.until.as_string()))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for flight in &d.flights {
        sqlx::query(
            "INSERT INTO disruption_flights (disruption_id, carrier, flight_number, departure_date) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&d.id)
        .bind(flight.carrier.as_str())
        .bind(flight.flight_number.as_str())
        .bind(flight.date.as_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// The id of the airline's disruption with this reference, if it declared one.
#[instrument(skip_all)]
pub async fn id_by_reference(
    conn: &mut Conn,
    airline_id: &str,
    reference: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM disruptions WHERE airline_id = $1 AND reference = $2")
            .bind(airline_id)
            .bind(reference)
            .fetch_optional(conn)
            .await?,
    )
}

/// The disruption with this id, if `seen` may see it.
#[instrument(skip_all)]
pub async fn by_id(
    db: &mut impl Db,
    seen: Seen<'_>,
    id: &str,
) -> Result<Option<Disruption>, StoreError> {
    let (scope, party) = scope(seen, "$2");
    let sql = format!("SELECT {COLUMNS} FROM disruptions d WHERE d.id = $1{scope}");
    let mut params = vec![Param::Text(id.to_string())];
    params.extend(party.map(|p| Param::Text(p.to_string())));
    let found = db.optional(&sql, params, |row| from_row(row)).await?;
    let Some(mut found) = found else {
        return Ok(None);
    };
    found.flights = flights_of(db, &found.id).await?;
    Ok(Some(found))
}

/// A page of the disruptions `seen` may see, newest declared first, before
/// `before` (a `declared_at` in milliseconds and an id, from the previous page).
#[instrument(skip_all)]
pub async fn list(
    db: &mut impl Db,
    seen: Seen<'_>,
    open_only: bool,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<Disruption>, StoreError> {
    let (scope, party) = scope(seen, "$1");
    let mut sql = format!("SELECT {COLUMNS} FROM disruptions d WHERE 1 = 1{scope}");
    let mut params: Vec<Param> = party
        .map(|p| Param::Text(p.to_string()))
        .into_iter()
        .collect();
    if open_only {
        sql.push_str(" AND d.state <> 'closed'");
    }
    if let Some((at, id)) = before {
        let next = params.len() + 1;
        sql.push_str(&format!(
            " AND (d.declared_at < ${next} OR (d.declared_at = ${next} AND d.id < ${}))",
            next + 1
        ));
        params.extend([Param::Int(at), Param::Text(id.to_string())]);
    }
    sql.push_str(&format!(
        " ORDER BY d.declared_at DESC, d.id DESC LIMIT {}",
        limit.max(1)
    ));
    let mut found = db.all(&sql, params, |row| from_row(row)).await?;
    for d in &mut found {
        d.flights = flights_of(db, &d.id).await?;
    }
    Ok(found)
}

/// Where a disruption stands now and its revision, read inside the writer to check
/// that what a grant was decided on still holds.
#[instrument(skip_all)]
pub async fn state_of(
    db: &mut impl Db,
    id: &str,
) -> Result<Option<(DisruptionState, i64)>, StoreError> {
    db.optional(
        "SELECT state, revision FROM disruptions WHERE id = $1",
        vec![Param::Text(id.to_string())],
        |row| {
            let state: String = row.value("state");
            Ok((parse_state(&state)?, row.value("revision")))
        },
    )
    .await
}

/// Writes a disruption's new category, time, note and state as its next revision,
/// if it is still at `revision` and not closed. `false` when it moved on meanwhile.
#[instrument(skip_all)]
pub async fn save_revision(
    conn: &mut Conn,
    d: &Disruption,
    revision: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE disruptions SET category = $1, new_departure = $2, note = $3, state = $4, \
         revision = $5, updated_at = $6, closed_at = $7 \
         WHERE id = $8 AND revision = $9 AND state <> 'closed'",
    )
    .bind(d.category.as_str())
    .bind(d.new_departure.map(to_millis))
    .bind(&d.note)
    .bind(d.state.as_str())
    .bind(d.revision)
    .bind(to_millis(d.updated_at))
    .bind(d.closed_at.map(to_millis))
    .bind(&d.id)
    .bind(revision)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every token still usable that was granted under the disruption. Returns
/// how many.
#[instrument(skip_all)]
pub async fn revoke_tokens(
    conn: &mut Conn,
    id: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE release_tokens SET revoked_at = $1, revoked_reason = 'disruption_closed' \
         WHERE event_reference = $2 AND revoked_at IS NULL AND uses_left > 0 AND expires_at > $1",
    )
    .bind(to_millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The clause that scopes a read to `seen`, with its parameter at `slot`.
fn scope<'a>(seen: Seen<'a>, slot: &str) -> (String, Option<&'a str>) {
    match seen {
        Seen::Airline(id) => (format!(" AND d.airline_id = {slot}"), Some(id)),
        Seen::Agency(id) => (
            format!(
                " AND EXISTS (SELECT 1 FROM disruption_flights f JOIN segments s \
                 ON s.carrier = f.carrier AND s.flight_number = f.flight_number \
                 AND s.departure_date = f.departure_date \
                 JOIN bookings b ON b.id = s.booking_id \
                 WHERE f.disruption_id = d.id AND b.agency_id = {slot})"
            ),
            Some(id),
        ),
        Seen::Traveller(id) => (
            format!(
                " AND EXISTS (SELECT 1 FROM disruption_flights f JOIN segments s \
                 ON s.carrier = f.carrier AND s.flight_number = f.flight_number \
                 AND s.departure_date = f.departure_date \
                 JOIN travellers t ON t.booking_id = s.booking_id \
                 WHERE f.disruption_id = d.id AND t.id = {slot})"
            ),
            Some(id),
        ),
        Seen::Officer => (String::new(), None),
    }
}

async fn flights_of(db: &mut impl Db, id: &str) -> Result<Vec<Flight>, StoreError> {
    let mut flights = Vec::new();
    db.for_each(
        "SELECT carrier, flight_number, departure_date FROM disruption_flights \
         WHERE disruption_id = $1 ORDER BY departure_date, carrier, flight_number",
        vec![Param::Text(id.to_string())],
        |row| {
            let corrupt = |what: &str| StoreError::Corrupt(format!("disruption flight {what}"));
            let (carrier, number, date): (String, String, String) = (
                row.value("carrier"),
                row.value("flight_number"),
                row.value("departure_date"),
            );
            flights.push(Flight {
                carrier: CarrierCode::parse(&carrier).map_err(|_| corrupt("carrier"))?,
                flight_number: FlightNumber::parse(&number).map_err(|_| corrupt("number"))?,
                date: FlightDate::parse(&date).map_err(|_| corrupt("date"))?,
            });
            Ok(())
        },
    )
    .await?;
    Ok(flights)
}

fn parse_state(word: &str) -> Result<DisruptionState, StoreError> {
    DisruptionState::from_word(word)
        .ok_or_else(|| StoreError::Corrupt(format!("disruption state {word}")))
}

fn from_row(row: &impl Columns) -> Result<Disruption, StoreError> {
    let category: String = row.value("category");
    let state: String = row.value("state");
    let new_departure: Option<i64> = row.value("new_departure");
    let closed_at: Option<i64> = row.value("closed_at");
    Ok(Disruption {
        id: row.value("id"),
        airline_id: row.value("airline_id"),
        category: EventCategory::from_word(&category)
            .ok_or_else(|| StoreError::Corrupt(format!("disruption category {category}")))?,
        reference: row.value("reference"),
        occurred_at: from_millis(row.value("occurred_at"))?,
        new_departure: new_departure.map(from_millis).transpose()?,
        note: row.value("note"),
        state: parse_state(&state)?,
        revision: row.value("revision"),
        declared_at: from_millis(row.value("declared_at"))?,
        updated_at: from_millis(row.value("updated_at"))?,
        closed_at: closed_at.map(from_millis).transpose()?,
        flights: Vec::new(),
        closure: closure_of(row)?,
    })
}

/// The closure a disruption was declared as, if it was.
fn closure_of(row: &impl Columns) -> Result<Option<Closure>, StoreError> {
    let airport: Option<String> = row.value("closure_airport");
    let Some(airport) = airport else {
        return Ok(None);
    };
    let corrupt = |e: String| StoreError::Corrupt(format!("a disruption's closure: {e}"));
    let date = |column: &str| {
        let text: Option<String> = row.value(column);
        FlightDate::parse(&text.unwrap_or_default()).map_err(corrupt)
    };
    Ok(Some(Closure {
        airport: Airport::parse(&airport).map_err(corrupt)?,
        from: date("closure_from")?,
        until: date("closure_until")?,
    }))
}

/// The last audited step under a disruption for one traveller: a grant or its
/// refusal, a relayed message, its delivery, a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastStep {
    /// When.
    pub at: OffsetDateTime,
    /// The entry's action (`token_request`, `message_relay`, …).
    pub action: String,
    /// Its outcome (`granted`, `refused`, `queued`, `delivered`, …).
    pub outcome: String,
    /// Why, for a refusal or a failure.
    pub reason: Option<String>,
}

/// Travellers looked up per statement.
const TRAVELLERS_PER_READ: usize = 500;

/// The last step under disruption `id` of each of `travellers` (of `agency_id`), by
/// traveller id; a traveller with none is left out. Read through each traveller's
/// entries (indexed by traveller), never by scanning the agency's.
pub async fn last_steps(
    db: &mut impl Db,
    id: &str,
    agency_id: &str,
    travellers: &[&str],
) -> Result<std::collections::HashMap<String, LastStep>, StoreError> {
    let mut found = std::collections::HashMap::with_capacity(travellers.len());
    for chunk in travellers.chunks(TRAVELLERS_PER_READ) {
        // Placeholders numbered in the order they appear (SQLite numbers `$N` so).
        let mut params = Vec::with_capacity(chunk.len() + 2);
        let list = super::text_list(&mut params, chunk);
        let reference = super::arg(&mut params, Param::Text(id.to_string()));
        let agency = super::arg(&mut params, Param::Text(agency_id.to_string()));
        let sql = format!(
            "SELECT traveller_id, at, action, outcome, reason FROM audit_entries WHERE idx IN \
             (SELECT MAX(idx) FROM audit_entries WHERE traveller_id IN ({}) \
             AND event_reference = {reference} AND agency_id = {agency} GROUP BY traveller_id)",
            list
        );
        db.for_each(&sql, params, |row| {
            let traveller: String = row.value("traveller_id");
            found.insert(
                traveller,
                LastStep {
                    at: from_millis(row.value("at"))?,
                    action: row.value("action"),
                    outcome: row.value("outcome"),
                    reason: row.value("reason"),
                },
            );
            Ok(())
        })
        .await?;
    }
    Ok(found)
}
