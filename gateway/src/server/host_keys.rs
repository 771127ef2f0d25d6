//! Host keys: configured files, or one ed25519 key generated on first start (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use russh::keys::{Algorithm, PrivateKey};

pub const DEFAULT_KEY_NAME: &str = "ssh_host_ed25519_key";

/// Loads the configured keys, or the state dir's default key (creating it when missing).
pub fn load(configured: &[PathBuf], key_dir: &Path) -> anyhow::Result<Vec<PrivateKey>> {
    if !configured.is_empty() {
        return configured
            .iter()
            .map(|path| {
                russh::keys::load_secret_key(path, None)
                    .with_context(|| format!("cannot load host key {}", path.display()))
            })
            .collect();
    }
    let path = key_dir.join(DEFAULT_KEY_NAME);
    if !path.exists() {
        generate(&path)?;
    }
    let key = russh::keys::load_secret_key(&path, None)
        .with_context(|| format!("cannot load host key {}", path.display()))?;
    Ok(vec![key])
}

fn generate(path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().expect("key path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).context("cannot generate host key")?;
    let pem = key.to_openssh(russh::keys::ssh_key::LineEnding::LF)?;
    // Write to a temp name with 0600 from the start, then rename: never a readable half key.
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let public = key.public_key().to_openssh()?;
    std::fs::write(path.with_extension("pub"), format!("{public}\n"))?;
    tracing::info!(path = %path.display(), "generated host key");
    Ok(())
}
