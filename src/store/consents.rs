//! Consent records: their versions, what each allows (its scope), the agency's
//! listing, and withdrawal by code.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, values_rows, Conn, Param, StoreError};
use crate::crypto::keyring::WrappedKey;
use crate::domain::booking::CarrierCode;
use crate::domain::consent::{DataCategory, Decision};
use crate::domain::purpose::Purpose;
use crate::domain::scope::ConsentScope;
use std::collections::HashMap;
use time::OffsetDateTime;
use tracing::instrument;

/// Of these statement hashes, those the agency already stored a record for, with the
/// record's id: uploading one again is a duplicate. One query per 500 hashes.
///
/// Each hash is looked up by its own probe of the `(agency_id, statement_sha256)`
/// key (a subquery per row of a `VALUES` list; see [`per_value`]).
#[instrument(skip_all)]
pub async fn find_duplicates(
    db: &mut impl Db,
    agency_id: &str,
    statement_hashes: &[[u8; 32]],
) -> Result<HashMap<[u8; 32], String>, StoreError> {
    let mut found = HashMap::new();
    for chunk in statement_hashes.chunks(500) {
        let mut params = vec![Param::Text(agency_id.to_string())];
        params.extend(chunk.iter().map(|h| Param::Bytes(h.to_vec())));
        db.for_each(&duplicates_sql(chunk.len()), params, |row| {
            let hash: Vec<u8> = row.value("key");
            if let (Ok(hash), Some(id)) = (hash.try_into(), row.value::<Option<String>>("found")) {
                found.insert(hash, id);
            }
            Ok(())
        })
        .await?;
    }
    Ok(found)
}

/// The latest version of each of these agency record ids the agency stored (ids it
/// never stored are absent): a new record with one of them gets the next version.
/// One query per 500 ids, each id its own probe of the `(agency_id,
/// agency_record_id, version)` key (see [`per_value`]).
#[instrument(skip_all)]
pub async fn latest_versions(
    db: &mut impl Db,
    agency_id: &str,
    agency_record_ids: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut latest = HashMap::new();
    for chunk in agency_record_ids.chunks(500) {
        let mut params = vec![Param::Text(agency_id.to_string())];
        params.extend(chunk.iter().map(|id| Param::Text(id.to_string())));
        db.for_each(&versions_sql(chunk.len()), params, |row| {
            if let Some(version) = row.value::<Option<i64>>("found") {
                latest.insert(row.value("key"), version);
            }
            Ok(())
        })
        .await?;
    }
    Ok(latest)
}

/// The statement [`find_duplicates`] runs for `values` hashes: the agency is `$1`, the
/// hashes `$2` on. Public so that a test can ask PostgreSQL how it plans it.
pub fn duplicates_sql(values: usize) -> String {
    per_value(
        values,
        "SELECT c.id FROM consents c WHERE c.agency_id = $1 AND c.statement_sha256 = v.column1",
    )
}

/// The statement [`latest_versions`] runs for `values` record ids: the agency is `$1`,
/// the ids `$2` on. Public so that a test can ask PostgreSQL how it plans it.
pub fn versions_sql(values: usize) -> String {
    per_value(
        values,
        "SELECT MAX(c.version) FROM consents c WHERE c.agency_id = $1 AND c.agency_record_id = v.column1",
    )
}

/// A statement answering `subquery` (which reads its value as `v.column1`) once for
/// each of `values` parameters from `$2` on, as rows of `key` (the value) and `found`
/// (the answer, or NULL).
///
/// Not `agency_id = $1 AND column IN (…)`: on tables without statistics (after a bulk
/// load, wherever autovacuum is off) PostgreSQL took the agency to hold a few dozen
/// records, read the key's index by the agency alone and filtered every record the
/// agency ever stored, at every chunk of every upload: 2.3 ms a chunk at 2,700
/// records an agency, growing with the table. A subquery per value compares both
/// columns of the key whatever the statistics: 0.9 ms for the same 256 hashes. The
/// `lookups` API test holds that plan.
fn per_value(values: usize, subquery: &str) -> String {
    let rows: Vec<String> = (2..values + 2).map(|n| format!("(${n})")).collect();
    format!(
        "SELECT v.column1 AS key, ({subquery}) AS found FROM (VALUES {}) AS v",
        rows.join(", ")
    )
}

