//! The operator's commands: parties, their API keys and agency signing keys, key
//! generation, signing a statement and verifying a receipt offline.

use super::args::{AddParty, ApiKeyCommand, KeyCommand, KeygenArgs, SignArgs, StorageArgs};
use super::open_store;
use crate::crypto::canonical;
use crate::crypto::countersign::{self, Countersigned};
use crate::crypto::jws::Jwk;
use crate::crypto::keyfile::{read_jwk, read_private_jwk, write_secret_file};
use crate::crypto::seal::DataKey;
use crate::service::parties as provision;
use crate::store::Store;
use anyhow::{bail, Context};
use std::io::Read;
use std::path::{Path, PathBuf};

pub(super) async fn agency_key(storage: &StorageArgs, command: KeyCommand) -> anyhow::Result<()> {
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

pub(super) fn verify_receipt(receipt: &Path, keys: &Path) -> anyhow::Result<()> {
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

pub(super) async fn add_party(storage: &StorageArgs, party: AddParty) -> anyhow::Result<()> {
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
pub(super) async fn api_keys(storage: &StorageArgs, command: ApiKeyCommand) -> anyhow::Result<()> {
    let store = open_store(storage).await?;
    let now = time::OffsetDateTime::now_utc();
    let done = run_api_key_command(&store, command, now).await;
    store.close().await;
    done
}

pub(super) async fn run_api_key_command(
    store: &Store,
    command: ApiKeyCommand,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let time = |at: Option<time::OffsetDateTime>| {
        at.map_or_else(|| "-".to_string(), crate::domain::time::format_time)
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
                    (None, Some(at)) if at <= now => "expired".into(),
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

pub(super) fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
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
pub(super) fn broker_key_id() -> String {
    format!("broker-{}", time::OffsetDateTime::now_utc().date())
}

pub(super) fn sign(args: SignArgs) -> anyhow::Result<()> {
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
