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
pub mod read;
pub mod report;
pub mod run;
pub mod ssr;
pub mod turns;

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::countersign::{self, Countersigned};
use crate::crypto::keyring::Keys;
use crate::crypto::seal::{Slot, TRAVELLER_NAME_INDEX};
use crate::crypto::{canonical, jws, secret, sha256};
use crate::domain::booking::{Flight, RecordLocator};
use crate::domain::consent::{ConsentStatement, Decision, Recipients};
use crate::domain::ids::{hex, new_id, CONSENT};
use crate::domain::party::{IataAgencyNumber, Party};
use crate::domain::receipt::{self, ReceiptFacts};
use crate::service::input::parse_value;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::{consents, parties, Tx};
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

/// A batch's results, and the refusals to audit (appended by the caller, in this
/// transaction or, if it rolls back, in a new one).
pub struct BatchResults {
    /// One per submission, in order.
    pub results: Vec<RecordResult>,
    /// Audit entries of refused signatures.
    pub refusals: Vec<NewEntry>,
    /// (action, outcome, reason) of the entries already appended, for the metrics.
    pub appended: Vec<(&'static str, &'static str, &'static str)>,
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
    fn parse(self) -> Result<Parsed, Error> {
        let statement = serde_json::from_slice(&self.canonical).map_err(|e| {
            Error::internal(format!("a checked statement does not read again: {e}"))
        })?;
        Ok(Parsed {
            statement,
            canonical: self.canonical,
            signature: self.signature,
            kid: self.kid,
        })
    }
}

/// Submissions checked and their signatures verified, ready for [`process`].
pub struct Verifieds(Vec<Verified>);

impl Checked {
    /// The agency's record id.
    pub fn record_id(&self) -> &str {
        &self.record_id
    }
}

impl Verifieds {
    /// The records in groups of at most `size`, in order, to store a group at a time.
    pub fn into_chunks(self, size: usize) -> Vec<Verifieds> {
        let mut chunks = Vec::with_capacity(self.0.len().div_ceil(size.max(1)));
        let mut items = self.0.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(Verifieds(items.by_ref().take(size.max(1)).collect()));
        }
        chunks
    }

    /// How many records were refused by the checks or their signature.
    pub fn rejected(&self) -> usize {
        self.0.iter().filter(|v| v.is_err()).count()
    }

    /// Each record's agency record id (when read) and, if it was refused, why.
    pub fn verdicts(&self) -> impl Iterator<Item = (Option<&str>, Option<&Error>)> {
        self.0.iter().map(|v| match v {
            Ok(checked) => (Some(checked.record_id.as_str()), None),
            Err(rejection) => (rejection.record_id.as_deref(), Some(&rejection.problem)),
        })
    }

    /// The audit entries of the refused signatures, for a batch that stores nothing.
    pub fn refusals(&self, uploader: &Uploader) -> Vec<NewEntry> {
        self.0
            .iter()
            .filter_map(|v| v.as_ref().err()?.audit_reason)
            .map(|reason| upload_entry(uploader).refused(reason))
            .collect()
    }
}

/// Checks a batch's records and verifies their signatures, on the agency's keys as
/// the readers see them: the costly part of an upload, done before it waits for the
/// writer, so that one upload verifies while another stores.
pub async fn verify(
    state: &AppState,
    uploader: &Uploader,
    submissions: Vec<Submission>,
) -> Result<Verifieds, Error> {
    let checked = submissions
        .into_iter()
        .map(|s| check(uploader, s))
        .collect();
    verify_checked(state, uploader, checked).await
}

/// Verifies the signatures of records already checked (see [`check`]).
pub async fn verify_checked(
    state: &AppState,
    uploader: &Uploader,
    checked: Vec<Result<Checked, Error>>,
) -> Result<Verifieds, Error> {
    let mut keys: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let mut reader = state.store.reader().acquire().await?;
    for c in checked.iter().flatten() {
        if !keys.contains_key(&c.kid) {
            let key = parties::agency_key(&mut reader, &uploader.agency.id, &c.kid).await?;
            keys.insert(c.kid.clone(), key);
        }
    }
    drop(reader);
    Ok(Verifieds(verify_all(checked, keys).await?))
}

