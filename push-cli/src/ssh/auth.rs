//! Public key authentication: explicit identity files, then ssh-agent, then the default
//! key files (~/.ssh/id_ed25519, id_ecdsa, id_rsa).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use russh::client;
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{load_public_key, load_secret_key, HashAlg, PrivateKeyWithHashAlg, PublicKey};

use super::ClientHandler;
use crate::sshopts::SshSettings;

const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

pub async fn authenticate(
    handle: &mut client::Handle<ClientHandler>,
    settings: &SshSettings,
    warn: &mut dyn FnMut(String),
) -> Result<String> {
    let user = settings.user.as_str();
    let rsa_hash = handle.best_supported_rsa_hash().await?.flatten();
    let mut tried = Vec::new();

    // 1. Explicit identity files (-i, -o IdentityFile=, ssh_config).
    for file in &settings.identity_files {
        if try_file(handle, user, file, rsa_hash, true, warn, &mut tried).await? {
            return Ok(format!("key file {}", file.display()));
        }
    }

    // 2. ssh-agent.
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match AgentClient::connect_env().await {
            Ok(mut agent) => {
                let wanted: Vec<PublicKey> = if settings.identities_only {
                    settings
                        .identity_files
                        .iter()
                        .filter_map(|f| load_public_key(pub_path(f)).ok())
                        .collect()
                } else {
                    Vec::new()
                };
                let identities = match agent.request_identities().await {
                    Ok(ids) => ids,
                    Err(e) => {
                        warn(format!("cannot list ssh-agent keys: {e}"));
                        Vec::new()
                    }
                };
                for identity in identities {
                    let AgentIdentity::PublicKey { key, comment } = identity else {
                        continue;
                    };
                    if settings.identities_only && !wanted.iter().any(|w| w.key_data() == key.key_data()) {
                        continue;
                    }
                    let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                    tracing::debug!(%comment, "trying ssh-agent key");
                    let described = format!("agent key {}", describe(&key, &comment));
                    tried.push(described.clone());
                    match handle
                        .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                        .await
                    {
                        Ok(result) if result.success() => return Ok(described),
                        Ok(_) => {}
                        Err(e) => warn(format!("ssh-agent could not sign with {comment}: {e}")),
                    }
                }
            }
            Err(e) => warn(format!("cannot reach ssh-agent (SSH_AUTH_SOCK): {e}")),
        }
    }

    // 3. Default key files.
    if !settings.identities_only {
        for name in DEFAULT_KEYS {
            let file = settings.home.join(".ssh").join(name);
            if settings.identity_files.contains(&file) || !file.exists() {
                continue;
            }
            if try_file(handle, user, &file, rsa_hash, false, warn, &mut tried).await? {
                return Ok(format!("key file {}", file.display()));
            }
        }
    }

    if tried.is_empty() {
        bail!(
            "permission denied for {user}@{}: no SSH key to offer (use -i KEY, an ssh-agent, \
             or ~/.ssh/id_ed25519)",
            settings.hostname
        );
    }
    bail!(
        "permission denied (publickey) for {user}@{}; tried: {}",
        settings.hostname,
        tried.join(", ")
    )
}

fn pub_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn describe(key: &PublicKey, comment: &str) -> String {
    let fp = key.fingerprint(HashAlg::Sha256);
    if comment.is_empty() {
        fp.to_string()
    } else {
        format!("{fp} ({comment})")
    }
}

/// Tries one key file; `Ok(true)` when authenticated.
async fn try_file(
    handle: &mut client::Handle<ClientHandler>,
    user: &str,
    file: &Path,
    rsa_hash: Option<HashAlg>,
    explicit: bool,
    warn: &mut dyn FnMut(String),
    tried: &mut Vec<String>,
) -> Result<bool> {
    let key = match load_secret_key(file, None) {
        Ok(key) => key,
        Err(russh::keys::Error::KeyIsEncrypted) => {
            warn(format!(
                "skipping {}: it is passphrase-protected (add it to ssh-agent)",
                file.display()
            ));
            return Ok(false);
        }
        Err(e) => {
            if explicit {
                warn(format!("cannot load identity {}: {e}", file.display()));
            }
            return Ok(false);
        }
    };
    tracing::debug!(file = %file.display(), "trying key file");
    tried.push(file.display().to_string());
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
    let result = handle.authenticate_publickey(user, key).await?;
    Ok(result.success())
}
