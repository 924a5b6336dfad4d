//! The command line: `serve`, `migrate`, `party add|key`, `keygen`, `sign`,
//! `receipt verify`, `keys rotate`, `policy check`, `audit verify|prove|check-proof|log-key`.
//!
//! Every flag can also be set through a `PASSERELLE_*` environment variable. Secrets
//! (the data key, API keys) are never printed, except an API key once, when made.

mod audit;
pub mod demo;
pub mod serve;

use crate::crypto::canonical;
use crate::crypto::countersign::{self, Countersigned};
use crate::crypto::jws::Jwk;
use crate::crypto::keyfile::{check_private, read_private_jwk};
pub use crate::crypto::keyfile::{read_jwk, write_secret_file};
use crate::crypto::keyring::{Keyring, Keys};
use crate::crypto::seal::DataKey;
use crate::outbound::Outbound;
use crate::policy::engine::{Policies, POLICY_FILE};
use crate::service::checkpoints::{CheckpointSettings, DEFAULT_ORIGIN};
use crate::service::parties as provision;
use crate::service::settings::AddressRange;
use crate::service::settings::BatchLimits;
use crate::service::{RelaySettings, Settings};
use crate::store::Store;
use crate::workers::relay;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Consent and contact-data broker between travel agencies and airlines.
#[derive(Parser, Debug)]
#[command(name = "passerelle", version)]
pub struct Cli {
    /// Where the data lives.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Storage options, shared by every command.
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Database URL: `sqlite://PATH` or `postgres://…` (DATABASE_URL is read too).
    /// Default: the SQLite file `passerelle.db` in the data directory.
    #[arg(
        long,
        env = "PASSERELLE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A file holding the database URL (for a URL with a password: never pass one on
    /// the command line, where `ps` shows it to everyone).
    #[arg(long, env = "PASSERELLE_DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<PathBuf>,
    /// Directory for the SQLite file, the data key and the demo's files.
    #[arg(long, env = "PASSERELLE_DATA_DIR", default_value = ".", global = true)]
    pub data_dir: PathBuf,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the broker.
    Serve(Box<ServeArgs>),
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage parties (agencies, airlines, compliance officers).
    Party {
        /// What to do with parties.
        #[command(subcommand)]
        command: PartyCommand,
    },
    /// Make an Ed25519 key pair (JWK) for an agency, or a data key for the broker.
    Keygen(KeygenArgs),
    /// Sign a consent statement read on stdin; print the request body for
    /// `POST /v1/consents`.
    Sign(SignArgs),
    /// Consent receipts.
    Receipt {
        /// What to do with receipts.
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// The broker's data keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit log: verify it, prove an entry, check a proof offline.
    Audit {
        /// What to do with the log.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The release policies.
    Policy {
        /// What to do with the policies.
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `policy` subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy directory against its schema, offline, as `serve` does at
    /// start-up; print each policy, or the file and line at fault (exit code 1).
    Check {
        /// The directory (default: the set built into this binary).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// `receipt` subcommands.
#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Verify a countersigned receipt offline against the broker's public keys.
    Verify {
        /// The receipt as the broker returned it (`{"receipt", "signature", "key_id"}`);
        /// `-` reads stdin.
        #[arg(long)]
        receipt: PathBuf,
        /// The broker's JWK Set, as served at `/.well-known/jwks.json`.
        #[arg(long)]
        keys: PathBuf,
    },
}

/// `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Add a master key to the keyring and re-wrap every record key under it; safe
    /// while brokers run (they notice the new keyring within a second).
    Rotate {
        /// The keyring file (default: `data.key` in the data directory).
        #[arg(long, env = "PASSERELLE_DATA_KEY_FILE")]
        data_key_file: Option<PathBuf>,
        /// Seconds to wait for running brokers to switch before the last pass.
        #[arg(long, default_value_t = 3)]
        settle_seconds: u64,
    },
}

/// Options of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PASSERELLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// File holding the data key (32 random bytes, base64). Default: `data.key` in the
    /// data directory. The variable PASSERELLE_DATA_KEY may hold the key itself.
    #[arg(long, env = "PASSERELLE_DATA_KEY_FILE")]
    pub data_key_file: Option<PathBuf>,
    /// Directory of the release policies (`schema.cedarschema`, `release.cedar`,
    /// `tunables.toml`). Default: the set built into the binary (the repository's
    /// `policies/`). The broker refuses to start on an invalid policy.
    #[arg(long, env = "PASSERELLE_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// SMTP relay for relayed emails: `smtp://host:port` (plain, local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://host:465`.
    #[arg(long, env = "PASSERELLE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// A file holding the SMTP URL (for one with a password: never pass it on the
    /// command line, where `ps` shows it to everyone).
    #[arg(long, env = "PASSERELLE_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// The From address of relayed emails.
    #[arg(
        long,
        env = "PASSERELLE_MAIL_FROM",
        default_value = "Passerelle <noreply@passerelle.invalid>"
    )]
    pub mail_from: String,
    /// SMS gateway URL: the broker POSTs `{"message_id", "to", "text"}` as JSON.
    #[arg(long, env = "PASSERELLE_SMS_GATEWAY_URL")]
    pub sms_gateway_url: Option<String>,
    /// Bearer token sent to the SMS gateway (read from the environment only).
    #[arg(skip)]
    pub sms_gateway_token: Option<String>,
    /// Seconds before a request is abandoned.
    #[arg(long, env = "PASSERELLE_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Largest request body accepted, in bytes (bulk uploads excepted).
    #[arg(long, env = "PASSERELLE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest bulk upload accepted, in bytes.
    #[arg(long, env = "PASSERELLE_MAX_BATCH_BYTES", default_value_t = crate::service::settings::DEFAULT_MAX_BATCH_BYTES)]
    pub max_batch_bytes: usize,
    /// Most records one bulk request may hold; one more and the request is refused
    /// (`413 batch-too-large`) with nothing stored.
    #[arg(long, env = "PASSERELLE_MAX_BATCH_RECORDS", default_value_t = BatchLimits::default().max_records)]
    pub max_batch_records: usize,
    /// A bulk request stops being read after this many rejected records; nothing of it
    /// is stored.
    #[arg(long, env = "PASSERELLE_MAX_REJECTED_RECORDS", default_value_t = BatchLimits::default().max_rejected)]
    pub max_rejected_records: usize,
    /// Bulk requests handled at once; others wait up to 10 s for their turn, then get
    /// `503`. With the record cap, this bounds the memory uploads take.
    #[arg(long, env = "PASSERELLE_PARALLEL_UPLOADS", default_value_t = BatchLimits::default().parallel)]
    pub parallel_uploads: usize,
    /// Let the broker's own requests (webhooks, SMS gateway, checkpoint URL) use plain
    /// http:// and reach loopback and private addresses. Off by default: they go only
    /// to public https:// addresses. For a demo or tests on one machine.
    #[arg(long, env = "PASSERELLE_ALLOW_INSECURE_OUTBOUND")]
    pub allow_insecure_outbound: bool,
    /// Reverse proxies (addresses or ranges, comma-separated) whose `X-Forwarded-For`
    /// names the client, for the per-address rate limits of the routes that need no
    /// API key. Without it, the connection's peer is the client.
    #[arg(long, env = "PASSERELLE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<AddressRange>,
    /// Set the pages' cookies without `Secure`, for a broker reached over plain http
    /// (the demo). Off by default: browsers send them only over https.
    #[arg(long, env = "PASSERELLE_INSECURE_COOKIES")]
    pub insecure_cookies: bool,
    /// Seconds between two retention sweeps.
    #[arg(long, env = "PASSERELLE_PURGE_INTERVAL_SECONDS", default_value_t = 300)]
    pub purge_interval_seconds: u64,
    /// The broker's Ed25519 key (JWK), which countersigns receipts. Default:
    /// `broker.jwk` in the data directory, created on first start.
    #[arg(long, env = "PASSERELLE_BROKER_KEY_FILE")]
    pub broker_key_file: Option<PathBuf>,
    /// The public base URL of this broker, printed on receipts for withdrawal.
    /// Default: `http://` and the listen address.
    #[arg(long, env = "PASSERELLE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The audit log's name: the key name of its signed checkpoints. Choose one per
    /// deployment, such as `broker.example.com/audit`, and never change it.
    #[arg(long, env = "PASSERELLE_LOG_ORIGIN", default_value = DEFAULT_ORIGIN)]
    pub log_origin: String,
    /// Seconds between two checkpoints of the audit log (signed only if it grew).
    #[arg(
        long,
        env = "PASSERELLE_CHECKPOINT_INTERVAL_SECONDS",
        default_value_t = 60
    )]
    pub checkpoint_interval_seconds: u64,
    /// Directory to write each checkpoint to (`checkpoint`, `checkpoint.<size>`):
    /// somewhere the database's owner cannot rewrite.
    #[arg(long, env = "PASSERELLE_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// URL to POST each checkpoint to (text/plain), such as a witness or an archive.
    #[arg(long, env = "PASSERELLE_CHECKPOINT_URL")]
    pub checkpoint_url: Option<String>,
    /// Log format.
    #[arg(long, env = "PASSERELLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Provision a demo agency, airline and officer, write a data key and example
    /// requests to `passerelle-demo/` in the data directory, and print what to try.
    #[arg(long)]
    pub demo: bool,
}