/// Stores a verified batch in `tx`.
pub async fn process(
    state: &AppState,
    uploader: &Uploader,
    tx: &mut Tx,
    Verifieds(verified): Verifieds,
) -> Result<BatchResults, Error> {
    let data_keys = state.keys.keys();
    let verified: Vec<Result<Parsed, Box<Rejection>>> = verified
        .into_iter()
        .map(|item| match item {
            Ok(checked) => checked.parse().map(Ok),
            Err(rejection) => Ok(Err(rejection)),
        })
        .collect::<Result<_, Error>>()?;

    let mut out = BatchResults {
        results: Vec::with_capacity(verified.len()),
        refusals: Vec::new(),
        appended: Vec::new(),
    };
    // Each stored record's entry, appended with the others' after the last record.
    let mut uploads = Vec::new();
    // Statements already stored, looked up at once, then those stored from this batch.
    let hashes: Vec<Option<[u8; 32]>> = verified
        .iter()
        .map(|item| item.as_ref().ok().map(|c| sha256(&c.canonical)))
        .collect();
    let looked_up: Vec<[u8; 32]> = hashes.iter().flatten().copied().collect();
    let mut stored_already = consents::find_duplicates(tx, &uploader.agency.id, &looked_up).await?;
    let mut places = Places::of(tx, &data_keys, uploader, &verified).await?;
    for (item, hash) in verified.into_iter().zip(hashes) {
        let (record_id, outcome) = match item {
            Err(rejection) => {
                let Rejection {
                    record_id,
                    problem,
                    audit_reason,
                } = *rejection;
                if let Some(reason) = audit_reason {
                    out.refusals.push(upload_entry(uploader).refused(reason));
                }
                (record_id, RecordOutcome::Rejected(problem))
            }
            Ok(parsed) => {
                let record_id = Some(parsed.statement.record_id.as_str().to_string());
                let hash = hash.expect("a verified record has its hash");
                match stored_already.get(&hash) {
                    Some(consent_id) => (
                        record_id,
                        RecordOutcome::Duplicate {
                            consent_id: consent_id.clone(),
                        },
                    ),
                    None => {
                        let (stored, entry) =
                            store(state, &data_keys, uploader, tx, parsed, &hash, &mut places)
                                .await?;
                        stored_already.insert(hash, stored.consent_id.clone());
                        out.appended.push(entry.labels());
                        uploads.push((out.results.len(), entry));
                        (record_id, RecordOutcome::Stored(Box::new(stored)))
                    }
                }
            }
        };
        out.results.push(RecordResult { record_id, outcome });
    }
    let (positions, entries): (Vec<usize>, Vec<NewEntry>) = uploads.into_iter().unzip();
    let appended = state.append_audits(tx, entries).await?;
    for (position, entry) in positions.into_iter().zip(appended) {
        if let RecordOutcome::Stored(stored) = &mut out.results[position].outcome {
            stored.audit_index = entry.index;
        }
    }
    Ok(out)
}

fn upload_entry(uploader: &Uploader) -> NewEntry {
    let mut entry = NewEntry::new(
        uploader.now,
        &uploader.request_id,
        &uploader.agency,
        Action::ConsentUpload,
        Outcome::Recorded,
    );
    entry.entry.agency_id = Some(uploader.agency.id.clone());
    entry
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

/// A record refused by the checks or the signature: its record id if read, the
/// problem, and for signature refusals (which are audited) the audit reason.
struct Rejection {
    record_id: Option<String>,
    problem: Error,
    audit_reason: Option<&'static str>,
}

type Verified = Result<Checked, Box<Rejection>>;

/// Verifies every signature, spread over the cores.
async fn verify_all(
    checked: Vec<Result<Checked, Error>>,
    keys: HashMap<String, Option<Vec<u8>>>,
) -> Result<Vec<Verified>, Error> {
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = checked.len().div_ceil(threads).max(64);
        let mut items: Vec<Option<Result<Checked, Error>>> =
            checked.into_iter().map(Some).collect();
        let mut out: Vec<Option<Verified>> = (0..items.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            for (inputs, outputs) in items.chunks_mut(chunk).zip(out.chunks_mut(chunk)) {
                let keys = &keys;
                scope.spawn(move || {
                    for (input, output) in inputs.iter_mut().zip(outputs.iter_mut()) {
                        let input = input.take().expect("each item is verified once");
                        *output = Some(verify_one(input, keys));
                    }
                });
            }
        });
        out.into_iter()
            .map(|v| v.expect("every item was verified"))
            .collect()
    })
    .await
    .map_err(|e| Error::internal(format!("signature verification failed to run: {e}")))
}

fn verify_one(item: Result<Checked, Error>, keys: &HashMap<String, Option<Vec<u8>>>) -> Verified {
    let checked = item.map_err(|problem| {
        Box::new(Rejection {
            record_id: None,
            problem,
            audit_reason: None,
        })
    })?;
    let record_id = Some(checked.record_id.clone());
    let Some(Some(public_key)) = keys.get(&checked.kid) else {
        let problem = Error::field(
            ErrorKind::UnknownKeyId,
            "signature",
            format!("no live key `{}` is registered to your agency", checked.kid),
        );
        return Err(Box::new(Rejection {
            record_id,
            problem,
            audit_reason: Some("unknown_key_id"),
        }));
    };
    let jws = jws::parse(&checked.signature).expect("parsed during the checks");
    if jws.verify(public_key, &checked.canonical).is_err() {
        let problem = Error::field(
            ErrorKind::BadSignature,
            "signature",
            format!(
                "does not verify under key `{}` over the canonical (RFC 8785) statement",
                checked.kid
            ),
        );
        return Err(Box::new(Rejection {
            record_id,
            problem,
            audit_reason: Some("bad_signature"),
        }));
    }
    Ok(checked)
}

