//! The retention sweeper: runs `service::retention::sweep` on a timer.

pub use crate::service::retention::sweep;
use crate::service::AppState;
use std::time::Duration;

/// Sweeps every `interval` until the task is dropped.
pub async fn run(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(&state).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "retention sweep destroyed contacts"),
            Err(error) => tracing::error!(%error, "retention sweep failed; it will run again"),
        }
    }
}
