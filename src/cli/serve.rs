//! Running the broker: check its keys against the database, build the state, serve
//! until a signal.

use super::args::{ServeArgs, StorageArgs};
use super::{init_logging, open_store};
use crate::clock::SystemClock;
use crate::crypto::keyfile::{check_private, read_private_jwk, write_secret_file};
use crate::crypto::keyring::Keys;
use crate::crypto::seal::DataKey;
use crate::outbound::Outbound;
use crate::policy::engine::Policies;
use crate::service::checkpoints::CheckpointSettings;
use crate::service::settings::BatchLimits;
use crate::service::RelaySettings;
use crate::workers::relay;
use anyhow::{bail, Context};
use std::path::Path;
use std::time::Duration;

use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::router::build_router;
use crate::service::keys::check_keys;
use crate::service::{AppState, Settings};
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Builds the state of a broker on the system clock.
pub fn state(store: Store, keys: Keyring, broker_key: Jwk, settings: Settings) -> AppState {
    AppState::new(store, keys, broker_key, Arc::new(SystemClock), settings)
}

/// Serves `state` on `listener` until `shutdown` completes, then lets requests in
/// flight finish and closes the database pools. The retention sweeper runs beside it
/// every `purge_interval`, the relay worker delivers the outbox, and the allocator's
/// free memory is given back to the system every [`crate::workers::memory::INTERVAL`].
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
    let memory = tokio::spawn(crate::workers::memory::run(
        state.clone(),
        crate::workers::memory::INTERVAL,
    ));
    let service =
        build_router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    sweeper.abort();
    relay.abort();
    checkpoints.abort();
    memory.abort();
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

pub async fn command(storage: &StorageArgs, args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let policies = Policies::load(args.policy_dir.as_deref())
        .context("the release policies are invalid; the broker does not start")?;
    tracing::info!(
        source = policies.source(),
        digest = policies.digest(),
        "release policies loaded"
    );
    let store = open_store(storage).await?;
    let key_file = args
        .data_key_file
        .clone()
        .unwrap_or_else(|| storage.data_dir.join("data.key"));
    if args.demo && !key_file.exists() && std::env::var_os("PASSERELLE_DATA_KEY").is_none() {
        write_secret_file(&key_file, &DataKey::generate_base64())?;
    }
    let keys = load_keyring(&key_file)?;
    let broker_key_file = args
        .broker_key_file
        .clone()
        .unwrap_or_else(|| storage.data_dir.join("broker.jwk"));
    let broker_key = load_broker_key(&broker_key_file, args.demo)?;
    check_keys(&store, &keys, &broker_key, time::OffsetDateTime::now_utc()).await?;
    crate::audit::checkpoint::LogKey::of(&args.log_origin, &broker_key)
        .map_err(anyhow::Error::msg)
        .context("--log-origin")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let smtp_url = match (&args.smtp_url, &args.smtp_url_file) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(file)) => Some(super::read_url_file(file)?),
        (None, None) => None,
    };
    let relay = RelaySettings {
        smtp_url,
        mail_from: args.mail_from.clone(),
        sms_gateway_url: args.sms_gateway_url.clone(),
        sms_gateway_token: std::env::var("PASSERELLE_SMS_GATEWAY_TOKEN").ok(),
        // The demo makes one for its own gateway and writes it to `demo.env`.
        sms_gateway_receipt_secret: std::env::var("PASSERELLE_SMS_GATEWAY_RECEIPT_SECRET")
            .ok()
            .or_else(|| {
                args.demo
                    .then(|| crate::crypto::secret::issue("pas_gwr_").plaintext)
            }),
        bounce_domain: args
            .bounce_domain
            .clone()
            .or_else(|| args.demo.then(|| DEMO_BOUNCE_DOMAIN.to_string())),
    };
    // The bounce listener: where it was asked to listen, or on loopback in the demo.
    let smtp_listen = args.smtp_listen.or_else(|| {
        args.demo
            .then(|| DEMO_SMTP_LISTEN.parse().expect("a socket address"))
    });
    let bounce_listener = match smtp_listen {
        None => None,
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(listener) => Some(listener),
            Err(error) if args.smtp_listen.is_none() => {
                tracing::warn!(%at, %error, "the demo's bounce listener could not start; bounces are not read");
                None
            }
            Err(error) => return Err(error).with_context(|| format!("--smtp-listen {at}")),
        },
    };
    anyhow::ensure!(
        bounce_listener.is_none() || relay.bounce_domain.is_some(),
        "--smtp-listen reads bounces to --bounce-domain: set it too"
    );
    let outbound = if args.allow_insecure_outbound || args.demo {
        tracing::warn!("outbound requests may use plain http and reach private addresses (--allow-insecure-outbound or --demo)");
        Outbound::allow_insecure()
    } else {
        Outbound::public_https_only()
    };
    let transports = relay::Transports::new(&relay, outbound).context("configuring the relay")?;
    if let Some(url) = &args.checkpoint_url {
        outbound
            .parse(url)
            .map_err(|refused| anyhow::anyhow!("--checkpoint-url {refused}"))?;
    }
    anyhow::ensure!(
        args.max_batch_records >= 1 && args.parallel_uploads >= 1,
        "--max-batch-records and --parallel-uploads must be at least 1"
    );
    let settings = Settings {
        policies: Arc::new(policies),
        relay,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        max_body_bytes: args.max_body_bytes,
        max_batch_bytes: args.max_batch_bytes,
        batch: BatchLimits {
            max_records: args.max_batch_records,
            max_rejected: args.max_rejected_records,
            parallel: args.parallel_uploads,
        },
        outbound,
        trusted_proxies: args.trusted_proxies.clone(),
        secure_cookies: !(args.insecure_cookies || args.demo),
        public_url: args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}")),
        checkpoints: CheckpointSettings {
            origin: args.log_origin.clone(),
            interval: Duration::from_secs(args.checkpoint_interval_seconds.max(1)),
            dir: args.checkpoint_dir.clone(),
            url: args.checkpoint_url.clone(),
        },
        search_total_limit: args.search_total_limit,
    };
    if args.demo {
        super::demo::provision(
            &store,
            &storage.data_dir,
            address,
            settings.relay.sms_gateway_receipt_secret.as_deref(),
        )
        .await?;
    }
    tracing::info!(%address, "passerelle listening");
    let state = state(store, keys, broker_key, settings);
    if let Some(bounces) = bounce_listener {
        tracing::info!(address = %bounces.local_addr()?, "reading bounces");
        tokio::spawn(crate::workers::bounces::run(state.clone(), bounces));
    }
    serve(
        listener,
        state,
        transports,
        Duration::from_secs(args.purge_interval_seconds.max(1)),
        shutdown_signal(),
    )
    .await
}