/// A consent record to store.
pub struct NewConsent<'a> {
    /// The record's id, already used to seal its values.
    pub id: &'a str,
    /// The traveller it concerns.
    pub traveller_id: &'a str,
    /// The agency that uploaded it.
    pub agency_id: &'a str,
    /// The agency's id for the record.
    pub agency_record_id: &'a str,
    /// Its version among records sharing that id.
    pub version: i64,
    /// SHA-256 of the canonical statement.
    pub statement_sha256: &'a [u8],
    /// Schema version of the statement.
    pub schema_version: &'a str,
    /// Given or refused.
    pub decision: Decision,
    /// Purposes.
    pub purposes: &'a [Purpose],
    /// Carriers that may receive the contact (itinerary resolved).
    pub carriers: &'a [CarrierCode],
    /// `named` or `itinerary`.
    pub recipients: &'a str,
    /// Data categories.
    pub data_categories: &'a [DataCategory],
    /// Jurisdiction.
    pub jurisdiction: &'a str,
    /// When consent was collected.
    pub collected_at: OffsetDateTime,
    /// End of validity, if any.
    pub valid_until: Option<OffsetDateTime>,
    /// Notice version, language and digest.
    pub notice: [&'a str; 3],
    /// How consent was collected.
    pub collection_method: &'a str,
    /// Key id that signed it.
    pub key_id: &'a str,
    /// The detached JWS.
    pub signature: &'a str,
    /// The record key, wrapped.
    pub wrapped_key: WrappedKey,
    /// The canonical statement, sealed under the record key.
    pub sealed_statement: Vec<u8>,
    /// The mobile number, sealed under the record key.
    pub sealed_mobile: Option<Vec<u8>>,
    /// The email address, sealed under the record key.
    pub sealed_email: Option<Vec<u8>>,
    /// The keyed digests of the mobile and the email, to tell a changed contact.
    pub digests: crate::crypto::seal::ContactDigests,
    /// The withdrawal code's lookup id and hash, if one was issued.
    pub withdrawal_code: Option<(&'a str, [u8; 32])>,
    /// The countersigned receipt (JSON text).
    pub receipt: &'a str,
    /// When the contact must be destroyed.
    pub purge_after: OffsetDateTime,
    /// When the broker stored it.
    pub now: OffsetDateTime,
}

/// Whether every one of these records is still current: neither withdrawn,
/// superseded nor purged. The guard for grants decided on an earlier read.
///
/// The records are read by primary key alone and judged here: with the state
/// conditions in its `WHERE`, PostgreSQL without fresh statistics (after a bulk load,
/// before autovacuum's analyze) chose to intersect the partial indexes on those
/// columns, reading every record of the table: 1.5 s for a flight of 160 instead of
/// 10 ms. The list is padded to one of a few shapes (see [`super::padded_text_list`]);
/// a repeated id is still one row.
#[instrument(skip_all)]
pub async fn all_current(db: &mut impl Db, ids: &[&str]) -> Result<bool, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    // Within the parameter limits of both engines, with room to spare.
    for chunk in ids.chunks(500) {
        let mut params = Vec::with_capacity(chunk.len());
        let list = super::padded_text_list(&mut params, chunk);
        let sql = format!(
            "SELECT CASE WHEN withdrawn_at IS NULL AND superseded_by IS NULL \
             AND purged_at IS NULL THEN 1 ELSE 0 END AS current \
             FROM consents WHERE id IN ({})",
            list
        );
        let mut current = 0usize;
        db.for_each(&sql, params, |row| {
            current += usize::from(row.value::<i64>("current") == 1);
            Ok(())
        })
        .await?;
        if current != chunk.len() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The current record(s) of each of these travellers (those a new record would
/// supersede), oldest first; a traveller with none is absent. One query per 500.
#[instrument(skip_all)]
pub async fn current_ids_of(
    db: &mut impl Db,
    traveller_ids: &[&str],
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut current: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in traveller_ids.chunks(500) {
        let mut params = Vec::with_capacity(chunk.len());
        let list = super::text_list(&mut params, chunk);
        let sql = format!(
            "SELECT traveller_id, id FROM consents WHERE traveller_id IN ({}) \
             AND superseded_by IS NULL ORDER BY traveller_id, created_at, id",
            list
        );
        db.for_each(&sql, params, |row| {
            current
                .entry(row.value("traveller_id"))
                .or_default()
                .push(row.value("id"));
            Ok(())
        })
        .await?;
    }
    Ok(current)
}

/// A consent record's two rows, bound and ready to insert: the record (its scope,
/// sealed contact and withdrawal code) and its document (signature, sealed
/// statement, receipt).
pub struct ConsentRows {
    consent: Vec<Param>,
    document: Vec<Param>,
}

/// The columns of a record's row, in [`ConsentRows::consent`]'s order.
const CONSENT_COLUMNS: &str = "id, traveller_id, agency_id, agency_record_id, version, \
     statement_sha256, schema_version, decision, purposes, carriers, recipients, data_categories, \
     jurisdiction, collected_at, valid_until, notice_version, notice_language, notice_sha256, \
     collection_method, key_id, key_master, wrapped_key, sealed_mobile, sealed_email, \
     withdrawal_code_id, withdrawal_code_hash, created_at, purge_after, mobile_digest, email_digest";

/// How many columns [`CONSENT_COLUMNS`] names.
const CONSENT_WIDTH: usize = 30;

/// The columns of a document's row, in [`ConsentRows::document`]'s order.
const DOCUMENT_COLUMNS: &str = "consent_id, signature, sealed_statement, receipt";

/// How many columns [`DOCUMENT_COLUMNS`] names.
const DOCUMENT_WIDTH: usize = 4;

/// Records per multi-row insert: under a thousand parameters a statement, far inside
/// both engines' limits. One statement per record cost PostgreSQL a round trip and
/// an executor start each: 0.12 ms a call, more than half its time per record stored.
pub const INSERT_ROWS: usize = 32;

impl From<NewConsent<'_>> for ConsentRows {
    fn from(consent: NewConsent<'_>) -> Self {
        let (code_id, code_hash) = match consent.withdrawal_code {
            Some((id, hash)) => (Param::Text(id.to_string()), Param::Bytes(hash.to_vec())),
            None => (Param::NullText, Param::NullBytes),
        };
        let text = |value: &str| Param::Text(value.to_string());
        let row = vec![
            text(consent.id),
            text(consent.traveller_id),
            text(consent.agency_id),
            text(consent.agency_record_id),
            Param::Int(consent.version),
            Param::Bytes(consent.statement_sha256.to_vec()),
            text(consent.schema_version),
            text(consent.decision.as_str()),
            Param::Text(join(consent.purposes.iter().map(|p| p.as_str()))),
            Param::Text(join(consent.carriers.iter().map(|c| c.as_str()))),
            text(consent.recipients),
            Param::Text(join(consent.data_categories.iter().map(|c| c.as_str()))),
            text(consent.jurisdiction),
            Param::Int(to_millis(consent.collected_at)),
            Param::int(consent.valid_until.map(to_millis)),
            text(consent.notice[0]),
            text(consent.notice[1]),
            text(consent.notice[2]),
            text(consent.collection_method),
            text(consent.key_id),
            Param::Text(consent.wrapped_key.master),
            Param::Bytes(consent.wrapped_key.wrapped),
            Param::bytes(consent.sealed_mobile),
            Param::bytes(consent.sealed_email),
            code_id,
            code_hash,
            Param::Int(to_millis(consent.now)),
            Param::Int(to_millis(consent.purge_after)),
            Param::bytes(consent.digests.mobile),
            Param::bytes(consent.digests.email),
        ];
        debug_assert_eq!(row.len(), CONSENT_WIDTH);
        let document = vec![
            text(consent.id),
            text(consent.signature),
            Param::Bytes(consent.sealed_statement),
            text(consent.receipt),
        ];
        debug_assert_eq!(document.len(), DOCUMENT_WIDTH);
        Self {
            consent: row,
            document,
        }
    }
}

/// Stores consent records and their documents, [`INSERT_ROWS`] a statement, in the
/// order given. Nothing is superseded here: a record that supersedes others is
/// stored after them and then marks them with [`supersede_current`], before any
/// later record is stored.
#[instrument(skip_all)]
pub async fn insert_all(db: &mut impl Db, records: Vec<ConsentRows>) -> Result<(), StoreError> {
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<ConsentRows> = records.by_ref().take(INSERT_ROWS).collect();
        let style = db.placeholders();
        let mut consents = Vec::with_capacity(chunk.len() * CONSENT_WIDTH);
        let mut documents = Vec::with_capacity(chunk.len() * DOCUMENT_WIDTH);
        let rows = chunk.len();
        for ConsentRows { consent, document } in chunk {
            consents.extend(consent);
            documents.extend(document);
        }
        db.execute(
            &format!(
                "INSERT INTO consents ({CONSENT_COLUMNS}) VALUES {}",
                values_rows(style, rows, CONSENT_WIDTH)
            ),
            consents,
        )
        .await?;
        db.execute(
            &format!(
                "INSERT INTO consent_documents ({DOCUMENT_COLUMNS}) VALUES {}",
                values_rows(style, rows, DOCUMENT_WIDTH)
            ),
            documents,
        )
        .await?;
    }
    Ok(())
}

/// Marks the traveller's current records, but `consent_id`, superseded by it: the
/// records [`current_ids_of`] read in the same transaction, or those the same upload
/// stored before it.
#[instrument(skip_all)]
pub async fn supersede_current(
    db: &mut impl Db,
    consent_id: &str,
    traveller_id: &str,
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE consents SET superseded_by = $1 WHERE traveller_id = $2 AND superseded_by IS NULL AND id <> $1",
        vec![
            Param::Text(consent_id.to_string()),
            Param::Text(traveller_id.to_string()),
        ],
    )
    .await?;
    Ok(())
}

