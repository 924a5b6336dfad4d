//! Running the broker: check its keys against the database, build the state, serve
//! until a signal.

use crate::clock::SystemClock;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::router::build_router;
use crate::service::{AppState, Settings};
use crate::store::keys as stored_keys;
use crate::store::Store;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Before serving: the data keys must be those the database's data was sealed under
/// (their check values match, or, for a database from before check values, they
/// open a record wrapped under them), and the broker's signing key must not reuse the
/// id of another key it signed with. Records the check values and the signing key's
/// public half, so that the next start, and the JWKS, know them.
pub async fn check_keys(
    store: &Store,
    keyring: &Keyring,
    broker_key: &Jwk,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let keys = keyring.keys();
    let mut conn = store.reader().acquire().await?;
    let stored = stored_keys::checks(&mut conn).await?;
    let wrong = |kid: &str| {
        anyhow::anyhow!(
            "the data key `{kid}` is not the one this database was sealed under: \
             is --data-key-file (or PASSERELLE_DATA_KEY) the keyring of this database?"
        )
    };
    keys.check_against(&stored).map_err(|e| match e {
        crate::crypto::keyring::KeyringError::WrongKey(kid) => wrong(&kid),
        other => other.into(),
    })?;
    for (kid, _) in keys.checks() {
        if stored.contains_key(&kid) {
            continue;
        }
        if let Some((record, wrapped)) = stored_keys::one_wrapped_under(&mut conn, &kid).await? {
            keys.open_record_key(&record, &wrapped)
                .map_err(|_| wrong(&kid))?;
        }
    }
    let previous = stored_keys::broker_key(&mut conn, &broker_key.kid).await?;
    drop(conn);
    let public = serde_json::to_string(&broker_key.public())?;
    if let Some(previous) = previous {
        let previous: Jwk = serde_json::from_str(&previous)?;
        anyhow::ensure!(
            previous.x == broker_key.x,
            "the broker key `{}` is not the key this database knows under that id: a new key \
             needs a new id (`passerelle keygen --broker-key FILE --kid …`), so that receipts \
             signed by the old one still verify",
            broker_key.kid
        );
    }
    let mut tx = store.begin().await?;
    for (kid, value) in keys.checks() {
        stored_keys::record_check(&mut tx, &kid, &value, now).await?;
    }
    stored_keys::record_broker_key(&mut tx, &broker_key.kid, &public, now).await?;
    tx.commit().await?;
    keyring.require_checks(&stored)?;
    Ok(())
}

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
