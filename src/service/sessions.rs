//! The pages' sign-in sessions: opened with an API key, found by the secret in the
//! session cookie (only its SHA-256 is stored), ended after `IDLE` without a page
//! view or `LIFETIME` in all, or on sign-out.

use crate::crypto::sha256;
use crate::service::{AppState, Error};
use crate::store::sessions::{self, Session};

/// A session ends after this long without a page view.
pub const IDLE: time::Duration = time::Duration::minutes(30);
/// And after this long in any case.
pub const LIFETIME: time::Duration = time::Duration::hours(12);

/// The live session a cookie's secret opens, if any. It is marked seen at most once a
/// minute, so that page views do not each write; that write goes through the writer
/// like every other.
pub async fn find(state: &AppState, secret: &str) -> Result<Option<Session>, Error> {
    let id = sha256(secret.as_bytes());
    let now = state.clock.now();
    let found = {
        let mut conn = state.store.reader().acquire().await?;
        sessions::find(&mut conn, &id, now, IDLE).await?
    };
    if found
        .as_ref()
        .is_some_and(|s| now - s.last_seen > time::Duration::minutes(1))
    {
        let mut tx = state.store.begin().await?;
        sessions::touch(&mut tx, &id, now).await?;
        tx.commit().await?;
    }
    Ok(found)
}

/// Opens a session for the party of API key `key_id`, under a cookie secret and a
/// form token the page made.
pub async fn open(
    state: &AppState,
    secret: &str,
    key_id: &str,
    csrf_token: &str,
) -> Result<(), Error> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    sessions::open(
        &mut tx,
        &sha256(secret.as_bytes()),
        key_id,
        csrf_token,
        now,
        now + LIFETIME,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the session of a cookie's secret.
pub async fn close(state: &AppState, secret: &str) -> Result<(), Error> {
    let mut tx = state.store.begin().await?;
    sessions::close(&mut tx, &sha256(secret.as_bytes())).await?;
    tx.commit().await?;
    Ok(())
}
