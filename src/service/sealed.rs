//! Opening what is sealed: a record's contacts and statement (under its own record
//! key, or the root key for records stored before record keys existed), and where a
//! relayed message's words are sealed in the outbox.

use crate::crypto::seal::{SealingKey, Slot};
use crate::service::{AppState, Error};
use crate::store::sealed::SealedRecord;
use serde::{Deserialize, Serialize};

/// The key a record's values are sealed under: its own record key, or for records
/// stored before record keys existed, the root key's sealing sub-key. `None` once
/// purged.
fn record_key(
    state: &AppState,
    id: &str,
    sealed: &SealedRecord,
) -> Result<Option<RecordKey>, Error> {
    if sealed.purged_at.is_some() {
        return Ok(None);
    }
    match &sealed.wrapped_key {
        Some(wrapped) => state
            .keys
            .open_record_key(id, wrapped)
            .map(|k| Some(RecordKey::Own(Box::new(k))))
            .map_err(|e| Error::internal(format!("record key of {id}: {e}"))),
        None => Ok(Some(RecordKey::Root)),
    }
}

enum RecordKey {
    Own(Box<SealingKey>),
    Root,
}

fn open_value(
    state: &AppState,
    key: &RecordKey,
    id: &str,
    column: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, Error> {
    let slot = Slot {
        table: "consents",
        column,
        row_id: id,
    };
    match key {
        RecordKey::Own(k) => k.open(slot, sealed),
        RecordKey::Root => state.keys.keys().root().open(slot, sealed),
    }
    .map_err(|e| Error::internal(format!("{column} of {id}: {e}")))
}

/// The contacts of record `id`, read and opened; `None` once purged.
pub async fn record_contacts(state: &AppState, id: &str) -> Result<Option<Contacts>, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let sealed = crate::store::sealed::sealed(&mut conn, id).await?;
    open_contacts(state, id, &sealed)
}

/// A record's contacts, opened.
pub struct Contacts {
    /// E.164 mobile number.
    pub mobile: Option<String>,
    /// Email address.
    pub email: Option<String>,
}

/// Opens a record's contacts; `None` once purged.
pub fn open_contacts(
    state: &AppState,
    id: &str,
    sealed: &SealedRecord,
) -> Result<Option<Contacts>, Error> {
    let Some(key) = record_key(state, id, sealed)? else {
        return Ok(None);
    };
    let open = |column: &str, value: &Option<Vec<u8>>| -> Result<Option<String>, Error> {
        value
            .as_deref()
            .map(|v| {
                String::from_utf8(open_value(state, &key, id, column, v)?)
                    .map_err(|_| Error::internal(format!("{column} of {id} is not UTF-8")))
            })
            .transpose()
    };
    Ok(Some(Contacts {
        mobile: open("mobile", &sealed.mobile)?,
        email: open("email", &sealed.email)?,
    }))
}

/// Opens a record's canonical statement; `None` once purged.
pub fn open_statement(
    state: &AppState,
    id: &str,
    sealed: &SealedRecord,
) -> Result<Option<Vec<u8>>, Error> {
    let (Some(key), Some(value)) = (record_key(state, id, sealed)?, &sealed.statement) else {
        return Ok(None);
    };
    open_value(state, &key, id, "statement", value).map(Some)
}

/// What is sealed in the outbox: the words, not the recipient.
#[derive(Serialize, Deserialize, Debug)]
pub struct MessageBody {
    /// Email subject.
    pub subject: Option<String>,
    /// The text.
    pub text: String,
    /// The flight, for the default subject.
    pub flight: String,
}

/// Where a message's body is sealed.
pub fn body_slot(message_id: &str) -> Slot<'_> {
    Slot {
        table: "messages",
        column: "body",
        row_id: message_id,
    }
}
