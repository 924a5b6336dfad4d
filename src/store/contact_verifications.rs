//! Contact verifications (`contact_verifications`): what an agency asked to verify,
//! the code's progress through the relay (the table is that message's queue, leased
//! like `messages` through [`outbox`]), and the traveller's answer.

use super::consents::{scope_from_row, SCOPE_COLUMNS};
use super::db::Db;
use super::outbox::{self, Queue};
use super::row::Columns;
use super::{from_millis, to_millis, Conn, Param, Store, StoreError};
use crate::domain::delivery::Channel;
use crate::domain::scope::ConsentScope;
use sqlx::Row;
use time::OffsetDateTime;

/// A verification as stored.
#[derive(Debug, Clone)]
pub struct VerificationRow {
    /// `cvf_…`.
    pub id: String,
    /// The agency that asked.
    pub agency_id: String,
    /// The record whose contact it checks.
    pub consent_id: String,
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The channel checked.
    pub channel: Channel,
    /// The keyed digest of the contact checked.
    pub digest: Vec<u8>,
    /// The language the traveller is written to in (the notice's).
    pub language: String,
    /// The code or link secret, sealed under the root key.
    pub sealed_secret: Vec<u8>,
    /// The relay's status: `queued`, `delivered`, `failed`, `cancelled`.
    pub status: String,
    /// Sending attempts made.
    pub attempts: i64,
    /// What went wrong last in sending (a protocol status).
    pub last_error: Option<String>,
    /// When the agency asked.
    pub created_at: OffsetDateTime,
    /// When the relay sent it, failed for good, or cancelled it.
    pub finished_at: Option<OffsetDateTime>,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// Wrong codes tried.
    pub wrong_codes: i64,
    /// When the traveller confirmed.
    pub confirmed_at: Option<OffsetDateTime>,
}

const COLUMNS: &str =
    "id, agency_id, consent_id, traveller_id, channel, digest, language, sealed_secret, \
     status, attempts, last_error, created_at, finished_at, expires_at, wrong_codes, confirmed_at";

fn from_row(row: &impl Columns) -> Result<VerificationRow, StoreError> {
    let channel: String = row.value("channel");
    let finished_at: Option<i64> = row.value("finished_at");
    let confirmed_at: Option<i64> = row.value("confirmed_at");
    Ok(VerificationRow {
        id: row.value("id"),
        agency_id: row.value("agency_id"),
        consent_id: row.value("consent_id"),
        traveller_id: row.value("traveller_id"),
        channel: Channel::from_word(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("channel {channel}")))?,
        digest: row.value("digest"),
        language: row.value("language"),
        sealed_secret: row.value("sealed_secret"),
        status: row.value("status"),
        attempts: row.value("attempts"),
        last_error: row.value("last_error"),
        created_at: from_millis(row.value("created_at"))?,
        finished_at: finished_at.map(from_millis).transpose()?,
        expires_at: from_millis(row.value("expires_at"))?,
        wrong_codes: row.value("wrong_codes"),
        confirmed_at: confirmed_at.map(from_millis).transpose()?,
    })
}

/// Stores a verification, queued for the relay now.
pub async fn insert(conn: &mut Conn, v: &VerificationRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO contact_verifications (id, agency_id, consent_id, traveller_id, channel, digest, language, \
         sealed_secret, status, attempts, next_attempt_at, created_at, expires_at, wrong_codes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9, $10, 0)",
    )
    .bind(&v.id)
    .bind(&v.agency_id)
    .bind(&v.consent_id)
    .bind(&v.traveller_id)
    .bind(v.channel.as_str())
    .bind(&v.digest)
    .bind(&v.language)
    .bind(&v.sealed_secret)
    .bind(to_millis(v.created_at))
    .bind(to_millis(v.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// A verification by id; `agency_id` scopes it to the agency that asked (`None` for
/// the traveller's link, whose secret is the only credential).
pub async fn get(
    db: &mut impl Db,
    agency_id: Option<&str>,
    id: &str,
) -> Result<Option<VerificationRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM contact_verifications WHERE id = $1");
    let mut params = vec![Param::Text(id.to_string())];
    if let Some(agency_id) = agency_id {
        sql.push_str(" AND agency_id = $2");
        params.push(Param::Text(agency_id.to_string()));
    }
    db.optional(&sql, params, |row| from_row(row)).await
}

/// How many verifications of a traveller's channel were asked for since `since`, and
/// when the earliest of them was (it leaves the window first).
pub async fn asked_since(
    conn: &mut Conn,
    traveller_id: &str,
    channel: Channel,
    since: OffsetDateTime,
) -> Result<(i64, Option<OffsetDateTime>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS earliest FROM contact_verifications \
         WHERE traveller_id = $1 AND channel = $2 AND created_at > $3",
    )
    .bind(traveller_id)
    .bind(channel.as_str())
    .bind(to_millis(since))
    .fetch_one(conn)
    .await?;
    let earliest: Option<i64> = row.get("earliest");
    Ok((row.get("n"), earliest.map(from_millis).transpose()?))
}