/// The moment a record's contact must be destroyed: the end of the day of its last
/// flight, plus the configured number of days.
pub fn purge_after(statement: &ConsentStatement, retention_days: u32) -> OffsetDateTime {
    let last = statement
        .booking
        .segments
        .iter()
        .map(|s| s.date.date())
        .max()
        .expect("a checked booking has a segment");
    last.next_day().unwrap_or(last).midnight().assume_utc()
        + time::Duration::days(i64::from(retention_days))
}

/// Where a batch's records go: their bookings (with their segments) and travellers,
/// written for all of them before the first record, and what the records stored so
/// far in the batch changed.
struct Places {
    /// Booking id by record locator.
    bookings: HashMap<String, String>,
    /// Traveller by (booking id, name index).
    travellers: HashMap<(String, Vec<u8>), crate::store::bookings::TravellerRow>,
    /// The latest version of each agency record id, moved on as records are stored.
    versions: HashMap<String, i64>,
    /// Each traveller's current record, once one is stored in this batch.
    current: HashMap<String, Vec<String>>,
}

impl Places {
    /// Upserts the bookings, segments and travellers of the verified records (a few
    /// statements for the whole batch, instead of several per record) and reads the
    /// latest version of their record ids. A duplicate record's places exist already,
    /// so upserting them again changes nothing.
    async fn of(
        tx: &mut Tx,
        keys: &Keys,
        uploader: &Uploader,
        verified: &[Result<Parsed, Box<Rejection>>],
    ) -> Result<Self, Error> {
        let agency_id = &uploader.agency.id;
        let statements: Vec<&ConsentStatement> =
            verified.iter().flatten().map(|c| &c.statement).collect();
        let mut locators: Vec<&RecordLocator> = statements
            .iter()
            .map(|s| &s.booking.record_locator)
            .collect();
        locators.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        locators.dedup_by(|a, b| a.as_str() == b.as_str());
        let bookings =
            crate::store::bookings::upsert_bookings(tx, agency_id, &locators, uploader.now).await?;
        let booking_of = |s: &ConsentStatement| -> Result<String, Error> {
            bookings
                .get(s.booking.record_locator.as_str())
                .cloned()
                .ok_or_else(|| Error::internal("a booking upserted was not returned"))
        };
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for statement in &statements {
            let booking_id = booking_of(statement)?;
            for segment in &statement.booking.segments {
                segments.push((booking_id.clone(), segment));
            }
            names.push((booking_id, name_index(keys, statement)));
        }
        let segments: Vec<(&str, &Flight)> =
            segments.iter().map(|(b, f)| (b.as_str(), *f)).collect();
        crate::store::bookings::add_segments(tx, &segments).await?;
        names.sort_unstable();
        names.dedup();
        let names: Vec<(&str, &[u8])> = names
            .iter()
            .map(|(b, n)| (b.as_str(), n.as_slice()))
            .collect();
        let travellers =
            crate::store::bookings::upsert_travellers(tx, &names, uploader.now).await?;
        let record_ids: Vec<&str> = statements.iter().map(|s| s.record_id.as_str()).collect();
        let versions = consents::latest_versions(tx, agency_id, &record_ids).await?;
        Ok(Self {
            bookings,
            travellers,
            versions,
            current: HashMap::new(),
        })
    }

    /// The booking id, traveller id and whether the traveller is new, for a record.
    fn of_record(
        &self,
        keys: &Keys,
        statement: &ConsentStatement,
    ) -> Result<(String, String, bool), Error> {
        let missing = || Error::internal("a record's booking or traveller was not upserted");
        let booking_id = self
            .bookings
            .get(statement.booking.record_locator.as_str())
            .ok_or_else(missing)?;
        let traveller = self
            .travellers
            .get(&(booking_id.clone(), name_index(keys, statement)))
            .ok_or_else(missing)?;
        Ok((booking_id.clone(), traveller.id.clone(), traveller.created))
    }

    /// The version a new record with this agency record id gets, counted as stored.
    fn next_version(&mut self, record_id: &str) -> i64 {
        let version = self.versions.get(record_id).map_or(1, |latest| latest + 1);
        self.versions.insert(record_id.to_string(), version);
        version
    }
}

/// The blind index of a record's traveller name, as stored with the traveller.
fn name_index(keys: &Keys, statement: &ConsentStatement) -> Vec<u8> {
    keys.root()
        .blind_index(TRAVELLER_NAME_INDEX, &statement.traveller.name().pnr_form())
        .to_vec()
}

