//! The broker's own memory: the caches idle readers give back after a burst, and
//! what SQLite and the allocator hold, for `/metrics`.

use crate::metrics::ProcessMemory;
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

/// The process's memory for `/metrics`: the bytes SQLite holds in this process (every
/// connection's page cache and statements; none on PostgreSQL), and what the
/// allocator holds (SQLite's bytes are within it).
pub fn process_memory(state: &AppState) -> ProcessMemory {
    let allocator = match crate::allocator::usage() {
        Ok(usage) => Some((usage.allocated, usage.resident)),
        Err(error) => {
            tracing::warn!(%error, "the allocator did not say what it holds");
            None
        }
    };
    ProcessMemory {
        sqlite_heap: (state.store.engine() == Engine::Sqlite)
            .then(crate::store::memory::sqlite_heap_bytes),
        allocator,
    }
}
