//! Writing verified records, in the caller's transaction: each found to be a
//! duplicate (the same canonical statement stored before) or stored, sealed, with
//! its booking, traveller, receipt and audit entry; earlier versions superseded.

use super::verify::{Rejection, Verifieds};
use super::*;
use crate::audit::merkle::Frontier;
use crate::service::audit_log::{append_with_pushes, Audited};
use crate::store::db::Db;
use crate::store::StoreError;

/// Verified records to store in one write: a batch's chunk, a whole atomic batch (its
/// chunks one after the other, in one transaction) or one upload. Answers each
/// record's result, in order, with the entries appended (each stored record's upload
/// and each audited refusal).
pub struct StoreVerified {
    /// The broker.
    pub state: AppState,
    /// Who uploads.
    pub uploader: Uploader,
    /// The records, a chunk at a time (each chunk's statements typed only while it is
    /// stored).
    pub chunks: Vec<Verifieds>,
}

impl StoreVerified {
    async fn write(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<Vec<RecordResult>>, StoreError> {
        let mut written: Option<Audited<Vec<RecordResult>>> = None;
        for chunk in self.chunks {
            let stored = process(&self.state, &self.uploader, db, right_edge, chunk).await?;
            match &mut written {
                Some(written) => written.merge(stored),
                None => written = Some(stored),
            }
        }
        // An empty upload (`[]`, atomic or not) stores nothing and appends nothing.
        Ok(written.unwrap_or_else(Audited::nothing))
    }
}

crate::store::direct::write_over_db!(StoreVerified, Audited<Vec<RecordResult>>, write);

/// Stores verified records over `db`: each a duplicate or stored with its receipt;
/// appends their entries and those of the refused signatures.
async fn process(
    state: &AppState,
    uploader: &Uploader,
    db: &mut impl Db,
    right_edge: &mut Option<Frontier>,
    Verifieds(verified): Verifieds,
) -> Result<Audited<Vec<RecordResult>>, StoreError> {
    let data_keys = state.keys.keys();
    let verified: Vec<Result<Parsed, Box<Rejection>>> = verified
        .into_iter()
        .map(|item| match item {
            Ok(checked) => checked.parse().map(Ok),
            Err(rejection) => Ok(Err(rejection)),
        })
        .collect::<Result<_, StoreError>>()?;

    let mut results = Vec::with_capacity(verified.len());
    let mut refusals = Vec::new();
    // Each stored record's entry, appended with the others' after the last record.
    let mut uploads = Vec::new();
    // Statements already stored, looked up at once, then those stored from this batch.
    let hashes: Vec<Option<[u8; 32]>> = verified
        .iter()
        .map(|item| item.as_ref().ok().map(|c| sha256(&c.canonical)))
        .collect();
    let looked_up: Vec<[u8; 32]> = hashes.iter().flatten().copied().collect();
    let mut stored_already = consents::find_duplicates(db, &uploader.agency.id, &looked_up).await?;
    let mut places = Places::of(db, &data_keys, uploader, &verified).await?;
    // The current records of the travellers already known, read at once.
    let known: Vec<&str> = places.known_travellers();
    let current = consents::current_ids_of(db, &known).await?;
    let mut prepared = Vec::new();
    for (item, hash) in verified.into_iter().zip(hashes) {
        let (record_id, outcome) = match item {
            Err(rejection) => {
                let Rejection {
                    record_id,
                    problem,
                    audit_reason,
                } = *rejection;
                if let Some(reason) = audit_reason {
                    refusals.push(upload_entry(uploader).refused(reason));
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
                        let record =
                            prepare(state, &data_keys, parsed, hash, &mut places, &current)?;
                        stored_already.insert(hash, record.consent_id.clone());
                        prepared.push((results.len(), record));
                        // Filled in once the record is stored.
                        (
                            record_id,
                            RecordOutcome::Duplicate {
                                consent_id: String::new(),
                            },
                        )
                    }
                }
            }
        };
        results.push(RecordResult { record_id, outcome });
    }
    let (positions, mut records): (Vec<usize>, Vec<Prepared>) = prepared.into_iter().unzip();
    sign_receipts(state, uploader, &mut records);
    // Stored in the upload's order, many to a statement: a record that supersedes goes
    // in with those waiting before it, then marks its traveller's current records, so
    // that it sees every record before it and none after.
    let mut waiting = Vec::with_capacity(consents::INSERT_ROWS);
    for (position, record) in positions.into_iter().zip(records) {
        let (rows, stored, entry) = staged(uploader, record)?;
        waiting.push(rows);
        if !stored.supersedes.is_empty() {
            consents::insert_all(db, std::mem::take(&mut waiting)).await?;
            consents::supersede_current(db, &stored.consent_id, &stored.traveller_id).await?;
        } else if waiting.len() == consents::INSERT_ROWS {
            consents::insert_all(db, std::mem::take(&mut waiting)).await?;
        }
        results[position].outcome = RecordOutcome::Stored(Box::new(stored));
        uploads.push((position, entry));
    }
    consents::insert_all(db, waiting).await?;
    let (positions, mut entries): (Vec<usize>, Vec<NewEntry>) = uploads.into_iter().unzip();
    entries.extend(refusals);
    let mut written = append_with_pushes(db, right_edge, results, entries, uploader.now).await?;
    for (position, entry) in positions.into_iter().zip(&written.entries) {
        if let RecordOutcome::Stored(stored) = &mut written.output[position].outcome {
            stored.audit_index = entry.index;
        }
    }
    Ok(written)
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

/// The blind index of a record's traveller name, as stored with the traveller.
fn name_index(keys: &Keys, statement: &ConsentStatement) -> Vec<u8> {
    keys.root()
        .blind_index(TRAVELLER_NAME_INDEX, &statement.traveller.name().pnr_form())
        .to_vec()
}

/// A new record made ready to store: its ids, version and supersessions decided, its
/// values sealed; its receipt is signed next, with the others' (see [`sign_receipts`]).
struct Prepared {
    parsed: Parsed,
    hash: [u8; 32],
    consent_id: String,
    booking_id: String,
    traveller_id: String,
    version: i64,
    supersedes: Vec<String>,
    wrapped_key: crate::crypto::keyring::WrappedKey,
    sealed_statement: Vec<u8>,
    sealed_mobile: Option<Vec<u8>>,
    sealed_email: Option<Vec<u8>>,
    digests: crate::crypto::seal::ContactDigests,
    code: Option<secret::IssuedSecret>,
    carriers: Vec<crate::domain::booking::CarrierCode>,
    purge_after: OffsetDateTime,
    receipt: Option<Countersigned>,
}

/// Decides a new record's ids, version and the records it supersedes (those stored
/// before, `current` for a traveller already known, or the batch's own), and seals
/// its values.
fn prepare(
    state: &AppState,
    keys: &Keys,
    checked: Parsed,
    hash: [u8; 32],
    places: &mut Places,
    current: &HashMap<String, Vec<String>>,
) -> Result<Prepared, StoreError> {
    let statement = &checked.statement;
    let (booking_id, traveller_id, _) = places.of_record(keys, statement)?;
    let version = places.next_version(statement.record_id.as_str());
    let supersedes = match places.current.get(&traveller_id) {
        Some(stored_here) => stored_here.clone(),
        None => current.get(&traveller_id).cloned().unwrap_or_default(),
    };
    let consent_id = new_id(CONSENT);
    places
        .current
        .insert(traveller_id.clone(), vec![consent_id.clone()]);
    let (record_key, wrapped_key) = keys.new_record_key(&consent_id);
    let slot = |column| Slot {
        table: "consents",
        column,
        row_id: &consent_id,
    };
    let sealed_statement = record_key.seal(slot("statement"), &checked.canonical);
    let sealed_mobile = statement
        .traveller
        .mobile
        .as_ref()
        .map(|m| record_key.seal(slot("mobile"), m.as_str().as_bytes()));
    let sealed_email = statement
        .traveller
        .email
        .as_ref()
        .map(|e| record_key.seal(slot("email"), e.as_str().as_bytes()));
    let digests = contact_digests(keys, statement);
    let code =
        (statement.decision == Decision::Given).then(|| secret::issue(WITHDRAWAL_CODE_PREFIX));
    let carriers = statement.carriers();
    let purge_after = purge_after(
        statement,
        state.settings.policies.tunables.retention.contact_days,
    );
    Ok(Prepared {
        hash,
        consent_id,
        booking_id,
        traveller_id,
        version,
        supersedes,
        wrapped_key,
        sealed_statement,
        sealed_mobile,
        sealed_email,
        digests,
        code,
        carriers,
        purge_after,
        receipt: None,
        parsed: checked,
    })
}

/// The keyed digests of a statement's mobile and email.
fn contact_digests(
    keys: &Keys,
    statement: &crate::domain::consent::ConsentStatement,
) -> crate::crypto::seal::ContactDigests {
    let traveller = &statement.traveller;
    crate::crypto::seal::ContactDigests::of(
        keys.root(),
        traveller.mobile.as_ref().map(|m| m.as_str()),
        traveller.email.as_ref().map(|e| e.as_str()),
    )
}

/// Builds and countersigns each prepared record's receipt, a share of them on each
/// core: an Ed25519 signature each, the largest part of storing a record.
fn sign_receipts(state: &AppState, uploader: &Uploader, records: &mut [Prepared]) {
    let traveller_page = crate::service::settings::page_link(&state.settings.public_url);
    let withdrawal_url = format!(
        "{}/v1/withdrawals",
        state.settings.public_url.trim_end_matches('/')
    );
    let retention_days = state.settings.policies.tunables.retention.contact_days;
    let sign = |record: &mut Prepared| {
        let statement_sha256 = hex(&record.hash);
        let code_hash = record
            .code
            .as_ref()
            .map(|c| hex(&sha256(c.plaintext.as_bytes())));
        record.receipt = Some(countersign::countersign(
            &state.broker_key,
            receipt::build(&ReceiptFacts {
                consent_id: &record.consent_id,
                version: record.version,
                supersedes: &record.supersedes,
                traveller_id: &record.traveller_id,
                agency_name: &uploader.name,
                statement: &record.parsed.statement,
                carriers: &record.carriers,
                agency_key_id: &record.parsed.kid,
                statement_sha256: &statement_sha256,
                withdrawal_code_sha256: code_hash.as_deref(),
                withdrawal_url: &withdrawal_url,
                traveller_page: &traveller_page,
                retention_days,
                purge_after: record.purge_after,
                recorded_at: uploader.now,
            }),
        ));
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = records.len().div_ceil(cores).max(SIGNED_PER_THREAD);
    if records.len() <= share {
        records.iter_mut().for_each(sign);
        return;
    }
    std::thread::scope(|scope| {
        for part in records.chunks_mut(share) {
            scope.spawn(|| part.iter_mut().for_each(sign));
        }
    });
}

/// Receipts signed on one thread at least: fewer are signed where they are asked.
const SIGNED_PER_THREAD: usize = 16;

/// A prepared record's rows to insert, with what the upload answers for it and its
/// audit entry, for the caller to store and append (its `audit_index` is set then).
fn staged(
    uploader: &Uploader,
    record: Prepared,
) -> Result<(consents::ConsentRows, StoredRecord, NewEntry), StoreError> {
    let Prepared {
        parsed,
        hash,
        consent_id,
        booking_id,
        traveller_id,
        version,
        supersedes,
        wrapped_key,
        sealed_statement,
        sealed_mobile,
        sealed_email,
        digests,
        code,
        carriers,
        purge_after,
        receipt,
    } = record;
    let receipt = receipt.ok_or_else(|| StoreError::Corrupt("a receipt was not signed".into()))?;
    let receipt_text = serde_json::to_string(&receipt).expect("a receipt serializes");
    let statement = &parsed.statement;
    let terms = &statement.consent;
    let rows = consents::ConsentRows::from(consents::NewConsent {
        id: &consent_id,
        traveller_id: &traveller_id,
        agency_id: &uploader.agency.id,
        agency_record_id: statement.record_id.as_str(),
        version,
        statement_sha256: &hash,
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
        key_id: &parsed.kid,
        signature: &parsed.signature,
        wrapped_key,
        sealed_statement,
        sealed_mobile,
        sealed_email,
        digests,
        withdrawal_code: code.as_ref().map(|c| (c.id.as_str(), c.hash)),
        receipt: &receipt_text,
        purge_after,
        now: uploader.now,
    });
    let entry = upload_entry(uploader)
        .booking(booking_id.clone())
        .traveller(traveller_id.clone())
        .consent(consent_id.clone());
    Ok((
        rows,
        StoredRecord {
            consent_id,
            version,
            booking_id,
            traveller_id,
            supersedes,
            decision: statement.decision,
            key_id: parsed.kid,
            withdrawal_code: code.map(|c| c.plaintext),
            receipt,
            audit_index: 0,
        },
        entry,
    ))
}

impl Places {
    /// Upserts the bookings, segments and travellers of the verified records (a few
    /// statements for the whole batch, instead of several per record) and reads the
    /// latest version of their record ids. A duplicate record's places exist already,
    /// so upserting them again changes nothing.
    async fn of(
        db: &mut impl Db,
        keys: &Keys,
        uploader: &Uploader,
        verified: &[Result<Parsed, Box<Rejection>>],
    ) -> Result<Self, StoreError> {
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
            crate::store::bookings::upsert_bookings(db, agency_id, &locators, uploader.now).await?;
        let booking_of = |s: &ConsentStatement| -> Result<String, StoreError> {
            bookings
                .get(s.booking.record_locator.as_str())
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("a booking upserted was not returned".into()))
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
        let segments: Vec<(&str, &Segment)> =
            segments.iter().map(|(b, f)| (b.as_str(), *f)).collect();
        crate::store::bookings::add_segments(db, &segments).await?;
        names.sort_unstable();
        names.dedup();
        let names: Vec<(&str, &[u8])> = names
            .iter()
            .map(|(b, n)| (b.as_str(), n.as_slice()))
            .collect();
        let travellers =
            crate::store::bookings::upsert_travellers(db, &names, uploader.now).await?;
        let record_ids: Vec<&str> = statements.iter().map(|s| s.record_id.as_str()).collect();
        let versions = consents::latest_versions(db, agency_id, &record_ids).await?;
        Ok(Self {
            bookings,
            travellers,
            versions,
            current: HashMap::new(),
        })
    }

    /// The travellers found already stored (not created by this batch).
    fn known_travellers(&self) -> Vec<&str> {
        self.travellers
            .values()
            .filter(|t| !t.created)
            .map(|t| t.id.as_str())
            .collect()
    }

    /// The booking id, traveller id and whether the traveller is new, for a record.
    fn of_record(
        &self,
        keys: &Keys,
        statement: &ConsentStatement,
    ) -> Result<(String, String, bool), StoreError> {
        let missing =
            || StoreError::Corrupt("a record's booking or traveller was not upserted".into());
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
