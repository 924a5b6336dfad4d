//! The command line: `serve`, `migrate`, `party add|key`, `keygen`, `sign`,
//! `receipt verify`, `keys rotate`, `policy check`, `audit verify|prove|check-proof|log-key`.
//!
//! Every flag can also be set through a `PASSERELLE_*` environment variable. Secrets
//! (the data key, API keys) are never printed, except an API key once, when made.

mod admin;
pub mod args;
mod audit;
pub mod demo;
pub mod serve;

pub use admin::sign_statement;
pub use args::Cli;
use args::{
    Command, KeysCommand, LogFormat, PartyCommand, PolicyCommand, ReceiptCommand, StorageArgs,
};

use crate::crypto::keyfile::check_private;
pub use crate::crypto::keyfile::{read_jwk, write_secret_file};
use crate::policy::engine::{Policies, POLICY_FILE};
use crate::store::Store;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The flags whose URL may carry a password.
const URL_FLAGS: [&str; 4] = [
    "--database-url",
    "--smtp-url",
    "--sms-gateway-url",
    "--checkpoint-url",
];

/// Why a command line must be refused: it passes a password in a URL, where `ps` and
/// the shell's history show it to everyone. Such URLs come from the environment
/// (`PASSERELLE_DATABASE_URL`, `PASSERELLE_SMTP_URL`) or a file
/// (`--database-url-file`, `--smtp-url-file`) instead.
pub fn secret_in_argv(args: &[String]) -> Option<String> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) if URL_FLAGS.contains(&flag) => (flag, Some(value.to_string())),
            _ if URL_FLAGS.contains(&arg.as_str()) => (arg.as_str(), args.next().cloned()),
            _ => continue,
        };
        let Some(value) = value else { continue };
        let with_password = url::Url::parse(&value).is_ok_and(|url| {
            url.password().is_some()
                || url
                    .query_pairs()
                    .any(|(k, _)| k.eq_ignore_ascii_case("password"))
        });
        if with_password {
            let variable = format!(
                "PASSERELLE_{}",
                flag.trim_start_matches("--")
                    .replace('-', "_")
                    .to_uppercase()
            );
            return Some(format!(
                "{flag} holds a password, which the command line shows to everyone (ps, shell history); \
                 set {variable} in the environment{} instead",
                match flag {
                    "--database-url" => " or pass --database-url-file",
                    "--smtp-url" => " or pass --smtp-url-file",
                    _ => "",
                }
            ));
        }
    }
    None
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::command(&cli.storage, *args).await,
        Command::Migrate => {
            init_logging(LogFormat::Text);
            let store = open_store(&cli.storage).await?;
            store.close().await;
            eprintln!("schema up to date");
            Ok(())
        }
        Command::Party {
            command: PartyCommand::Add { party },
        } => admin::add_party(&cli.storage, party).await,
        Command::Party {
            command: PartyCommand::Key { command },
        } => admin::agency_key(&cli.storage, command).await,
        Command::Party {
            command: PartyCommand::ApiKey { command },
        } => admin::api_keys(&cli.storage, command).await,
        Command::Keygen(args) => admin::keygen(args),
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => check_policies(dir.as_deref()),
        Command::Audit { command } => audit::run(&cli.storage, command).await,
        Command::Sign(args) => admin::sign(args),
        Command::Receipt {
            command: ReceiptCommand::Verify { receipt, keys },
        } => admin::verify_receipt(&receipt, &keys),
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    data_key_file,
                    settle_seconds,
                },
        } => {
            init_logging(LogFormat::Text);
            let file = data_key_file.unwrap_or_else(|| cli.storage.data_dir.join("data.key"));
            if std::env::var_os("PASSERELLE_DATA_KEY").is_some() {
                bail!("the keys come from PASSERELLE_DATA_KEY; rotation needs them in a keyring file (--data-key-file)");
            }
            let store = open_store(&cli.storage).await?;
            let rotated = crate::service::rotation::rotate(
                &store,
                &file,
                Duration::from_secs(settle_seconds),
            )
            .await?;
            store.close().await;
            println!(
                "new master key {} is current; {} record key(s) re-wrapped under it",
                rotated.master, rotated.rewrapped
            );
            println!("older master keys stay in {} for backups; remove their lines once those backups expire", file.display());
            Ok(())
        }
    }
}

/// The database URL: the flag or PASSERELLE_DATABASE_URL, else the file named by
/// `--database-url-file`, else DATABASE_URL, else the SQLite file in the data
/// directory. SQLite files are created when missing.
pub fn database_url(storage: &StorageArgs) -> anyhow::Result<String> {
    let from_file = storage
        .database_url_file
        .as_deref()
        .map(read_url_file)
        .transpose()?;
    let url = storage
        .database_url
        .clone()
        .or(from_file)
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                storage.data_dir.join("passerelle.db").display()
            )
        });
    Ok(if url.starts_with("sqlite:") && !url.contains("mode=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url
    })
}

/// A URL kept in a file (it may hold a password), read and trimmed; the file must be
/// readable by its owner only.
pub(super) fn read_url_file(path: &Path) -> anyhow::Result<String> {
    check_private(path)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim().to_string())
}

/// The file of a `sqlite:` URL, unless it is in memory.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Creates the SQLite file readable by its owner only (SQLite gives its WAL and
/// shared-memory files the same mode), and restricts an existing one and its
/// journal files the same way.
fn prepare_sqlite_file(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::crypto::keyfile::create_private_dir(parent)?;
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(path)
            .with_context(|| format!("creating the database {}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Err(error) = crate::crypto::keyfile::restrict_to_owner(&file) {
            tracing::warn!(%error, "the database's files could not be restricted to their owner");
        }
    }
    Ok(())
}

pub(crate) async fn open_store(storage: &StorageArgs) -> anyhow::Result<Store> {
    crate::crypto::keyfile::create_private_dir(&storage.data_dir)?;
    let url = database_url(storage)?;
    if let Some(path) = sqlite_path(&url) {
        prepare_sqlite_file(&path)?;
    }
    let store = Store::connect(&url).await.context("opening the database")?;
    store.migrate().await.context("migrating the database")?;
    tracing::info!(engine = ?store.engine(), "database ready");
    Ok(store)
}

/// `policy check`: loads the policies as `serve` would and prints what it found.
fn check_policies(dir: Option<&Path>) -> anyhow::Result<()> {
    let policies = Policies::load(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "policies valid: {} ({} policies, digest {})",
        policies.source(),
        policies.summaries().len(),
        policies.digest()
    );
    for policy in policies.summaries() {
        let reason = policy
            .reason
            .as_deref()
            .map(|r| format!(" -> {r}"))
            .unwrap_or_default();
        println!(
            "  {}:{} {} {}{reason}",
            POLICY_FILE, policy.line, policy.effect, policy.id
        );
    }
    let t = &policies.tunables;
    println!(
        "tunables: token lifetime {} s, {} uses; {} travellers asked for a second per airline (burst {}), {} refused uses a minute (burst {}); \
         contacts kept {} days after the trip, {} days by airlines",
        t.tokens.lifetime_seconds,
        t.tokens.uses,
        t.rate_limit.travellers_per_second,
        t.rate_limit.burst,
        t.rate_limit.refused_uses_per_minute,
        t.rate_limit.refused_uses_burst,
        t.retention.contact_days,
        t.retention.release_days
    );
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PASSERELLE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
