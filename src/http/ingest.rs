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

use super::extract::parse_value;
use super::problem::{Problem, ProblemKind};
use super::AppState;
use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::countersign::{self, Countersigned};
use crate::crypto::keyring::Keys;
use crate::crypto::seal::{Slot, TRAVELLER_NAME_INDEX};
use crate::crypto::{canonical, jws, secret, sha256};
use crate::domain::consent::{ConsentStatement, Decision, Recipients};
use crate::domain::ids::{hex, new_id, CONSENT};
use crate::domain::party::{IataAgencyNumber, Party};
use crate::domain::receipt::{self, ReceiptFacts};
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
pub struct Uploader<'a> {
    /// The agency.
    pub agency: &'a Party,
    /// Its IATA number.
    pub iata: IataAgencyNumber,
    /// Its display name, for receipts.
    pub name: String,
    /// The request.
    pub request_id: &'a str,
    /// The time of the request.
    pub now: OffsetDateTime,
}

impl<'a> Uploader<'a> {
    /// Reads what receipts need of the agency.
    pub async fn new(
        state: &AppState,
        agency: &'a Party,
        request_id: &'a str,
    ) -> Result<Self, Problem> {
        let code = agency.code.as_deref().unwrap_or_default();
        let iata = IataAgencyNumber::parse(code).map_err(|_| {
            Problem::internal(format!("agency {} has no valid IATA number", agency.id))
        })?;
        let mut conn = state.store.reader().acquire().await?;
        let name = parties::name(&mut conn, &agency.id).await?;
        Ok(Self {
            agency,
            iata,
            name,
            request_id,
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
    Rejected(Problem),
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

/// A record that passed the checks needing no database.
struct Checked {
    statement: ConsentStatement,
    canonical: Vec<u8>,
    signature: String,
    kid: String,
}

/// Checks, verifies and stores a batch in `tx`.
pub async fn process(
    state: &AppState,
    uploader: &Uploader<'_>,
    tx: &mut Tx,
    submissions: Vec<Submission>,
) -> Result<BatchResults, Problem> {
    let checked: Vec<Result<Checked, Problem>> = submissions
        .into_iter()
        .map(|s| check(uploader, s))
        .collect();
    let mut keys: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    for c in checked.iter().flatten() {
        if !keys.contains_key(&c.kid) {
            let key = parties::agency_key(tx, &uploader.agency.id, &c.kid).await?;
            keys.insert(c.kid.clone(), key);
        }
    }
    let verified = verify_all(checked, keys).await?;
    let data_keys = state.keys.keys();

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
            Ok(checked) => {
                let record_id = Some(checked.statement.record_id.as_str().to_string());
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
                            store(state, &data_keys, uploader, tx, checked, &hash).await?;
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

fn upload_entry(uploader: &Uploader<'_>) -> NewEntry {
    let mut entry = NewEntry::new(
        uploader.now,
        uploader.request_id,
        uploader.agency,
        Action::ConsentUpload,
        Outcome::Recorded,
    );
    entry.entry.agency_id = Some(uploader.agency.id.clone());
    entry
}

/// The checks that need no database.
fn check(uploader: &Uploader<'_>, submission: Submission) -> Result<Checked, Problem> {
    let statement: ConsentStatement = parse_value(&submission.statement, "statement")?;
    statement.check(&uploader.iata, uploader.now).map_err(|e| {
        let kind = if e.non_operational_purpose {
            ProblemKind::PurposeNotOperational
        } else {
            ProblemKind::InvalidField
        };
        Problem::field(kind, format!("statement.{}", e.field), e.reason)
    })?;
    let signature = submission.signature.ok_or_else(|| {
        Problem::field(
            ProblemKind::MalformedSignature,
            "signature",
            "is missing: sign the canonical (RFC 8785) statement with one of your keys",
        )
    })?;
    let kid = jws::parse(&signature)
        .map_err(|e| Problem::field(ProblemKind::MalformedSignature, "signature", e.to_string()))?
        .kid;
    Ok(Checked {
        canonical: canonical::to_vec(&submission.statement),
        statement,
        signature,
        kid,
    })
}

/// A record refused by the checks or the signature: its record id if read, the
/// problem, and for signature refusals (which are audited) the audit reason.
struct Rejection {
    record_id: Option<String>,
    problem: Problem,
    audit_reason: Option<&'static str>,
}

type Verified = Result<Checked, Box<Rejection>>;

/// Verifies every signature, spread over the cores.
async fn verify_all(
    checked: Vec<Result<Checked, Problem>>,
    keys: HashMap<String, Option<Vec<u8>>>,
) -> Result<Vec<Verified>, Problem> {
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = checked.len().div_ceil(threads).max(64);
        let mut items: Vec<Option<Result<Checked, Problem>>> =
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
    .map_err(|e| Problem::internal(format!("signature verification failed to run: {e}")))
}

fn verify_one(item: Result<Checked, Problem>, keys: &HashMap<String, Option<Vec<u8>>>) -> Verified {
    let checked = item.map_err(|problem| {
        Box::new(Rejection {
            record_id: None,
            problem,
            audit_reason: None,
        })
    })?;
    let record_id = Some(checked.statement.record_id.as_str().to_string());
    let Some(Some(public_key)) = keys.get(&checked.kid) else {
        let problem = Problem::field(
            ProblemKind::UnknownKeyId,
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
        let problem = Problem::field(
            ProblemKind::BadSignature,
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

/// Stores one verified record and its receipt; returns it with its audit entry, for
/// the caller to append (its `audit_index` is set then).
async fn store(
    state: &AppState,
    keys: &Keys,
    uploader: &Uploader<'_>,
    tx: &mut Tx,
    checked: Checked,
    hash: &[u8; 32],
) -> Result<(StoredRecord, NewEntry), Problem> {
    let statement = &checked.statement;
    let now = uploader.now;
    let agency_id = &uploader.agency.id;
    let booking_id =
        consents::upsert_booking(tx, agency_id, &statement.booking.record_locator, now).await?;
    consents::add_segments(tx, &booking_id, &statement.booking.segments).await?;
    let name_index = keys
        .root()
        .blind_index(TRAVELLER_NAME_INDEX, &statement.traveller.name().pnr_form());
    let traveller_id = consents::upsert_traveller(tx, &booking_id, &name_index, now).await?;
    let record_id = statement.record_id.as_str();
    let version = consents::next_version(tx, agency_id, record_id).await?;
    let supersedes = consents::current_ids(tx, &traveller_id).await?;

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
    let traveller_page = super::traveller::page_link(&state.settings.public_url, "");
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
