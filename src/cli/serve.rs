//! Running the broker: check its keys against the database, build the state, serve
//! until a signal.

use crate::clock::SystemClock;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::router::build_router;
pub use crate::service::keys::check_keys;
use crate::service::{AppState, Settings};
use crate::store::Store;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Builds the state of a broker on the system clock.
pub fn state(store: Store, keys: Keyring, broker_key: Jwk, settings: Settings) -> AppState {
    AppState::new(store, keys, broker_key, Arc::new(SystemClock), settings)
}

/// Serves `state` on `listener` until `shutdown` completes, then lets requests in
/// flight finish and closes the database pools. The retention sweeper runs beside it
/// every `purge_interval`, and the relay worker delivers the outbox.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    transports: crate::workers::relay::Transports,
    purge_interval: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store.clone();
    let sweeper = tokio::spawn(crate::workers::sweeper::run(state.clone(), purge_interval));
    let relay = tokio::spawn(crate::workers::relay::run(state.clone(), transports));
    let checkpoints = tokio::spawn(checkpoint_every_interval(state.clone()));
    let service =
        build_router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    sweeper.abort();
    relay.abort();
    checkpoints.abort();
    // A last checkpoint, so that what this broker wrote is pinned outside the database.
    if let Err(err) = state
        .checkpointer
        .tick(&state.store, state.clock.now())
        .await
    {
        tracing::error!(error = %err, "could not sign the closing checkpoint");
    }
    store.close().await;
    Ok(())
}

/// Signs a checkpoint whenever the log grew, every configured interval, and retries
/// publications that failed.
async fn checkpoint_every_interval(state: AppState) {
    let mut ticks = tokio::time::interval(state.checkpointer.settings().interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = state
            .checkpointer
            .tick(&state.store, state.clock.now())
            .await
        {
            tracing::error!(error = %err, "could not sign a checkpoint");
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
