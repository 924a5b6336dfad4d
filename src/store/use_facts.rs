//! Everything deciding a use of a token needs, in one statement: the token, the
//! traveller with the state of the very record it was granted under and its booking's
//! itinerary, and that record's sealed contacts.
//!
//! A use is the call a disruption makes thousands of times a second. Read as four
//! statements (token, traveller, itinerary, sealed contacts), each one is a hand-off to
//! the database's worker and back; joined, the row repeats the token and traveller once
//! per segment of the booking, a few rows for one hand-off.

use super::release::{facts_from_row, Itinerary, ReleaseFacts, TRAVELLER_COLUMNS};
use super::sealed::{sealed_from_row, SealedRecord};
use super::tokens::{token_from_row, TokenRecord, TOKEN_COLUMNS};
use super::{Conn, StoreError};
use sqlx::Row;
use std::sync::LazyLock;
use tracing::instrument;

/// A token with what a use of it is decided on.
#[derive(Debug)]
pub struct UseFacts {
    /// The token.
    pub token: TokenRecord,
    /// The traveller, with the record the token was granted under.
    pub facts: ReleaseFacts,
    /// That record's sealed contacts (without its statement).
    pub sealed: SealedRecord,
}

/// The statement, written once: a use is the hottest read there is.
static FOR_USE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TOKEN_COLUMNS}, {TRAVELLER_COLUMNS}, \
         c.key_master, c.wrapped_key, c.purged_at, c.sealed_mobile, c.sealed_email, \
         s.carrier AS segment_carrier, s.departure_date AS segment_date \
         FROM release_tokens rt JOIN consents c ON c.id = rt.consent_id \
         JOIN travellers t ON t.id = c.traveller_id JOIN bookings b ON b.id = t.booking_id \
         JOIN parties p ON p.id = b.agency_id LEFT JOIN segments s ON s.booking_id = b.id \
         WHERE rt.id = $1"
    )
});

/// Reads a token by its public id with everything a use of it is decided on; `None`
/// for an unknown token.
#[instrument(skip_all)]
pub async fn for_use(conn: &mut Conn, token_id: &str) -> Result<Option<UseFacts>, StoreError> {
    let rows = sqlx::query(&FOR_USE).bind(token_id).fetch_all(conn).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut facts = facts_from_row(first)?;
    let mut itinerary = Itinerary::default();
    for row in &rows {
        if let Some(carrier) = row.get::<Option<String>, _>("segment_carrier") {
            let date: String = row.get("segment_date");
            itinerary.add(carrier, &date)?;
        }
    }
    itinerary.apply(&mut facts);
    Ok(Some(UseFacts {
        token: token_from_row(first)?,
        facts,
        sealed: sealed_from_row(first, false),
    }))
}
