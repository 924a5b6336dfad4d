//! The command line's words: every subcommand and flag, as clap reads them (each flag
//! can also be set through a `PASSERELLE_*` environment variable).

use super::audit;
use crate::service::checkpoints::DEFAULT_ORIGIN;
use crate::service::settings::{AddressRange, BatchLimits};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// The domain of relayed emails' return paths: each email goes out with the
    /// envelope sender `bounce+<message id>@<domain>`, and that domain's mail (its MX)
    /// must reach `--smtp-listen`, where the broker reads the bounces.
    #[arg(long, env = "PASSERELLE_BOUNCE_DOMAIN")]
    pub bounce_domain: Option<String>,
    /// Where the broker listens for bounces (SMTP, plain; behind the domain's MX).
    /// Off unless set; the demo listens on 127.0.0.1:2525.
    #[arg(long, env = "PASSERELLE_SMTP_LISTEN")]
    pub smtp_listen: Option<std::net::SocketAddr>,
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
    /// How far an audit search counts the entries it matches (its `total`); past it the
    /// total says "at least" this many. Each counted entry is read.
    #[arg(long, env = "PASSERELLE_SEARCH_TOTAL_LIMIT", default_value_t = crate::service::settings::DEFAULT_SEARCH_TOTAL_LIMIT, value_parser = clap::value_parser!(i64).range(1..))]
    pub search_total_limit: i64,
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