/// Stores one verified record and its receipt; returns it with its audit entry, for
/// the caller to append (its `audit_index` is set then).
async fn store(
    state: &AppState,
    keys: &Keys,
    uploader: &Uploader,
    tx: &mut Tx,
    checked: Parsed,
    hash: &[u8; 32],
    places: &mut Places,
) -> Result<(StoredRecord, NewEntry), Error> {
    let statement = &checked.statement;
    let now = uploader.now;
    let agency_id = &uploader.agency.id;
    let (booking_id, traveller_id, new_traveller) = places.of_record(keys, statement)?;
    let record_id = statement.record_id.as_str();
    let version = places.next_version(record_id);
    let supersedes = match places.current.get(&traveller_id) {
        Some(stored_here) => stored_here.clone(),
        None if new_traveller => Vec::new(),
        None => consents::current_ids(tx, &traveller_id).await?,
    };

    let consent_id = new_id(CONSENT);
    let (record_key, wrapped_key) = keys.new_record_key(&consent_id);
    let slot = |column| Slot {
        table: "consents",
        column,
        row_id: &consent_id,
    };
    let code =
        (statement.decision == Decision::Given).then(|| secret::issue(WITHDRAWAL_CODE_PREFIX));
    let code_hash = code.as_ref().map(|c| hex(&sha256(c.plaintext.as_bytes())));
    let carriers = statement.carriers();
    let purge_after = purge_after(
        statement,
        state.settings.policies.tunables.retention.contact_days,
    );
    let statement_sha256 = hex(hash);
    let traveller_page = crate::service::settings::page_link(&state.settings.public_url);
    let withdrawal_url = format!(
        "{}/v1/withdrawals",
        state.settings.public_url.trim_end_matches('/')
    );
    let receipt = countersign::countersign(
        &state.broker_key,
        receipt::build(&ReceiptFacts {
            consent_id: &consent_id,
            version,
            supersedes: &supersedes,
            traveller_id: &traveller_id,
            agency_name: &uploader.name,
            statement,
            carriers: &carriers,
            agency_key_id: &checked.kid,
            statement_sha256: &statement_sha256,
            withdrawal_code_sha256: code_hash.as_deref(),
            withdrawal_url: &withdrawal_url,
            traveller_page: &traveller_page,
            retention_days: state.settings.policies.tunables.retention.contact_days,
            purge_after,
            recorded_at: now,
        }),
    );
    let receipt_text = serde_json::to_string(&receipt).expect("a receipt serializes");
    let terms = &statement.consent;
    consents::insert(
        tx,
        consents::NewConsent {
            id: &consent_id,
            traveller_id: &traveller_id,
            agency_id,
            agency_record_id: record_id,
            version,
            statement_sha256: hash,
            schema_version: statement.schema_version.as_str(),
            decision: statement.decision,
            purposes: &terms.purposes,
            carriers: &carriers,
            recipients: match terms.recipients {
                Recipients::Itinerary => "itinerary",
                Recipients::Carriers(_) => "named",
            },
            data_categories: &terms.data_categories,
            jurisdiction: statement.jurisdiction.as_str(),
            collected_at: terms.collected_at,
            valid_until: terms.valid_until,
            notice: [
                terms.notice.version.as_str(),
                terms.notice.language.as_str(),
                terms.notice.sha256.as_str(),
            ],
            collection_method: terms.collection_method.as_str(),
            key_id: &checked.kid,
            signature: &checked.signature,
            wrapped_key,
            sealed_statement: record_key.seal(slot("statement"), &checked.canonical),
            sealed_mobile: statement
                .traveller
                .mobile
                .as_ref()
                .map(|m| record_key.seal(slot("mobile"), m.as_str().as_bytes())),
            sealed_email: statement
                .traveller
                .email
                .as_ref()
                .map(|e| record_key.seal(slot("email"), e.as_str().as_bytes())),
            withdrawal_code: code.as_ref().map(|c| (c.id.as_str(), c.hash)),
            receipt: &receipt_text,
            purge_after,
            now,
        },
        &supersedes,
    )
    .await?;
    places
        .current
        .insert(traveller_id.clone(), vec![consent_id.clone()]);
    let mut entry = upload_entry(uploader);
    entry.entry.booking_id = Some(booking_id.clone());
    entry.entry.traveller_id = Some(traveller_id.clone());
    entry.entry.consent_id = Some(consent_id.clone());
    Ok((
        StoredRecord {
            consent_id,
            version,
            booking_id,
            traveller_id,
            supersedes,
            decision: statement.decision,
            key_id: checked.kid,
            withdrawal_code: code.map(|c| c.plaintext),
            receipt,
            audit_index: 0,
        },
        entry,
    ))
}
