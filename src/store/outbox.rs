//! The transactional outbox: relayed messages and agency webhook pushes, stored in the
//! same transaction as the change and the audit entry they come from, then delivered
//! by the worker with retries.
//!
//! A worker claims due rows by setting a lease (`lease_until`) in one conditional
//! UPDATE, so two brokers on one PostgreSQL never deliver the same row at once, and a
//! broker that dies mid-delivery leaves rows that become due again when the lease ends.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, values_rows, Conn, Engine, Param, Store, StoreError};
use crate::domain::delivery::Channel;
use sqlx::any::AnyRow;
use sqlx::{Executor, Row};
use time::OffsetDateTime;
use tracing::instrument;

/// The queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Relayed messages (`messages`).
    Messages,
    /// Webhook pushes (`webhook_deliveries`).
    Webhooks,
    /// Verification codes and links to send (`contact_verifications`).
    Verifications,
}

impl Queue {
    /// Its table.
    pub fn table(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Webhooks => "webhook_deliveries",
            Self::Verifications => "contact_verifications",
        }
    }

    /// Among rows due at the same time, the order they were queued in: a push's audit
    /// entry (an agency's webhook gets its events in the log's order), else when the
    /// row was written.
    fn queued_order(self) -> &'static str {
        match self {
            Self::Webhooks => "audit_index",
            Self::Messages | Self::Verifications => "created_at",
        }
    }
}

/// A message to relay, as stored.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its id (`msg_…`).
    pub id: String,
    /// The token it was sent under.
    pub token_id: String,
    /// The airline that sent it.
    pub airline_id: String,
    /// The agency whose client it reaches.
    pub agency_id: String,
    /// The consent record the token was granted under.
    pub consent_id: String,
    /// The traveller.
    pub traveller_id: String,
    /// SMS or email.
    pub channel: Channel,
    /// The event category it is about.
    pub category: String,
    /// Subject and text, sealed.
    pub sealed_body: Vec<u8>,
    /// `queued`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (while queued).
    pub next_attempt_at: OffsetDateTime,
    /// What went wrong last (a protocol status, never a contact value).
    pub last_error: Option<String>,
    /// When it was accepted.
    pub created_at: OffsetDateTime,
    /// When it was delivered, failed for good or was cancelled.
    pub finished_at: Option<OffsetDateTime>,
}

/// Stores a message to relay, queued for now.
#[instrument(skip_all)]
pub async fn enqueue_message(conn: &mut Conn, m: &Message) -> Result<(), StoreError> {
    enqueue_messages(conn, &[m]).await
}

/// Messages queued at once (the relays a batch of uses accepts) per statement: 13
/// parameters a row, about 650 a statement.
const MESSAGE_ROWS: usize = 50;

/// Stores several messages, queued for now, in multi-row statements.
#[instrument(skip_all)]
pub async fn enqueue_messages(db: &mut impl Db, messages: &[&Message]) -> Result<(), StoreError> {
    for chunk in messages.chunks(MESSAGE_ROWS) {
        let sql = format!(
            "INSERT INTO messages (id, token_id, airline_id, agency_id, consent_id, traveller_id, channel, category, \
             sealed_body, status, attempts, next_attempt_at, created_at) VALUES {}",
            values_rows(db.placeholders(), chunk.len(), 13)
        );
        let mut params = Vec::with_capacity(chunk.len() * 13);
        for m in chunk {
            params.extend([
                Param::Text(m.id.clone()),
                Param::Text(m.token_id.clone()),
                Param::Text(m.airline_id.clone()),
                Param::Text(m.agency_id.clone()),
                Param::Text(m.consent_id.clone()),
                Param::Text(m.traveller_id.clone()),
                Param::Text(m.channel.as_str().to_string()),
                Param::Text(m.category.clone()),
                Param::Bytes(m.sealed_body.clone()),
                Param::Text("queued".into()),
                Param::Int(0),
                Param::Int(to_millis(m.created_at)),
                Param::Int(to_millis(m.created_at)),
            ]);
        }
        db.execute(&sql, params).await?;
    }
    Ok(())
}

const MESSAGE_COLUMNS: &str =
    "id, token_id, airline_id, agency_id, consent_id, traveller_id, channel, category, \
     sealed_body, status, attempts, next_attempt_at, last_error, created_at, finished_at";

