//! What SQLite holds in the broker's memory, and giving back what idle readers cached.
//!
//! Every SQLite connection keeps a page cache of its own (2 MiB at most, SQLite's
//! default), filled as it reads and kept until it closes. The readers that a burst
//! opened (the pool's connections beyond the first, the direct reads' connections)
//! each fill theirs during a disruption and then sit idle with it: across a storm of a
//! million travellers SQLite's heap went from 8.0 MiB to 10.2 and stayed there.
//! Emptying the caches of the readers idle at a given moment costs their next reads a
//! few system calls each (the pages are still in the system's file cache) and gives
//! the memory back to the allocator, which `workers::memory` then hands back to the
//! system. The writer's cache is left alone: it holds the pages every write touches.

use super::{Engine, Store, StoreError};
use sqlx::Executor;

impl Store {
    /// Empties the page cache of every reader connection idle at this moment; answers
    /// how many were emptied (none on PostgreSQL, whose caches are the server's).
    pub async fn release_idle_caches(&self) -> Result<usize, StoreError> {
        if self.engine != Engine::Sqlite {
            return Ok(0);
        }
        let mut released = self
            .direct
            .as_ref()
            .map_or(0, |direct| direct.release_idle());
        // Hold every idle connection of the pool at once, so that each is taken once.
        let mut held = Vec::new();
        for _ in 0..self.reader.num_idle() {
            match self.reader.try_acquire() {
                Some(connection) => held.push(connection),
                None => break,
            }
        }
        for connection in &mut held {
            (&mut **connection).execute("PRAGMA shrink_memory").await?;
            released += 1;
        }
        Ok(released)
    }
}

/// The bytes SQLite has allocated in this process, every connection's caches and
/// statements together; 0 when SQLite is not in use.
pub fn sqlite_heap_bytes() -> i64 {
    // SAFETY: `sqlite3_memory_used` takes no argument and reads a counter SQLite
    // keeps under its own mutex; it may be called at any time from any thread.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until the pool holds `count` idle connections: a dropped connection goes
    /// back to the pool on a task of its own.
    async fn idle_in_pool(store: &Store, count: usize) {
        for _ in 0..500 {
            if store.reader().num_idle() == count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!(
            "the pool holds {} idle, not {count}",
            store.reader().num_idle()
        );
    }

    #[tokio::test]
    async fn the_readers_idle_at_the_moment_empty_their_caches_and_those_in_use_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // Two of the pool's connections opened at once, and one direct read.
        let first = store.reader().acquire().await.unwrap();
        let mut in_use = store.reader().acquire().await.unwrap();
        drop(first);
        idle_in_pool(&store, 1).await;
        let read = store.read_direct(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?));
        assert_eq!(read.unwrap().unwrap(), 1);

        // The pool's idle connection and the direct one; not the one held.
        assert_eq!(store.release_idle_caches().await.unwrap(), 2);
        (&mut *in_use).execute("SELECT 1").await.unwrap();
        drop(in_use);
        idle_in_pool(&store, 2).await;
        assert_eq!(store.release_idle_caches().await.unwrap(), 3);
        assert!(sqlite_heap_bytes() > 0);
    }
}
