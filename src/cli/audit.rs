//! `passerelle audit …`: verify the log, print a proof, check a proof offline, print
//! the log's public key.

use super::{open_store, read_jwk, StorageArgs};
use crate::audit::checkpoint::{Checkpoint, LogKey};
use crate::audit::proof::InclusionProof;
use crate::service::checkpoints::DEFAULT_ORIGIN;
use crate::service::proofs;
use crate::service::verify_log::{self, Expected};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Rebuild the tree from the database and hold it to every stored checkpoint and
    /// to each exported one given; print the first bad index (exit code 1).
    Verify {
        /// A checkpoint kept outside the database (as written to `--checkpoint-dir`);
        /// repeat for several.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Whose checkpoints to trust.
        #[command(flatten)]
        key: LogKeyArgs,
    },
    /// Print entry N's inclusion proof (JSON) against the smallest stored checkpoint
    /// covering it, or the checkpoint of `--tree-size`.
    Prove {
        /// The entry index.
        #[arg(long)]
        entry: u64,
        /// Prove against the checkpoint of this size.
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// Check a proof (as `prove` or `GET /v1/audit/proofs/inclusion` prints it)
    /// offline, with the log's public key; no database needed.
    CheckProof {
        /// The proof file; `-` reads stdin.
        #[arg(long)]
        proof: PathBuf,
        /// The log key (`name+keyid+base64`), or a file holding it.
        #[arg(long)]
        log_key: String,
        /// A checkpoint obtained independently: the proof must be against it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print the log's public key (`name+keyid+base64`), for offline checks.
    LogKey {
        /// The key.
        #[command(flatten)]
        key: LogKeyArgs,
    },
}

/// Which key signs the log's checkpoints.
#[derive(Args, Debug, Clone)]
pub struct LogKeyArgs {
    /// The log key itself (`name+keyid+base64`) or a file holding it. Default: derived
    /// from the broker key file and the log origin.
    #[arg(long)]
    pub log_key: Option<String>,
    /// The broker's key (JWK). Default: `broker.jwk` in the data directory.
    #[arg(long, env = "PASSERELLE_BROKER_KEY_FILE")]
    pub broker_key_file: Option<PathBuf>,
    /// The audit log's name, as the broker was started with.
    #[arg(long, env = "PASSERELLE_LOG_ORIGIN", default_value = DEFAULT_ORIGIN)]
    pub log_origin: String,
}

impl LogKeyArgs {
    fn resolve(&self, storage: &StorageArgs) -> anyhow::Result<LogKey> {
        if let Some(text) = &self.log_key {
            return parse_log_key(text);
        }
        let file = self
            .broker_key_file
            .clone()
            .unwrap_or_else(|| storage.data_dir.join("broker.jwk"));
        let jwk = read_jwk(&file)?;
        LogKey::of(&self.log_origin, &jwk).map_err(anyhow::Error::msg)
    }
}

fn parse_log_key(text: &str) -> anyhow::Result<LogKey> {
    let path = Path::new(text);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        text.to_string()
    };
    Ok(LogKey::parse(&text)?)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs an `audit` subcommand.
pub async fn run(storage: &StorageArgs, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { checkpoints, key } => {
            let key = key.resolve(storage)?;
            let mut exported = Vec::new();
            for path in &checkpoints {
                let checkpoint = Checkpoint::open(&read_text(path)?, &key)
                    .with_context(|| format!("the checkpoint in {}", path.display()))?;
                exported.push(Expected {
                    source: path.display().to_string(),
                    checkpoint,
                });
            }
            let store = open_store(storage).await?;
            let report = verify_log::verify(&store, &key, exported).await?;
            let rate = report.entries as f64 / report.elapsed.as_secs_f64().max(1e-9);
            println!("{}", report.summary());
            println!(
                "read {} entries in {:.2} s ({rate:.0} entries/s)",
                report.entries,
                report.elapsed.as_secs_f64()
            );
            if report.finding.is_some() {
                bail!("the audit log does not verify");
            }
            Ok(())
        }
        AuditCommand::Prove { entry, tree_size } => {
            let store = open_store(storage).await?;
            let proof = proofs::for_operator(&store, entry, tree_size).await?;
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(())
        }
        AuditCommand::CheckProof {
            proof,
            log_key,
            checkpoint,
        } => {
            let key = parse_log_key(&log_key)?;
            let proof: InclusionProof = serde_json::from_str(&read_text(&proof)?)
                .context("the proof is not a proof's JSON")?;
            let signed = proof.check(&key).map_err(anyhow::Error::msg)?;
            if let Some(path) = checkpoint {
                let held = Checkpoint::open(&read_text(&path)?, &key)
                    .with_context(|| format!("the checkpoint in {}", path.display()))?;
                if held != signed {
                    bail!(
                        "the proof is against a tree of {} entries, not the checkpoint given ({} entries)",
                        signed.size,
                        held.size
                    );
                }
            }
            println!(
                "proof valid: entry {} ({} {} at {}) is in the log {} of {} entries",
                proof.entry.index,
                proof.entry.action,
                proof.entry.outcome,
                proof.entry.at,
                signed.origin,
                signed.size
            );
            Ok(())
        }
        AuditCommand::LogKey { key } => {
            println!("{}", key.resolve(storage)?);
            Ok(())
        }
    }
}