fn message_from_row(row: &impl Columns) -> Result<Message, StoreError> {
    let channel: String = row.value("channel");
    let finished_at: Option<i64> = row.value("finished_at");
    Ok(Message {
        id: row.value("id"),
        token_id: row.value("token_id"),
        airline_id: row.value("airline_id"),
        agency_id: row.value("agency_id"),
        consent_id: row.value("consent_id"),
        traveller_id: row.value("traveller_id"),
        channel: Channel::from_word(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("channel {channel}")))?,
        category: row.value("category"),
        sealed_body: row.value("sealed_body"),
        status: row.value("status"),
        attempts: row.value("attempts"),
        next_attempt_at: from_millis(row.value("next_attempt_at"))?,
        last_error: row.value("last_error"),
        created_at: from_millis(row.value("created_at"))?,
        finished_at: finished_at.map(from_millis).transpose()?,
    })
}

/// A message by id.
#[instrument(skip_all)]
pub async fn message(db: &mut impl Db, id: &str) -> Result<Option<Message>, StoreError> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
    db.optional(&sql, vec![Param::Text(id.to_string())], |row| {
        message_from_row(row)
    })
    .await
}

/// What the SMS gateway said became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `delivered`, `undeliverable` or `expired`.
    pub status: String,
    /// The gateway's reason, for an undeliverable message.
    pub reason: Option<String>,
    /// When the broker received it.
    pub at: OffsetDateTime,
}

/// The receipt of a message of `queue` (a relayed message, or a verification's code),
/// if the gateway or a bounce sent one.
#[instrument(skip_all)]
pub async fn receipt_of(
    db: &mut impl Db,
    queue: Queue,
    id: &str,
) -> Result<Option<Receipt>, StoreError> {
    let sql = format!(
        "SELECT receipt_status, receipt_reason, receipt_at FROM {} \
         WHERE id = $1 AND receipt_status IS NOT NULL",
        queue.table()
    );
    db.optional(&sql, vec![Param::Text(id.to_string())], |r| {
        Ok(Receipt {
            status: r.value("receipt_status"),
            reason: r.value("receipt_reason"),
            at: from_millis(r.value("receipt_at"))?,
        })
    })
    .await
}

/// Records a receipt of a message of `queue` its transport accepted (the SMS
/// gateway's receipt, an email's bounce), unless it already holds this one; `false`
/// when nothing changed.
/// A message still being handed over (leased, not yet recorded delivered) takes it
/// too: a fast gateway's receipt can arrive before the broker has written down that
/// the gateway took the message.
#[instrument(skip_all)]
pub async fn record_receipt(
    db: &mut impl Db,
    queue: Queue,
    id: &str,
    channel: &str,
    receipt: &Receipt,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {} SET receipt_status = $1, receipt_reason = $2, receipt_at = $3 \
         WHERE id = $4 AND channel = $5 \
         AND (status = 'delivered' OR (status = 'queued' AND lease_until > $3)) \
         AND (receipt_status IS NULL OR receipt_status <> $1 OR receipt_reason IS DISTINCT FROM $2)",
        queue.table()
    );
    let params = vec![
        Param::Text(receipt.status.clone()),
        Param::text(receipt.reason.clone()),
        Param::Int(to_millis(receipt.at)),
        Param::Text(id.to_string()),
        Param::Text(channel.to_string()),
    ];
    Ok(db.execute(&sql, params).await? == 1)
}

/// Claims up to `limit` due messages until `lease_until` (see [`claim`]).
#[instrument(skip_all)]
pub async fn claim_messages(
    store: &Store,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    let rows = claim(
        store,
        Queue::Messages,
        MESSAGE_COLUMNS,
        now,
        lease_until,
        limit,
    )
    .await?;
    rows.iter().map(message_from_row).collect()
}

/// A push to an agency's webhook.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// Its id (`whd_…`).
    pub id: String,
    /// The agency it goes to.
    pub agency_id: String,
    /// The audit entry it reports.
    pub audit_index: i64,
    /// The JSON body pushed (ids, purpose, event; never a contact value).
    pub payload: String,
    /// Attempts made.
    pub attempts: i64,
}

