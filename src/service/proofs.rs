//! The log's checkpoints and proofs, for every party.
//!
//! Any party reads checkpoints and consistency proofs (they reveal nothing but
//! hashes); an inclusion proof carries its entry, so an airline or an agency gets one
//! only for an entry that names it, and officers for any. Officers can ask for a
//! checkpoint at once instead of waiting for the interval.
//!
//! Reading never signs: a proof is against a checkpoint already signed (by the
//! interval task or an officer's `POST`), and an entry no checkpoint covers yet is
//! answered `404 no-checkpoint` with `Retry-After` until the next one. Otherwise any
//! party could make the broker sign and publish at will.

use crate::audit::proof::{self, ConsistencyProof, InclusionProof};
use crate::domain::party::{Party, PartyKind};
use crate::service::audit_entries::parse_index;
use crate::service::checkpoints::SignError;
use crate::service::input::page_limit;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::audit::{self, StoredCheckpoint};
use crate::store::db::Db;
use crate::store::StoreError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A checkpoint as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CheckpointView {
    /// Entries covered.
    pub tree_size: u64,
    /// Tree head, base64.
    pub root: String,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// The C2SP signed note: what to keep, publish and verify.
    pub note: String,
}

impl From<StoredCheckpoint> for CheckpointView {
    fn from(c: StoredCheckpoint) -> Self {
        Self {
            tree_size: c.tree_size,
            root: STANDARD.encode(c.root),
            signed_at: crate::domain::time::format_time(c.signed_at),
            note: c.note,
        }
    }
}

/// The log's public identity.
#[derive(Serialize, Deserialize, Debug)]
pub struct LogKeyView {
    /// The log's name, first line of every checkpoint.
    pub origin: String,
    /// The verifier key, `name+keyid+base64(0x01 ‖ Ed25519 public key)`.
    pub log_key: String,
}

/// The log's public identity.
pub fn log_key(state: &AppState) -> LogKeyView {
    LogKeyView {
        origin: state.checkpointer.settings().origin.clone(),
        log_key: state.checkpointer.log_key().to_string(),
    }
}

fn sign_failed(err: SignError) -> Error {
    match err {
        SignError::Store(err) => err.into(),
        SignError::Inconsistent(size) => {
            tracing::error!(size, "the audit log no longer extends its last checkpoint");
            Error::new(
                ErrorKind::LogInconsistent,
                format!(
                    "The log no longer extends the checkpoint of {size} entries; run `passerelle audit verify`."
                ),
            )
        }
        SignError::Key(reason) => {
            tracing::error!(reason, "the broker key cannot sign checkpoints");
            Error::of(ErrorKind::Internal)
        }
    }
}

/// No checkpoint covers entry `index` yet: retry after the next one.
pub fn not_checkpointed_yet(state: &AppState, index: u64) -> Error {
    let interval = state.checkpointer.settings().interval.as_secs().max(1);
    Error::new(
        ErrorKind::NoCheckpoint,
        format!(
            "No signed checkpoint covers entry {index} yet. One is signed every {interval} s \
             when the log grew, or at once on a compliance officer's POST /v1/audit/checkpoints."
        ),
    )
    .with_retry_after(u32::try_from(interval).unwrap_or(u32::MAX))
}

/// The latest checkpoint.
pub async fn latest(state: &AppState) -> Result<CheckpointView, Error> {
    let mut conn = state.store.reader().acquire().await?;
    audit::latest_checkpoint(&mut conn)
        .await?
        .map(CheckpointView::from)
        .ok_or_else(|| Error::new(ErrorKind::NoCheckpoint, "No checkpoint was signed yet."))
}

