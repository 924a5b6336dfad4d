//! The broker's own memory: the caches idle readers give back after a burst, and
//! what SQLite holds, for `/metrics`.

use crate::service::AppState;
use crate::store::Engine;

/// Empties the page caches of the database readers idle at this moment (see
/// `store::memory`); the allocator's free memory is given back after it
/// (`workers::memory`). A failure is logged: the caches stay full until next time.
pub async fn release_idle_caches(state: &AppState) {
    match state.store.release_idle_caches().await {
        Ok(released) => tracing::debug!(released, "idle readers' caches emptied"),
        Err(error) => tracing::warn!(%error, "idle readers kept their caches"),
    }
}

/// The bytes SQLite holds in this process (every connection's page cache and
/// statements), or `None` on PostgreSQL.
pub fn sqlite_heap_bytes(state: &AppState) -> Option<i64> {
    (state.store.engine() == Engine::Sqlite).then(crate::store::memory::sqlite_heap_bytes)
}