/// Webhook pushes queued at once per statement: 8 parameters a row.
const WEBHOOK_ROWS: usize = 80;

/// Stores pushes, due now, in multi-row statements.
#[instrument(skip_all)]
pub async fn enqueue_webhooks(
    db: &mut impl Db,
    deliveries: &[WebhookDelivery],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for chunk in deliveries.chunks(WEBHOOK_ROWS) {
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, agency_id, audit_index, payload, status, attempts, next_attempt_at, \
             created_at) VALUES {}",
            values_rows(db.placeholders(), chunk.len(), 8)
        );
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for delivery in chunk {
            params.extend([
                Param::Text(delivery.id.clone()),
                Param::Text(delivery.agency_id.clone()),
                Param::Int(delivery.audit_index),
                Param::Text(delivery.payload.clone()),
                Param::Text("queued".into()),
                Param::Int(0),
                Param::Int(to_millis(now)),
                Param::Int(to_millis(now)),
            ]);
        }
        db.execute(&sql, params).await?;
    }
    Ok(())
}

/// Claims up to `limit` due pushes until `lease_until` (see [`claim`]).
#[instrument(skip_all)]
pub async fn claim_webhooks(
    store: &Store,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let columns = "id, agency_id, audit_index, payload, attempts";
    let rows = claim(store, Queue::Webhooks, columns, now, lease_until, limit).await?;
    Ok(rows
        .iter()
        .map(|r| WebhookDelivery {
            id: r.get("id"),
            agency_id: r.get("agency_id"),
            audit_index: r.get("audit_index"),
            payload: r.get("payload"),
            attempts: r.get("attempts"),
        })
        .collect())
}