/// Query of the checkpoint list.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPage {
    /// Checkpoints of trees larger than this (the previous page's `next_after`).
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// A page of checkpoints.
#[derive(Serialize, Deserialize, Debug)]
pub struct CheckpointList {
    /// Smallest tree first.
    pub checkpoints: Vec<CheckpointView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Every checkpoint signed, a page at a time.
pub async fn list(state: &AppState, page: &CheckpointPage) -> Result<CheckpointList, Error> {
    let limit = page_limit(page.limit, 100, 1000)?;
    let mut conn = state.store.reader().acquire().await?;
    let mut rows = audit::checkpoints_after(&mut conn, page.after.unwrap_or(0), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after = rows.last().map(|c| c.tree_size).filter(|_| more);
    Ok(CheckpointList {
        checkpoints: rows.into_iter().map(CheckpointView::from).collect(),
        next_after,
    })
}

/// Signs a checkpoint of the log as it is now (an officer's request).
pub async fn sign(state: &AppState) -> Result<CheckpointView, Error> {
    let checkpoint = state
        .checkpointer
        .tick(&state.store, state.clock.now())
        .await
        .map_err(sign_failed)?;
    Ok(checkpoint.into())
}

/// Query of an inclusion proof.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry's index.
    pub index: String,
    /// Prove against the checkpoint of this size (default: the smallest covering the
    /// entry; none yet is `404 no-checkpoint`).
    pub tree_size: Option<String>,
}

/// Whether `party` may see entry proofs naming `agency_id` / `airline_id`.
fn may_see(party: &Party, agency_id: Option<&str>, airline_id: Option<&str>) -> bool {
    match party.kind {
        PartyKind::Officer => true,
        PartyKind::Agency => agency_id == Some(party.id.as_str()),
        PartyKind::Airline => airline_id == Some(party.id.as_str()),
    }
}

/// Entry N, its path and the signed checkpoint, for a party the entry names.
pub async fn inclusion(
    state: &AppState,
    party: &Party,
    query: &InclusionQuery,
) -> Result<InclusionProof, Error> {
    let index = parse_index(&query.index, "index")?;
    let tree_size = query
        .tree_size
        .as_deref()
        .map(|t| parse_index(t, "tree_size"))
        .transpose()?;
    let not_found = || Error::of(ErrorKind::EntryNotFound);
    let proved =
        crate::store::direct::read_now!(&state.store, |db| prove(db, party, index, tree_size))?;
    match proved {
        Proved::Proof(proof) => Ok(*proof),
        Proved::NotFound => Err(not_found()),
        Proved::NoCheckpointOfSize => Err(Error::field(
            ErrorKind::InvalidField,
            "tree_size",
            "no checkpoint of this size was signed; see GET /v1/audit/checkpoints",
        )),
        Proved::NotCheckpointedYet => Err(not_checkpointed_yet(state, index)),
        Proved::NotCovered => Err(Error::field(
            ErrorKind::InvalidField,
            "tree_size",
            "the checkpoint does not cover this entry",
        )),
    }
}

/// What an inclusion proof's reads found.
enum Proved {
    Proof(Box<InclusionProof>),
    /// No such entry, or one the party may not see (its existence is not disclosed).
    NotFound,
    NoCheckpointOfSize,
    NotCheckpointedYet,
    NotCovered,
}

/// The reads of an inclusion proof: the entry (once), the checkpoint, the tree's
/// hashes. On SQLite they run on the file directly (see `store::direct`): an officer
/// checking a disruption's uses asks for hundreds.
async fn prove(
    db: &mut impl Db,
    party: &Party,
    index: u64,
    tree_size: Option<u64>,
) -> Result<Proved, StoreError> {
    let Some((entry, leaf)) = audit::entry_at(db, index).await? else {
        return Ok(Proved::NotFound);
    };
    // Another party's entry is answered as absent: its existence is not disclosed.
    if !may_see(
        party,
        entry.agency_id.as_deref(),
        entry.airline_id.as_deref(),
    ) {
        return Ok(Proved::NotFound);
    }
    let checkpoint = match tree_size {
        Some(size) => match audit::checkpoint_of(db, size).await? {
            Some(checkpoint) => checkpoint,
            None => return Ok(Proved::NoCheckpointOfSize),
        },
        None => match audit::checkpoint_covering(db, index).await? {
            Some(checkpoint) => checkpoint,
            None => return Ok(Proved::NotCheckpointedYet),
        },
    };
    if index >= checkpoint.tree_size {
        return Ok(Proved::NotCovered);
    }
    let proof = audit::proof_of_entry(db, entry, &leaf, &checkpoint).await?;
    Ok(Proved::Proof(Box::new(proof)))
}

/// Query of a consistency proof.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The smaller tree's size.
    pub from: String,
    /// The larger tree's size (at most the log's size).
    pub to: String,
}

/// That the tree of `from` entries is a prefix of the tree of `to`.
pub async fn consistency(
    state: &AppState,
    query: &ConsistencyQuery,
) -> Result<ConsistencyProof, Error> {
    let from = parse_index(&query.from, "from")?;
    let to = parse_index(&query.to, "to")?;
    if from > to {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "from",
            "must not exceed `to`",
        ));
    }
    let mut conn = state.store.reader().acquire().await?;
    let size = audit::size(&mut conn).await? as u64;
    if to > size {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "to",
            format!("the log holds {size} entries"),
        ));
    }
    let hashes = audit::consistency_proof(&mut conn, from, to).await?;
    Ok(ConsistencyProof {
        from,
        to,
        hashes: proof::encode(&hashes),
    })
}

/// Entry `entry`'s inclusion proof against the checkpoint of `tree_size` (default: the
/// smallest covering it), for an operator at the command line: any entry, no party.
pub async fn for_operator(
    store: &crate::store::Store,
    entry: u64,
    tree_size: Option<u64>,
) -> anyhow::Result<InclusionProof> {
    use anyhow::Context;
    let mut conn = store.reader().acquire().await?;
    let checkpoint = match tree_size {
        Some(size) => audit::checkpoint_of(&mut conn, size)
            .await?
            .with_context(|| format!("no checkpoint of size {size} was signed"))?,
        None => audit::checkpoint_covering(&mut conn, entry)
            .await?
            .with_context(|| {
                format!(
                "no checkpoint covers entry {entry} yet: wait for the next one, or ask for one \
                 (POST /v1/audit/checkpoints)"
            )
            })?,
    };
    audit::inclusion_proof(&mut conn, entry, &checkpoint)
        .await?
        .with_context(|| {
            format!(
                "entry {entry} is not in the tree of {}",
                checkpoint.tree_size
            )
        })
}