/// Claims up to `limit` verifications due for sending, leased until `lease_until`
/// (see [`outbox::claim`]).
pub async fn claim(
    store: &Store,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<VerificationRow>, StoreError> {
    let rows = outbox::claim(
        store,
        Queue::Verifications,
        COLUMNS,
        now,
        lease_until,
        limit,
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// Counts a wrong code while fewer than `max` were tried; answers how many have been,
/// or `None` when the limit was reached already (a concurrent guess took the last
/// try). The condition is in the statement, so concurrent answers cannot pass it.
pub async fn count_wrong_code(
    conn: &mut Conn,
    id: &str,
    max: u32,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "UPDATE contact_verifications SET wrong_codes = wrong_codes + 1 \
         WHERE id = $1 AND wrong_codes < $2 RETURNING wrong_codes",
    )
    .bind(id)
    .bind(i64::from(max))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.get("wrong_codes")))
}

/// Marks it confirmed, unless it was already or `max` wrong codes locked it
/// meanwhile; `false` then.
pub async fn confirm(
    conn: &mut Conn,
    id: &str,
    now: OffsetDateTime,
    max: u32,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE contact_verifications SET confirmed_at = $1 \
         WHERE id = $2 AND confirmed_at IS NULL AND wrong_codes < $3",
    )
    .bind(to_millis(now))
    .bind(id)
    .bind(i64::from(max))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A record as a verification needs it: whose, its state, and the digests and
/// language of its contact.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The record.
    pub consent_id: String,
    /// Its traveller.
    pub traveller_id: String,
    /// What it allows.
    pub scope: ConsentScope,
    /// Whether its contact was destroyed.
    pub purged: bool,
    /// The keyed digest of its mobile, if it holds one.
    pub mobile_digest: Option<Vec<u8>>,
    /// The keyed digest of its email, if it holds one.
    pub email_digest: Option<Vec<u8>>,
    /// The language of its notice.
    pub language: String,
}

impl Subject {
    /// The digest of the channel's contact, if the record holds one.
    pub fn digest(&self, channel: Channel) -> Option<&[u8]> {
        match channel {
            Channel::Sms => self.mobile_digest.as_deref(),
            Channel::Email => self.email_digest.as_deref(),
        }
    }
}

fn subject_from_row(row: &sqlx::any::AnyRow) -> Result<Subject, StoreError> {
    Ok(Subject {
        consent_id: row.get("id"),
        traveller_id: row.get("traveller_id"),
        scope: scope_from_row(row)?,
        purged: row.get::<Option<i64>, _>("purged_at").is_some(),
        mobile_digest: row.get("mobile_digest"),
        email_digest: row.get("email_digest"),
        language: row.get("notice_language"),
    })
}

const SUBJECT: &str =
    "c.id, c.traveller_id, c.purged_at, c.mobile_digest, c.email_digest, c.notice_language";

/// One of the agency's records.
pub async fn subject(
    conn: &mut Conn,
    agency_id: &str,
    consent_id: &str,
) -> Result<Option<Subject>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SUBJECT}, {SCOPE_COLUMNS} FROM consents c WHERE c.id = $1 AND c.agency_id = $2"
    ))
    .bind(consent_id)
    .bind(agency_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(subject_from_row).transpose()
}

/// The traveller's current record (the latest version, whatever its state).
pub async fn current_subject(
    conn: &mut Conn,
    traveller_id: &str,
) -> Result<Option<Subject>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SUBJECT}, {SCOPE_COLUMNS} FROM consents c \
         WHERE c.traveller_id = $1 AND c.superseded_by IS NULL ORDER BY c.created_at DESC LIMIT 1"
    ))
    .bind(traveller_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(subject_from_row).transpose()
}