/// Leases up to `limit` rows of `queue` due at `now` until `lease_until`, oldest due
/// first, and returns their `columns` in that order (rows due at the same time in the
/// order they were queued), in a transaction of its own.
///
/// On SQLite the lease is a write like any other, through the writer. On PostgreSQL it
/// runs on a reader connection: it joins no batch of the writer's, so a claim waits
/// for no batch's commit and no batch for a claim.
///
/// There, the statement must read as many rows as it leases, however long the queue.
/// Planned while its table was nearly empty (a broker starting on a quiet queue) and
/// kept by the connection until the table is next analysed, the single
/// `UPDATE … WHERE id IN (SELECT … LIMIT)` this replaced became a nested loop that
/// read the whole queue once for each row it leased: with 18,700 messages queued
/// during a storm, 550 ms per claim of 32, the relay worker falling further behind
/// with each claim. So the rows are chosen in an `ARRAY(…)` run once, which locks them
/// (`FOR UPDATE SKIP LOCKED`: another broker claiming at the same moment takes the
/// next ones instead of waiting), and the planner is told to use the indexes
/// ([`POSTGRES_CLAIM_PLANNING`]): the queue's by due time, read in order and stopped
/// at `limit`, then the primary key's. Planned on its estimates instead, without
/// statistics (before autovacuum's analyze, or without autovacuum), the statement read
/// the whole queue or the whole table at each claim.
pub async fn claim(
    store: &Store,
    queue: Queue,
    columns: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<AnyRow>, StoreError> {
    let sql = claim_sql(store.engine(), queue, columns);
    let statement = sqlx::query(&sql)
        .bind(to_millis(lease_until))
        .bind(to_millis(now))
        .bind(limit);
    let rows = match store.engine() {
        Engine::Sqlite => {
            let mut tx = store.begin().await?;
            let rows = statement.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
        Engine::Postgres => {
            let mut tx = store.reader().begin().await?;
            Executor::execute(&mut *tx, POSTGRES_CLAIM_PLANNING).await?;
            let rows = statement.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
    };
    // `RETURNING` follows no order (on PostgreSQL, the primary key's): the rows are
    // put back in the order they are delivered in.
    let mut keyed = rows
        .into_iter()
        .map(|row| {
            Ok((
                (row.try_get("claim_due")?, row.try_get("claim_queued")?),
                row,
            ))
        })
        .collect::<Result<Vec<((i64, i64), AnyRow)>, StoreError>>()?;
    keyed.sort_by_key(|(key, _)| *key);
    Ok(keyed.into_iter().map(|(_, row)| row).collect())
}

/// What PostgreSQL's planner is told before it plans a claim (see [`claim`]), for
/// that transaction only: the plans it keeps for the statement are all made so.
pub const POSTGRES_CLAIM_PLANNING: &str = "SET LOCAL enable_seqscan = off; \
     SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";

/// The lease statement of `queue` on `engine` (see [`claim`]), returning `columns`
/// and the rows' order (`claim_due`, then `claim_queued`).
/// On SQLite, whose planner reads the due index in order whatever the table's size,
/// the outer condition repeats the inner one; on PostgreSQL the rows chosen are locked
/// as they are chosen, which re-checks them.
pub fn claim_sql(engine: Engine, queue: Queue, columns: &str) -> String {
    let table = queue.table();
    let returning = format!(
        "{columns}, next_attempt_at AS claim_due, {} AS claim_queued",
        queue.queued_order()
    );
    let due = format!(
        "SELECT id FROM {table} \
         WHERE status = 'queued' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
         ORDER BY next_attempt_at LIMIT $3"
    );
    match engine {
        Engine::Sqlite => format!(
            "UPDATE {table} SET lease_until = $1 WHERE id IN ({due}) \
             AND status = 'queued' AND (lease_until IS NULL OR lease_until < $2) \
             RETURNING {returning}"
        ),
        Engine::Postgres => format!(
            "UPDATE {table} SET lease_until = $1 \
             WHERE id = ANY(ARRAY({due} FOR UPDATE SKIP LOCKED)) RETURNING {returning}"
        ),
    }
}

/// Records a failed attempt and when to try again.
#[instrument(skip_all)]
pub async fn retry_later(
    db: &mut impl Db,
    queue: Queue,
    id: &str,
    error: &str,
    next_attempt_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, lease_until = NULL \
         WHERE id = $3",
        queue.table()
    );
    let params = vec![
        Param::Text(error.to_string()),
        Param::Int(to_millis(next_attempt_at)),
        Param::Text(id.to_string()),
    ];
    db.execute(&sql, params).await?;
    Ok(())
}

/// Puts a claimed row back, due at `next_attempt_at`, without counting an attempt
/// (its agency's webhook is resting behind an open circuit breaker).
#[instrument(skip_all)]
pub async fn postpone(
    conn: &mut Conn,
    queue: Queue,
    id: &str,
    next_attempt_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE {} SET next_attempt_at = $1, lease_until = NULL WHERE id = $2",
        queue.table()
    ))
    .bind(to_millis(next_attempt_at))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the last attempt: `delivered`, `failed` or `cancelled`.
#[instrument(skip_all)]
pub async fn finish(
    db: &mut impl Db,
    queue: Queue,
    id: &str,
    status: &str,
    error: Option<&str>,
    attempted: bool,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET status = $1, last_error = COALESCE($2, last_error), attempts = attempts + $3, \
         finished_at = $4, lease_until = NULL WHERE id = $5",
        queue.table()
    );
    let params = vec![
        Param::Text(status.to_string()),
        Param::text(error.map(str::to_string)),
        Param::Int(i64::from(attempted)),
        Param::Int(to_millis(now)),
        Param::Text(id.to_string()),
    ];
    db.execute(&sql, params).await?;
    Ok(())
}

/// Cancels the queued messages to a traveller (a withdrawal), in the caller's
/// transaction. Returns how many.
#[instrument(skip_all)]
pub async fn cancel_for_traveller(
    conn: &mut Conn,
    traveller_id: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'cancelled', last_error = 'consent_withdrawn', finished_at = $1 \
         WHERE traveller_id = $2 AND status = 'queued'",
    )
    .bind(to_millis(now))
    .bind(traveller_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// When the earliest queued row of `queue` is due, if any.
#[instrument(skip_all)]
pub async fn next_due(conn: &mut Conn, queue: Queue) -> Result<Option<OffsetDateTime>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT MIN(next_attempt_at) AS at FROM {} WHERE status = 'queued'",
        queue.table()
    ))
    .fetch_one(conn)
    .await?;
    let at: Option<i64> = row.get("at");
    at.map(from_millis).transpose()
}