/// How logs are written (to stderr).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    /// Human-readable lines with key=value fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// `party` subcommands.
#[derive(Subcommand, Debug)]
pub enum PartyCommand {
    /// Add a party and print its API key, once.
    Add {
        /// The kind of party.
        #[command(subcommand)]
        party: AddParty,
    },
    /// Manage an agency's signing keys.
    Key {
        /// What to do with the key.
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage parties' API keys: list them, rotate one, revoke a leaked one.
    ApiKey {
        /// What to do with API keys.
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
}

/// `party api-key` subcommands. A party is named by its id, an agency by its IATA
/// number, an airline by its designator.
#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// List API keys (never their secrets): id, party, issued, expiry, revocation.
    List {
        /// Only this party's.
        #[arg(long)]
        party: Option<String>,
    },
    /// Issue a party a new API key (printed once) and end its other keys: at once, or
    /// after a grace period for its clients to switch.
    Rotate {
        /// The party.
        #[arg(long)]
        party: String,
        /// Minutes the old keys keep working (default: none, they stop at once).
        #[arg(long, default_value_t = 0)]
        grace_minutes: u32,
        /// Days the new key works (default: until revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke API keys at once: the next request with them is refused and the pages'
    /// sessions they opened end.
    Revoke {
        /// One key, by its id (the part of the key between its prefix and the dot, as
        /// `list` shows it).
        #[arg(long, conflicts_with = "party", required_unless_present = "party")]
        key: Option<String>,
        /// Every key of this party.
        #[arg(long)]
        party: Option<String>,
    },
}

/// `party key` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register another signing key for an agency (several may be live at once).
    Add {
        /// The agency's IATA number.
        #[arg(long)]
        agency: String,
        /// The public key file (Ed25519 JWK with its `kid`).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Revoke an agency's key: it signs nothing new; records it signed still verify.
    Revoke {
        /// The agency's IATA number.
        #[arg(long)]
        agency: String,
        /// The key id.
        #[arg(long)]
        kid: String,
    },
}

/// The kinds of party that can be added.
#[derive(Subcommand, Debug)]
pub enum AddParty {
    /// A travel agency, with its signing keys.
    Agency {
        /// IATA agency numeric code (8 digits).
        #[arg(long)]
        iata: String,
        /// The agency's name.
        #[arg(long)]
        name: String,
        /// A public key file (Ed25519 JWK with its `kid`), as `keygen` writes; repeat
        /// for several keys.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// Days the API key works (default: until revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// An airline.
    Airline {
        /// IATA airline designator (2 characters).
        #[arg(long)]
        designator: String,
        /// The airline's name.
        #[arg(long)]
        name: String,
        /// Days the API key works (default: until revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// A compliance officer.
    Officer {
        /// The officer's name.
        #[arg(long)]
        name: String,
        /// Days the API key works (default: until revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

/// Options of `keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write an Ed25519 key pair to `PREFIX.jwk` (private, mode 0600) and
    /// `PREFIX.pub.jwk` (public, to register with `party add agency`).
    #[arg(
        long,
        value_name = "PREFIX",
        required_unless_present_any = ["data_key", "broker_key"],
        conflicts_with_all = ["data_key", "broker_key"]
    )]
    pub out: Option<PathBuf>,
    /// Write a new data key for the broker to this file (mode 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "broker_key")]
    pub data_key: Option<PathBuf>,
    /// Write a new signing key for the broker (receipts and checkpoints) to this file
    /// (mode 0600), named `broker-<today>` unless `--kid` is given.
    #[arg(long, value_name = "FILE")]
    pub broker_key: Option<PathBuf>,
    /// Key id of the new key pair (default `k1`, or `broker-<today>` for a broker key).
    #[arg(long)]
    pub kid: Option<String>,
}

/// Options of `sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The agency's private key (JWK), as `keygen` writes.
    #[arg(long)]
    pub key: PathBuf,
}

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
        Command::Serve(args) => serve(&cli.storage, *args).await,
        Command::Migrate => {
            init_logging(LogFormat::Text);
            let store = open_store(&cli.storage).await?;
            store.close().await;
            eprintln!("schema up to date");
            Ok(())
        }
        Command::Party {
            command: PartyCommand::Add { party },
        } => add_party(&cli.storage, party).await,
        Command::Party {
            command: PartyCommand::Key { command },
        } => agency_key(&cli.storage, command).await,
        Command::Party {
            command: PartyCommand::ApiKey { command },
        } => api_keys(&cli.storage, command).await,
        Command::Keygen(args) => keygen(args),
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => check_policies(dir.as_deref()),
        Command::Audit { command } => audit::run(&cli.storage, command).await,
        Command::Sign(args) => sign(args),
        Command::Receipt {
            command: ReceiptCommand::Verify { receipt, keys },
        } => verify_receipt(&receipt, &keys),
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
fn read_url_file(path: &Path) -> anyhow::Result<String> {
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

async fn serve(storage: &StorageArgs, args: ServeArgs) -> anyhow::Result<()> {
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
    serve::check_keys(&store, &keys, &broker_key, time::OffsetDateTime::now_utc()).await?;
    crate::audit::checkpoint::LogKey::of(&args.log_origin, &broker_key)
        .map_err(anyhow::Error::msg)
        .context("--log-origin")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let smtp_url = match (&args.smtp_url, &args.smtp_url_file) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(file)) => Some(read_url_file(file)?),
        (None, None) => None,
    };
    let relay = RelaySettings {
        smtp_url,
        mail_from: args.mail_from.clone(),
        sms_gateway_url: args.sms_gateway_url.clone(),
        sms_gateway_token: std::env::var("PASSERELLE_SMS_GATEWAY_TOKEN").ok(),
    };
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
    };
    if args.demo {
        demo::provision(&store, &storage.data_dir, address).await?;
    }
    tracing::info!(%address, "passerelle listening");
    serve::serve(
        listener,
        serve::state(store, keys, broker_key, settings),
        transports,
        Duration::from_secs(args.purge_interval_seconds.max(1)),
        serve::shutdown_signal(),
    )
    .await
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
        "tunables: token lifetime {} s, {} uses; {} requests/s per airline (burst {}); \
         contacts kept {} days after the trip, {} days by airlines",
        t.tokens.lifetime_seconds,
        t.tokens.uses,
        t.rate_limit.requests_per_second,
        t.rate_limit.burst,
        t.retention.contact_days,
        t.retention.release_days
    );
    Ok(())
}

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
            &serde_json::to_string_pretty(&Jwk::generate(&broker_key_id()))?,
        )?;
        tracing::info!(file = %path.display(), "made the demo broker's signing key");
    }
    let key = read_private_jwk(path)?;
    key.sign_detached(b"check")
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} does not sign", path.display()))?;
    Ok(key)
}

