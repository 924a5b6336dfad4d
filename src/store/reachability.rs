//! Whether a traveller's channel reaches them (`channel_reachability`), as the broker
//! last learnt from a delivery receipt, a bounce or the traveller's own confirmation,
//! and the agency's contacts to fix.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, Conn, Param, StoreError};
use sqlx::Row;
use time::OffsetDateTime;

/// The contact a message went to, as the reachability of its channel is kept.
#[derive(Debug, Clone)]
pub struct MessageContact {
    /// The traveller.
    pub traveller_id: String,
    /// Their agency.
    pub agency_id: String,
    /// `sms` or `email`.
    pub channel: String,
    /// The keyed digest of the contact, when the record has one (records stored before
    /// digests were kept, and purged ones, have none).
    pub digest: Option<Vec<u8>>,
}

/// The contact of a message: its record's digest of the channel it went by. A
/// verification's code is a message too: its contact is the one it checks.
pub async fn message_contact(
    db: &mut impl Db,
    message_id: &str,
) -> Result<Option<MessageContact>, StoreError> {
    db.optional(
        "SELECT m.traveller_id, m.agency_id, m.channel, \
         CASE WHEN m.channel = 'sms' THEN c.mobile_digest ELSE c.email_digest END AS digest \
         FROM messages m JOIN consents c ON c.id = m.consent_id WHERE m.id = $1 \
         UNION ALL SELECT traveller_id, agency_id, channel, digest FROM contact_verifications WHERE id = $1",
        vec![Param::Text(message_id.to_string())],
        |r| {
            Ok(MessageContact {
                traveller_id: r.value("traveller_id"),
                agency_id: r.value("agency_id"),
                channel: r.value("channel"),
                digest: r.value("digest"),
            })
        },
    )
    .await
}

/// What is known of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// `reachable` or `unreachable`.
    pub state: String,
    /// The contact it is about.
    pub digest: Vec<u8>,
}

/// What is known of a traveller's channel, for any contact.
pub async fn known(
    db: &mut impl Db,
    traveller_id: &str,
    channel: &str,
) -> Result<Option<Known>, StoreError> {
    db.optional(
        "SELECT state, digest FROM channel_reachability WHERE traveller_id = $1 AND channel = $2",
        vec![
            Param::Text(traveller_id.to_string()),
            Param::Text(channel.to_string()),
        ],
        |r| {
            Ok(Known {
                state: r.value("state"),
                digest: r.value("digest"),
            })
        },
    )
    .await
}

/// A channel's new state.
#[derive(Debug, Clone)]
pub struct Learnt<'a> {
    /// Whose contact, and which.
    pub contact: &'a MessageContact,
    /// Its digest.
    pub digest: &'a [u8],
    /// `reachable` or `unreachable`.
    pub state: &'static str,
    /// Why it is unreachable (`undeliverable`, `hard_bounce`).
    pub reason: Option<&'static str>,
    /// The message that told (a relayed message, or the verification that carried the
    /// code).
    pub message_id: &'a str,
    /// When.
    pub at: OffsetDateTime,
    /// Whether the traveller confirmed the contact (a verification) rather than a
    /// gateway or a mail server reporting on a message.
    pub verified: bool,
}

/// Records what was learnt of a channel, replacing what was known of it. When and
/// whether it was last delivered to or verified carry over only for the same contact.
pub async fn record(db: &mut impl Db, learnt: &Learnt<'_>) -> Result<(), StoreError> {
    let reachable = learnt.state == "reachable";
    let delivered = (reachable && !learnt.verified).then(|| to_millis(learnt.at));
    let verified = (reachable && learnt.verified).then(|| to_millis(learnt.at));
    let sql = "INSERT INTO channel_reachability (traveller_id, channel, agency_id, digest, state, reason, \
         message_id, changed_at, delivered_at, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (traveller_id, channel) DO UPDATE SET agency_id = excluded.agency_id, \
         digest = excluded.digest, state = excluded.state, reason = excluded.reason, \
         message_id = excluded.message_id, changed_at = excluded.changed_at, \
         delivered_at = CASE WHEN channel_reachability.digest = excluded.digest \
           THEN COALESCE(excluded.delivered_at, channel_reachability.delivered_at) ELSE excluded.delivered_at END, \
         verified_at = CASE WHEN channel_reachability.digest = excluded.digest \
           THEN COALESCE(excluded.verified_at, channel_reachability.verified_at) ELSE excluded.verified_at END";
    let params = vec![
        Param::Text(learnt.contact.traveller_id.clone()),
        Param::Text(learnt.contact.channel.clone()),
        Param::Text(learnt.contact.agency_id.clone()),
        Param::Bytes(learnt.digest.to_vec()),
        Param::Text(learnt.state.to_string()),
        Param::text(learnt.reason.map(str::to_string)),
        Param::Text(learnt.message_id.to_string()),
        Param::Int(to_millis(learnt.at)),
        Param::int(delivered),
        Param::int(verified),
    ];
    db.execute(sql, params).await?;
    Ok(())
}

/// A channel of an agency's client that does not reach them.
#[derive(Debug, Clone)]
pub struct ToFix {
    /// The traveller.
    pub traveller_id: String,
    /// Their current record.
    pub consent_id: String,
    /// The agency's record id.
    pub record_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// `sms` or `email`.
    pub channel: String,
    /// Why (`undeliverable`, `hard_bounce`).
    pub reason: Option<String>,
    /// Since when.
    pub since: OffsetDateTime,
    /// The first departure on or after `today` (`YYYY-MM-DD`), if any.
    pub departs: Option<String>,
}

/// The agency's clients whose current record holds a contact known not to reach them,
/// soonest departure first (those with no departure ahead last), at most `limit`.
pub async fn to_fix(
    conn: &mut Conn,
    agency_id: &str,
    today: &str,
    limit: i64,
) -> Result<Vec<ToFix>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.traveller_id, r.channel, r.reason, r.changed_at, c.id AS consent_id, \
         c.agency_record_id, b.record_locator, \
         (SELECT MIN(s.departure_date) FROM segments s WHERE s.booking_id = b.id \
          AND s.departure_date >= $2) AS departs \
         FROM channel_reachability r \
         JOIN consents c ON c.traveller_id = r.traveller_id AND c.superseded_by IS NULL \
           AND c.withdrawn_at IS NULL AND c.purged_at IS NULL \
         JOIN travellers t ON t.id = r.traveller_id \
         JOIN bookings b ON b.id = t.booking_id \
         WHERE r.agency_id = $1 AND c.agency_id = $1 AND r.state = 'unreachable' \
         AND ((r.channel = 'sms' AND c.mobile_digest = r.digest) \
           OR (r.channel = 'email' AND c.email_digest = r.digest)) \
         ORDER BY departs NULLS LAST, r.traveller_id, r.channel \
         LIMIT $3",
    )
    .bind(agency_id)
    .bind(today)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ToFix {
                traveller_id: r.get("traveller_id"),
                consent_id: r.get("consent_id"),
                record_id: r.get("agency_record_id"),
                record_locator: r.get("record_locator"),
                channel: r.get("channel"),
                reason: r.get("reason"),
                since: from_millis(r.get("changed_at"))?,
                departs: r.get("departs"),
            })
        })
        .collect()
}
