//! Taking consent records in: the checks every record passes, whatever format it came
//! in (one JSON upload, a JSON array, NDJSON, CSV or PNR SSR lines).
//!
//! A batch goes through three steps. First the checks that need no database: the
//! statement parses and keeps its cross-field rules, the signature is a detached
//! EdDSA JWS. Then the signatures are verified, on every core, against the agency's
//! live keys. Last, in the caller's transaction, each record is found to be a
//! duplicate (same canonical statement already stored) or stored with its audit entry.
//! A record that fails a check is reported with its field and reason and writes
//! nothing; the others are not held back by it unless the batch is atomic.

pub mod batch;
pub mod csv;
pub mod read;
pub mod report;
pub mod run;
pub mod single;
pub mod ssr;
pub mod turns;
mod verify;
mod write;

pub use verify::{verify, verify_checked, Verifieds};
pub use write::{purge_after, StoreVerified};

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::countersign::{self, Countersigned};
use crate::crypto::keyring::Keys;
use crate::crypto::seal::{Slot, TRAVELLER_NAME_INDEX};
use crate::crypto::{canonical, jws, secret, sha256};
use crate::domain::booking::{RecordLocator, Segment};
use crate::domain::consent::{ConsentStatement, Decision, Recipients};
use crate::domain::ids::{hex, new_id, CONSENT};
use crate::domain::party::{IataAgencyNumber, Party};
use crate::domain::receipt::{self, ReceiptFacts};
use crate::service::input::parse_value;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::{consents, parties};
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Prefix of the withdrawal codes handed to travellers.
pub const WITHDRAWAL_CODE_PREFIX: &str = "pas_wd_";

/// One record as submitted: the statement and the agency's detached JWS over its
/// canonical form.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The statement, as signed.
    pub statement: Value,
    /// The signature, if the submission carried one.
    pub signature: Option<String>,
}

/// Who is uploading, and when.
#[derive(Debug, Clone)]
pub struct Uploader {
    /// The agency.
    pub agency: Party,
    /// Its IATA number.
    pub iata: IataAgencyNumber,
    /// Its display name, for receipts.
    pub name: String,
    /// The request.
    pub request_id: String,
    /// The time of the request.
    pub now: OffsetDateTime,
}

impl Uploader {
    /// Reads what receipts need of the agency.
    pub async fn new(state: &AppState, agency: &Party, request_id: &str) -> Result<Self, Error> {
        let code = agency.code.as_deref().unwrap_or_default();
        let iata = IataAgencyNumber::parse(code).map_err(|_| {
            Error::internal(format!("agency {} has no valid IATA number", agency.id))
        })?;
        let mut conn = state.store.reader().acquire().await?;
        let name = parties::name(&mut conn, &agency.id).await?;
        Ok(Self {
            agency: agency.clone(),
            iata,
            name,
            request_id: request_id.to_string(),
            now: state.clock.now(),
        })
    }
}

/// What became of one record.
#[derive(Debug)]
pub enum RecordOutcome {
    /// Stored as a new record (or a new version of one).
    Stored(Box<StoredRecord>),
    /// The same statement was stored before: nothing new was written.
    Duplicate {
        /// The record already stored.
        consent_id: String,
    },
    /// Refused; nothing of it was written.
    Rejected(Error),
}

/// A record just stored.
#[derive(Debug)]
pub struct StoredRecord {
    /// The broker's id.
    pub consent_id: String,
    /// Its version among records with the same agency record id.
    pub version: i64,
    /// The booking.
    pub booking_id: String,
    /// The traveller.
    pub traveller_id: String,
    /// Records it replaced.
    pub supersedes: Vec<String>,
    /// Given or refused.
    pub decision: Decision,
    /// The agency key that signed it.
    pub key_id: String,
    /// The traveller's withdrawal code: shown once, stored hashed.
    pub withdrawal_code: Option<String>,
    /// The countersigned receipt.
    pub receipt: Countersigned,
    /// The audit entry that records it.
    pub audit_index: i64,
}

/// One record's result, with the agency's record id when the statement got that far.
#[derive(Debug)]
pub struct RecordResult {
    /// The agency's record id.
    pub record_id: Option<String>,
    /// What became of it.
    pub outcome: RecordOutcome,
}

/// A record that passed the checks needing no database: its canonical form (what the
/// agency signed), its record id and its signature parsed. What a batch keeps of a
/// record while it reads the rest: neither the JSON it came as nor its typed
/// statement, which is read again from the canonical form when it is stored, a chunk
/// at a time (a typed statement takes about as much memory again).
pub struct Checked {
    canonical: Vec<u8>,
    record_id: String,
    signature: String,
    kid: String,
}

/// A checked record being stored: its statement typed again.
struct Parsed {
    statement: ConsentStatement,
    canonical: Vec<u8>,
    signature: String,
    kid: String,
}

impl Checked {
    /// The statement, read again from the canonical form that passed the checks.
    fn parse(self) -> Result<Parsed, crate::store::StoreError> {
        let statement = serde_json::from_slice(&self.canonical).map_err(|e| {
            crate::store::StoreError::Corrupt(format!(
                "a checked statement does not read again: {e}"
            ))
        })?;
        Ok(Parsed {
            statement,
            canonical: self.canonical,
            signature: self.signature,
            kid: self.kid,
        })
    }
}

impl Checked {
    /// The agency's record id.
    pub fn record_id(&self) -> &str {
        &self.record_id
    }
}

/// The checks that need no database: the statement parses into its types and keeps
/// its cross-field rules, the signature is a detached EdDSA JWS.
pub fn check(uploader: &Uploader, submission: Submission) -> Result<Checked, Error> {
    let statement: ConsentStatement = parse_value(&submission.statement, "statement")?;
    statement.check(&uploader.iata, uploader.now).map_err(|e| {
        let kind = if e.non_operational_purpose {
            ErrorKind::PurposeNotOperational
        } else {
            ErrorKind::InvalidField
        };
        Error::field(kind, format!("statement.{}", e.field), e.reason)
    })?;
    let signature = submission.signature.ok_or_else(|| {
        Error::field(
            ErrorKind::MalformedSignature,
            "signature",
            "is missing: sign the canonical (RFC 8785) statement with one of your keys",
        )
    })?;
    let kid = jws::parse(&signature)
        .map_err(|e| Error::field(ErrorKind::MalformedSignature, "signature", e.to_string()))?
        .kid;
    Ok(Checked {
        canonical: canonical::to_vec(&submission.statement),
        record_id: statement.record_id.as_str().to_string(),
        signature,
        kid,
    })
}

/// The entry of one uploaded record, by the uploading agency.
fn upload_entry(uploader: &Uploader) -> NewEntry {
    NewEntry::new(
        uploader.now,
        &uploader.request_id,
        &uploader.agency,
        Action::ConsentUpload,
        Outcome::Recorded,
    )
    .agency(uploader.agency.id.clone())
}