async fn agency_key(storage: &StorageArgs, command: KeyCommand) -> anyhow::Result<()> {
    let store = open_store(storage).await?;
    let now = time::OffsetDateTime::now_utc();
    let outcome = match command {
        KeyCommand::Add { agency, public_key } => {
            let jwk = read_jwk(&public_key)?;
            provision::add_agency_key(&store, &agency, &jwk, now).await.map(|()| {
                format!("registered key `{}` for agency {agency}", jwk.kid)
            })
        }
        KeyCommand::Revoke { agency, kid } => provision::revoke_agency_key(&store, &agency, &kid, now)
            .await
            .map(|()| format!("revoked key `{kid}` of agency {agency}: it signs nothing new; records it signed still verify")),
    };
    store.close().await;
    println!("{}", outcome?);
    Ok(())
}

fn verify_receipt(receipt: &Path, keys: &Path) -> anyhow::Result<()> {
    let text = if receipt == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(receipt)
            .with_context(|| format!("reading {}", receipt.display()))?
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).context("the receipt is not JSON")?;
    // An upload's answer holds the countersigned receipt under `receipt`.
    if value.pointer("/receipt/signature").is_some() {
        value = value["receipt"].take();
    }
    let signed: Countersigned = serde_json::from_value(value).context(
        "the receipt must be the broker's JSON: {\"receipt\", \"signature\", \"key_id\"}",
    )?;
    let key_set: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(keys).with_context(|| format!("reading {}", keys.display()))?,
    )
    .context("the key set is not JSON")?;
    let keys = countersign::parse_key_set(&key_set).map_err(anyhow::Error::msg)?;
    countersign::verify(&signed, &keys).context("the receipt does not verify")?;
    let id = signed
        .receipt
        .get("consentReceiptID")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    println!("receipt {id} verifies under broker key `{}`", signed.key_id);
    Ok(())
}

