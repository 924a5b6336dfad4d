//! Files that hold keys: written readable by their owner only, and refused when they
//! can be read by others, since a key anyone on the machine can read is no secret.
//!
//! Used by the command line, the demo and the key rotation alike.

use crate::crypto::jws::Jwk;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::Path;

/// Writes a new file readable by its owner only (mode 0600); never overwrites one.
pub fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

/// Refuses a secret file that its group or others may read or write.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} holds a secret key but its mode is {:04o}, so others on this machine can read it: \
                 run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Reads a JWK file (public or private).
pub fn read_jwk(path: &Path) -> anyhow::Result<Jwk> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an Ed25519 JWK", path.display()))
}

/// Reads a private JWK, refusing it if others may read its file or if it holds no
/// private half.
pub fn read_private_jwk(path: &Path) -> anyhow::Result<Jwk> {
    check_private(path)?;
    let key = read_jwk(path)?;
    if key.d.is_none() {
        bail!(
            "{} is a public key; a private key is needed here",
            path.display()
        );
    }
    Ok(key)
}

/// Makes a directory readable by its owner only (mode 0700), and its parents, if it
/// does not exist. An existing directory is left as it is (it may be the current
/// directory, or one an operator set up), with a warning if others may read it.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            let current = std::env::current_dir().ok();
            let is_current = path == Path::new(".")
                || current.is_some_and(|c| path.canonicalize().ok() == Some(c));
            if mode & 0o077 != 0 && !is_current {
                tracing::warn!(
                    dir = %path.display(),
                    mode = format!("{:04o}", mode & 0o7777),
                    "the data directory can be read by others; its key and database files cannot, but consider `chmod 700`"
                );
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .with_context(|| format!("creating the directory {}", path.display()))
}

/// Makes an existing file readable by its owner only (a database and its journal).
pub fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to its owner", path.display()))?;
        }
    }
    Ok(())
}
