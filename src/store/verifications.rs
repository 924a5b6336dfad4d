//! The outcome of each verification of the audit log run from the console, so the
//! integrity panel shows the last one even after a restart.

use super::{from_millis, to_millis, Conn, StoreError};
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// One finished verification.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Its id (`ver_…`).
    pub id: String,
    /// The officer who ran it.
    pub officer_id: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub finished_at: OffsetDateTime,
    /// Entries checked.
    pub entries: i64,
    /// Signed checkpoints the rebuilt tree matched.
    pub checkpoints: i64,
    /// The root of the rebuilt tree.
    pub root: Vec<u8>,
    /// The first entry at fault, when one can be named.
    pub finding_index: Option<i64>,
    /// What was wrong; `None` when the log was intact.
    pub finding: Option<String>,
}

/// Records a finished verification.
#[instrument(skip_all)]
pub async fn insert(conn: &mut Conn, v: &Verification) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_verifications (id, officer_id, started_at, finished_at, entries, checkpoints, \
         root, finding_index, finding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.id)
    .bind(&v.officer_id)
    .bind(to_millis(v.started_at))
    .bind(to_millis(v.finished_at))
    .bind(v.entries)
    .bind(v.checkpoints)
    .bind(&v.root)
    .bind(v.finding_index)
    .bind(&v.finding)
    .execute(conn)
    .await?;
    Ok(())
}

/// The most recent verification, if any ran.
#[instrument(skip_all)]
pub async fn latest(conn: &mut Conn) -> Result<Option<Verification>, StoreError> {
    let row = sqlx::query(
        "SELECT id, officer_id, started_at, finished_at, entries, checkpoints, root, finding_index, finding \
         FROM audit_verifications ORDER BY finished_at DESC, id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Verification {
            id: r.get("id"),
            officer_id: r.get("officer_id"),
            started_at: from_millis(r.get("started_at"))?,
            finished_at: from_millis(r.get("finished_at"))?,
            entries: r.get("entries"),
            checkpoints: r.get("checkpoints"),
            root: r.get("root"),
            finding_index: r.get("finding_index"),
            finding: r.get("finding"),
        })
    })
    .transpose()
}
