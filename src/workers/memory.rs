//! Gives back to the system the memory a burst freed.
//!
//! Every 10 s, the database readers idle at that moment empty their page caches
//! (`service::memory`): a burst opens readers that fill theirs and then sit idle with
//! it. Then the allocator hands back every page that holds nothing
//! ([`crate::allocator::give_back`]), on a blocking thread: jemalloc's background
//! threads give freed pages back within a tenth of a second, and this round hands back
//! at once what they have not yet, the readers' caches among it. How much each round
//! gave back, and how long it took, is logged at debug level.

use crate::service::AppState;
use std::time::{Duration, Instant};

/// How often the free memory is given back: soon enough after a burst that resident
/// memory follows what the broker holds, rarely enough that the walk costs nothing
/// measurable.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Empties idle readers' caches and gives back free pages, every `interval`, until the
/// task is dropped.
pub async fn run(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; there is nothing to give back at start.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        crate::service::memory::release_idle_caches(&state).await;
        let started = Instant::now();
        match tokio::task::spawn_blocking(crate::allocator::give_back).await {
            Ok(Ok(released)) => tracing::debug!(
                released,
                took_us = started.elapsed().as_micros() as u64,
                "free memory given back to the system"
            ),
            Ok(Err(error)) => tracing::warn!(%error, "free memory kept"),
            Err(error) => tracing::error!(%error, "giving back free memory stopped"),
        }
    }
}
