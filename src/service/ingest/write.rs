//! Writing verified records, in the caller's transaction: each found to be a
//! duplicate (the same canonical statement stored before) or stored, sealed, with
//! its booking, traveller, receipt and audit entry; earlier versions superseded.

use super::verify::{Rejection, Verifieds};
use super::*;

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
    entry = entry
        .booking(booking_id.clone())
        .traveller(traveller_id.clone())
        .consent(consent_id.clone());
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
