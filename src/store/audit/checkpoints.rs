//! Signed checkpoints of the log, as stored: each tree size with its root and note.

use super::to_hash;
use crate::audit::merkle::Hash;
use crate::store::db::Db;
use crate::store::row::Columns;
use crate::store::{from_millis, to_millis, Conn, Param, StoreError};
use time::OffsetDateTime;

/// Up to `limit` checkpoints with a tree larger than `after`, smallest first.
pub async fn checkpoints_after(
    db: &mut impl Db,
    after: u64,
    limit: i64,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut found = Vec::new();
    db.for_each(
        "SELECT tree_size, root, signed_at, note FROM audit_checkpoints WHERE tree_size > $1 \
         ORDER BY tree_size LIMIT $2",
        vec![Param::Int(after as i64), Param::Int(limit)],
        |row| {
            found.push(checkpoint_from(row)?);
            Ok(())
        },
    )
    .await?;
    Ok(found)
}

/// The smallest checkpoint covering entry `index`, if one was signed.
pub async fn checkpoint_covering(
    db: &mut impl Db,
    index: u64,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    Ok(checkpoints_after(db, index, 1).await?.pop())
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    /// Entries covered.
    pub tree_size: u64,
    /// Tree head.
    pub root: Hash,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// The signed note.
    pub note: String,
}

/// Stores a checkpoint; a second broker signing the same size writes nothing.
pub async fn insert_checkpoint(
    conn: &mut Conn,
    checkpoint: &StoredCheckpoint,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root, signed_at, note) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(checkpoint.tree_size as i64)
    .bind(checkpoint.root.as_slice())
    .bind(to_millis(checkpoint.signed_at))
    .bind(&checkpoint.note)
    .execute(conn)
    .await?;
    Ok(())
}

fn checkpoint_from(row: &impl Columns) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: row.value::<i64>("tree_size") as u64,
        root: to_hash(row.value("root"))?,
        signed_at: from_millis(row.value("signed_at"))?,
        note: row.value("note"),
    })
}

/// The checkpoint with the largest tree, if any.
pub async fn latest_checkpoint(conn: &mut Conn) -> Result<Option<StoredCheckpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT tree_size, root, signed_at, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(checkpoint_from).transpose()
}

/// The checkpoint of exactly `tree_size` entries, if one was signed.
pub async fn checkpoint_of(
    db: &mut impl Db,
    tree_size: u64,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    db.optional(
        "SELECT tree_size, root, signed_at, note FROM audit_checkpoints WHERE tree_size = $1",
        vec![Param::Int(tree_size as i64)],
        |row| checkpoint_from(row),
    )
    .await
}

/// Every stored checkpoint, smallest tree first.
pub async fn checkpoints(conn: &mut Conn) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let rows = sqlx::query(
        "SELECT tree_size, root, signed_at, note FROM audit_checkpoints ORDER BY tree_size",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(checkpoint_from).collect()
}