fn join<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.collect::<Vec<_>>().join(",")
}

pub(super) fn split(words: &str) -> impl Iterator<Item = &str> {
    words.split(',').filter(|w| !w.is_empty())
}

pub(crate) const SCOPE_COLUMNS: &str =
    "c.decision, c.superseded_by, c.withdrawn_at, c.purposes, c.carriers, c.valid_until";

/// What a stored consent allows now, read fresh (for redemption time).
#[instrument(skip_all)]
pub async fn scope(conn: &mut Conn, consent_id: &str) -> Result<ConsentScope, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SCOPE_COLUMNS} FROM consents c WHERE c.id = $1"
    ))
    .bind(consent_id)
    .fetch_one(conn)
    .await?;
    scope_from_row(&row)
}

pub(crate) fn scope_from_row(row: &impl Columns) -> Result<ConsentScope, StoreError> {
    let decision: String = row.value("decision");
    let purposes: String = row.value("purposes");
    let carriers: String = row.value("carriers");
    let valid_until: Option<i64> = row.value("valid_until");
    Ok(ConsentScope {
        decision: Decision::from_word(&decision)
            .ok_or_else(|| StoreError::Corrupt(format!("consent decision {decision}")))?,
        superseded: row.value::<Option<String>>("superseded_by").is_some(),
        withdrawn: row.value::<Option<i64>>("withdrawn_at").is_some(),
        purposes: split(&purposes)
            .map(|w| {
                Purpose::from_word(w).ok_or_else(|| StoreError::Corrupt(format!("purpose {w}")))
            })
            .collect::<Result<_, _>>()?,
        carriers: split(&carriers)
            .map(|c| CarrierCode::parse(c).map_err(|_| StoreError::Corrupt(format!("carrier {c}"))))
            .collect::<Result<_, _>>()?,
        valid_until: valid_until.map(from_millis).transpose()?,
    })
}

