//! The answers kept for `Idempotency-Key`: a key is claimed before its request runs,
//! and the answer, sealed (it may hold withdrawal codes), kept for a day so that a
//! retry gets it again; the HTTP edge (`http/idempotency.rs`) fingerprints requests
//! and replays answers.

use crate::crypto::seal::Slot;
use crate::service::{AppState, Error};
use crate::store::idempotency::{self, Claim};

/// What a key holds when a request presents it.
pub enum Claimed {
    /// Nothing live: this request now holds the key.
    New,
    /// Another request with this key is still running.
    InFlight,
    /// The answer to an earlier request, opened.
    Done(KeptAnswer),
}

/// An answer kept for replay.
pub struct KeptAnswer {
    /// SHA-256 of the request it answered.
    pub request_sha256: Vec<u8>,
    /// Its status.
    pub status: u16,
    /// Its media type.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

fn slot(slot_id: &str) -> Slot<'_> {
    Slot {
        table: "idempotent_requests",
        column: "response",
        row_id: slot_id,
    }
}

/// Claims `key` of `party_id` for a request, or finds what holds it.
pub async fn claim(state: &AppState, party_id: &str, key: &str) -> Result<Claimed, Error> {
    let now = state.clock.now();
    let claim = {
        let mut tx = state.store.begin().await?;
        let claim = idempotency::claim(&mut tx, party_id, key, now).await?;
        tx.commit().await?;
        claim
    };
    Ok(match claim {
        Claim::New => Claimed::New,
        Claim::InFlight => Claimed::InFlight,
        Claim::Done {
            request_sha256,
            status,
            sealed_response,
        } => {
            let slot_id = format!("{party_id}/{key}");
            let stored = state
                .keys
                .keys()
                .root()
                .open(slot(&slot_id), &sealed_response)
                .map_err(|e| Error::internal(format!("idempotent answer: {e}")))?;
            let (content_type, body) = split_stored(&stored)?;
            Claimed::Done(KeptAnswer {
                request_sha256,
                status,
                content_type: content_type.to_string(),
                body: body.to_vec(),
            })
        }
    })
}

/// Keeps the answer to the request that holds `key`, sealed.
pub async fn keep(
    state: &AppState,
    party_id: &str,
    key: &str,
    answer: &KeptAnswer,
) -> Result<(), Error> {
    let mut stored = Vec::with_capacity(answer.content_type.len() + 1 + answer.body.len());
    stored.extend_from_slice(answer.content_type.as_bytes());
    stored.push(b'\n');
    stored.extend_from_slice(&answer.body);
    let slot_id = format!("{party_id}/{key}");
    let sealed = state.keys.keys().root().seal(slot(&slot_id), &stored);
    let mut tx = state.store.begin().await?;
    idempotency::complete(
        &mut tx,
        party_id,
        key,
        &answer.request_sha256,
        answer.status,
        &sealed,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Lets `key` go without an answer: a retry runs anew. A failure only warns: an
/// abandoned claim frees itself after 5 minutes.
pub async fn release(state: &AppState, party_id: &str, key: &str) {
    let released = async {
        let mut tx = state.store.begin().await?;
        idempotency::release(&mut tx, party_id, key).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    };
    if let Err(error) = released.await {
        tracing::warn!(%error, "could not release an idempotency key; it frees itself after 5 minutes");
    }
}

fn split_stored(stored: &[u8]) -> Result<(&str, &[u8]), Error> {
    let i = stored
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Error::internal("stored answer has no content type"))?;
    let content_type =
        std::str::from_utf8(&stored[..i]).map_err(|_| Error::internal("stored content type"))?;
    Ok((content_type, &stored[i + 1..]))
}
