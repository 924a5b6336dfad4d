//! Gives back to the system the memory a burst freed.
//!
//! glibc's allocator serves each thread from one of its arenas (up to eight per core)
//! and returns a freed block to the system only when it lies at the top of its arena's
//! heap. A storm allocates on every thread at once (declarations decided in shares,
//! releases, relayed messages); what it frees afterwards lies between blocks still in
//! use, and stays resident. Measured on a disruption of 200,000 travellers: resident
//! memory went from 111 MiB before the storm to 195 MiB after it, of which
//! `malloc_trim` gave back 103 MiB at once, leaving less than before the storm. So
//! this worker trims on a timer, on a blocking thread: with it, the CPU each record
//! and each release took stayed within the spread of runs without it (how long each
//! trim took is logged at debug level).
//!
//! Before trimming, the database readers idle at that moment empty their page caches
//! (`service::memory`): a burst opens readers that fill theirs and then sit idle
//! with it.
//!
//! On other C libraries the trim does nothing: their allocators return memory in
//! their own way.

use crate::service::AppState;
use std::time::{Duration, Instant};

/// How often the free memory is given back: soon enough after a burst that resident
/// memory follows what the broker holds, rarely enough that the walk costs nothing
/// measurable.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Empties idle readers' caches and trims, every `interval`, until the task is dropped.
pub async fn run(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; there is nothing to give back at start.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        crate::service::memory::release_idle_caches(&state).await;
        let started = Instant::now();
        match tokio::task::spawn_blocking(give_back).await {
            Ok(released) => tracing::debug!(
                released,
                took_us = started.elapsed().as_micros() as u64,
                "free memory given back to the system"
            ),
            Err(error) => tracing::error!(%error, "giving back free memory stopped"),
        }
    }
}

/// Hands every whole free page of the allocator's arenas back to the system; true
/// when some were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and locks each arena while it walks it;
    // it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere, nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn memory_freed_between_blocks_in_use_is_given_back() {
        // On a thread of its own, so that its arena holds only this burst: 32 MiB in
        // small blocks, all freed but the last, which keeps the rest from lying at the
        // top of the heap where `free` itself would return it.
        std::thread::spawn(|| {
            let mut blocks: Vec<Vec<u8>> = (0..8192).map(|i| vec![i as u8; 4096]).collect();
            let last = blocks.pop();
            drop(blocks);
            assert!(
                give_back(),
                "the 32 MiB freed below a block in use were kept"
            );
            drop(last);
        })
        .join()
        .unwrap();
    }
}