/// The record a withdrawal code was issued for.
#[derive(Debug, Clone)]
pub struct CodeHolder {
    /// The record.
    pub consent_id: String,
    /// Its agency.
    pub agency_id: String,
    /// Its traveller.
    pub traveller_id: String,
    /// SHA-256 of the code's secret part.
    pub code_hash: Vec<u8>,
}

/// The record a withdrawal code (by its public lookup id) was issued for.
#[instrument(skip_all)]
pub async fn by_withdrawal_code(
    db: &mut impl Db,
    code_id: &str,
) -> Result<Option<CodeHolder>, StoreError> {
    db.optional(
        "SELECT id, agency_id, traveller_id, withdrawal_code_hash FROM consents WHERE withdrawal_code_id = $1",
        vec![Param::Text(code_id.to_string())],
        |r| {
            Ok(CodeHolder {
                consent_id: r.value("id"),
                agency_id: r.value("agency_id"),
                traveller_id: r.value("traveller_id"),
                code_hash: r.value("withdrawal_code_hash"),
            })
        },
    )
    .await
}

/// Marks a record withdrawn, unless it was already. Returns whether it changed.
#[instrument(skip_all)]
pub async fn withdraw(
    conn: &mut Conn,
    consent_id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE consents SET withdrawn_at = $1, withdrawn_by = $2 WHERE id = $3 AND withdrawn_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(by)
    .bind(consent_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
