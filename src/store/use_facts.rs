//! Everything deciding a use of a token needs, in one statement: the token, the
//! traveller with the state of the very record it was granted under and its booking's
//! itinerary, and that record's sealed contacts.
//!
//! A use is the call a disruption makes thousands of times a second. Read as four
//! statements (token, traveller, itinerary, sealed contacts), each one is a hand-off to
//! the database's worker and back; joined, the row repeats the token and traveller once
//! per segment of the booking, a few rows for one hand-off.

use super::db::Db;
use super::release::{facts_from_row, Itinerary, ReleaseFacts, TRAVELLER_COLUMNS};
use super::row::Columns;
use super::sealed::{sealed_from_row, SealedRecord, CONTACT_COLUMNS};
use super::tokens::{token_from_row, TokenRecord, TOKEN_COLUMNS};
use super::{Param, Store, StoreError};
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

impl UseFacts {
    /// The same token and facts, without the sealed contacts: what a relay is decided
    /// on (it opens nothing), once per message sent under the token.
    pub fn for_relay(&self) -> UseFacts {
        UseFacts {
            token: self.token.clone(),
            facts: self.facts.clone(),
            sealed: SealedRecord::default(),
        }
    }
}

/// The statement, written once: a use is the hottest read there is.
static FOR_USE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TOKEN_COLUMNS}, {TRAVELLER_COLUMNS}, {CONTACT_COLUMNS}, \
         s.carrier AS segment_carrier, s.departure_date AS segment_date \
         FROM release_tokens rt JOIN consents c ON c.id = rt.consent_id \
         JOIN travellers t ON t.id = c.traveller_id JOIN bookings b ON b.id = t.booking_id \
         JOIN parties p ON p.id = b.agency_id LEFT JOIN segments s ON s.booking_id = b.id \
         WHERE rt.id = $1"
    )
});

/// Reads a token by its public id with everything a use of it is decided on, in the
/// caller's connection or transaction; `None` for an unknown token.
#[instrument(skip_all)]
pub async fn for_use(db: &mut impl Db, token_id: &str) -> Result<Option<UseFacts>, StoreError> {
    let mut read = Reading::default();
    db.for_each(&FOR_USE, vec![Param::Text(token_id.to_string())], |row| {
        read.add(row)
    })
    .await?;
    Ok(read.finish())
}

/// [`for_use`] outside any transaction, as the readers see it: on the SQLite file
/// directly when it can (the read every release and relay makes first, see
/// [`super::direct`]), else through the pool.
#[instrument(skip_all)]
pub async fn for_use_on_read(
    store: &Store,
    token_id: &str,
) -> Result<Option<UseFacts>, StoreError> {
    crate::store::direct::read_now!(store, |db| for_use(db, token_id))
}

/// The rows of [`FOR_USE`] gathered: the token and its traveller from the first, the
/// itinerary from every one (a row per segment).
#[derive(Default)]
struct Reading {
    first: Option<UseFacts>,
    itinerary: Itinerary,
}

impl Reading {
    fn add(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        if self.first.is_none() {
            self.first = Some(UseFacts {
                token: token_from_row(row)?,
                facts: facts_from_row(row)?,
                sealed: sealed_from_row(row, false),
            });
        }
        if let Some(carrier) = row.value::<Option<String>>("segment_carrier") {
            let date: String = row.value("segment_date");
            self.itinerary.add(carrier, &date)?;
        }
        Ok(())
    }

    fn finish(self) -> Option<UseFacts> {
        let mut read = self.first?;
        self.itinerary.apply(&mut read.facts);
        Some(read)
    }
}