/// The demo's return-path domain (a name that cannot exist) and bounce listener.
const DEMO_BOUNCE_DOMAIN: &str = "bounces.passerelle.invalid";
const DEMO_SMTP_LISTEN: &str = "127.0.0.1:2525";

/// The keyring: from PASSERELLE_DATA_KEY (fixed), or from its file (reread when
/// `keys rotate` changes it), which others may not read.
fn load_keyring(key_file: &Path) -> anyhow::Result<Keyring> {
    if let Ok(text) = std::env::var("PASSERELLE_DATA_KEY") {
        return Ok(Keyring::fixed(
            Keys::parse(&text).context("PASSERELLE_DATA_KEY")?,
        ));
    }
    if !key_file.exists() {
        bail!(
            "no data key at {}: make one with `passerelle keygen --data-key {}` (or run `serve --demo`)",
            key_file.display(),
            key_file.display()
        );
    }
    check_private(key_file)?;
    Keyring::from_file(key_file)
        .with_context(|| format!("reading the data key in {}", key_file.display()))
}

/// The broker's signing key. Only the demo makes one by itself: a missing key is
/// otherwise an error, since a new key would stop old receipts verifying against the
/// file an operator kept, and change the log's key.
fn load_broker_key(path: &Path, demo: bool) -> anyhow::Result<Jwk> {
    if !path.exists() {
        if !demo {
            bail!(
                "no broker key at {}: make one with `passerelle keygen --broker-key {}` \
                 (it signs receipts and checkpoints: keep it, and a copy)",
                path.display(),
                path.display()
            );
        }
        write_secret_file(
            path,
            &serde_json::to_string_pretty(&Jwk::generate(&super::admin::broker_key_id()))?,
        )?;
        tracing::info!(file = %path.display(), "made the demo broker's signing key");
    }
    let key = read_private_jwk(path)?;
    key.sign_detached(b"check")
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} does not sign", path.display()))?;
    Ok(key)
}