async fn add_party(storage: &StorageArgs, party: AddParty) -> anyhow::Result<()> {
    let store = open_store(storage).await?;
    let now = time::OffsetDateTime::now_utc();
    let (provisioned, expires_in_days) = match party {
        AddParty::Agency {
            iata,
            name,
            public_keys,
            expires_in_days,
        } => {
            let keys = public_keys
                .iter()
                .map(|p| read_jwk(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (
                provision::add_agency(&store, &iata, &name, &keys, now).await?,
                expires_in_days,
            )
        }
        AddParty::Airline {
            designator,
            name,
            expires_in_days,
        } => (
            provision::add_airline(&store, &designator, &name, now).await?,
            expires_in_days,
        ),
        AddParty::Officer {
            name,
            expires_in_days,
        } => (
            provision::add_officer(&store, &name, now).await?,
            expires_in_days,
        ),
    };
    let expiry = expires_in_days.map(|days| now + time::Duration::days(i64::from(days)));
    if let Some(at) = expiry {
        provision::expire_api_keys(&store, &provisioned.party, at).await?;
    }
    store.close().await;
    println!("added {} {}", provisioned.party.kind, provisioned.party.id);
    println!(
        "API key (shown once; store it now): {}",
        provisioned.api_key
    );
    if let Some(at) = expiry {
        println!("it expires at {}", crate::domain::time::format_time(at));
    }
    Ok(())
}

/// `party api-key list|rotate|revoke`.
async fn api_keys(storage: &StorageArgs, command: ApiKeyCommand) -> anyhow::Result<()> {
    let store = open_store(storage).await?;
    let now = time::OffsetDateTime::now_utc();
    let done = run_api_key_command(&store, command, now).await;
    store.close().await;
    done
}

async fn run_api_key_command(
    store: &Store,
    command: ApiKeyCommand,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let time = |ms: Option<i64>| {
        ms.and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
        .map_or_else(|| "-".to_string(), crate::domain::time::format_time)
    };
    match command {
        ApiKeyCommand::List { party } => {
            let party = match party {
                Some(reference) => Some(provision::find_party(store, &reference).await?),
                None => None,
            };
            let keys = provision::list_api_keys(store, party.as_ref()).await?;
            println!("key id            party                   kind     code      issued                    expires                   state");
            for k in keys {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => format!("revoked {}", time(k.revoked_at)),
                    (None, Some(at))
                        if i128::from(at) * 1_000_000 <= now.unix_timestamp_nanos() =>
                    {
                        "expired".into()
                    }
                    _ => "live".into(),
                };
                println!(
                    "{:<17} {:<23} {:<8} {:<9} {:<25} {:<25} {state}",
                    k.id,
                    k.party_id,
                    k.kind,
                    k.code.as_deref().unwrap_or("-"),
                    time(Some(k.created_at)),
                    time(k.expires_at),
                );
            }
            Ok(())
        }
        ApiKeyCommand::Rotate {
            party,
            grace_minutes,
            expires_in_days,
        } => {
            let party = provision::find_party(store, &party).await?;
            let grace = time::Duration::minutes(i64::from(grace_minutes));
            let expires_at =
                expires_in_days.map(|days| now + time::Duration::days(i64::from(days)));
            let rotated = provision::rotate_api_key(store, &party, grace, expires_at, now).await?;
            println!(
                "new API key of {} {} (shown once; store it now): {}",
                party.kind, party.id, rotated.api_key
            );
            println!("its id: {}", rotated.key_id);
            if grace_minutes > 0 {
                println!(
                    "{} older key(s) stop working at {}",
                    rotated.previous,
                    crate::domain::time::format_time(now + grace)
                );
            } else {
                println!("{} older key(s) revoked now", rotated.previous);
            }
            Ok(())
        }
        ApiKeyCommand::Revoke { key, party } => {
            let revoked = match (key, party) {
                (Some(key), _) => {
                    provision::revoke_api_keys(store, provision::KeyTarget::Key(&key), now).await?
                }
                (None, Some(reference)) => {
                    let party = provision::find_party(store, &reference).await?;
                    provision::revoke_api_keys(store, provision::KeyTarget::Party(&party), now)
                        .await?
                }
                (None, None) => bail!("name a --key or a --party"),
            };
            if revoked == 0 {
                bail!("no live key matched: nothing was revoked");
            }
            println!("revoked {revoked} API key(s): they open nothing from now on, and their page sessions ended");
            Ok(())
        }
    }
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    if let Some(path) = args.data_key {
        if path.exists() {
            bail!(
                "{} exists already; a data key is never overwritten",
                path.display()
            );
        }
        write_secret_file(&path, &DataKey::generate_base64())?;
        eprintln!(
            "wrote a new data key to {} (mode 0600); keep a copy somewhere safe",
            path.display()
        );
        return Ok(());
    }
    if let Some(path) = args.broker_key {
        let kid = args.kid.unwrap_or_else(broker_key_id);
        if path.exists() {
            bail!(
                "{} exists already; a key is never overwritten",
                path.display()
            );
        }
        write_secret_file(&path, &serde_json::to_string_pretty(&Jwk::generate(&kid))?)?;
        eprintln!(
            "wrote the broker signing key `{kid}` to {} (mode 0600); keep a copy somewhere safe",
            path.display()
        );
        return Ok(());
    }
    let prefix = args
        .out
        .expect("clap requires --out, --data-key or --broker-key");
    let jwk = Jwk::generate(args.kid.as_deref().unwrap_or("k1"));
    let private = PathBuf::from(format!("{}.jwk", prefix.display()));
    let public = PathBuf::from(format!("{}.pub.jwk", prefix.display()));
    if private.exists() {
        bail!(
            "{} exists already; a key is never overwritten",
            private.display()
        );
    }
    write_secret_file(&private, &serde_json::to_string_pretty(&jwk)?)?;
    std::fs::write(&public, serde_json::to_string_pretty(&jwk.public())? + "\n")?;
    eprintln!(
        "wrote {} (private, mode 0600) and {} (public)",
        private.display(),
        public.display()
    );
    Ok(())
}

/// The id a new broker key gets: `broker-<today>`.
fn broker_key_id() -> String {
    format!("broker-{}", time::OffsetDateTime::now_utc().date())
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let jwk = read_private_jwk(&args.key)?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the statement on stdin")?;
    let body = sign_statement(&jwk, &input)?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// Signs a statement (JSON text) and returns the `POST /v1/consents` body.
pub fn sign_statement(jwk: &Jwk, statement_json: &str) -> anyhow::Result<serde_json::Value> {
    let statement: serde_json::Value =
        serde_json::from_str(statement_json).context("the statement is not valid JSON")?;
    if !statement.is_object() {
        bail!("the statement must be a JSON object");
    }
    let signature = jwk
        .sign_detached(&canonical::to_vec(&statement))
        .map_err(anyhow::Error::msg)?;
    Ok(serde_json::json!({"statement": statement, "signature": signature}))
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
