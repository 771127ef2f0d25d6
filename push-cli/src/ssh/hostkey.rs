//! Server host key verification against known_hosts files, the way OpenSSH does it for
//! StrictHostKeyChecking yes / accept-new / no.

use std::path::PathBuf;

use std::io::Write;
use std::path::Path;

use russh::keys::{check_known_hosts_path, HashAlg, PublicKey};

use crate::sshopts::{SshSettings, StrictHostKeyChecking};

/// Why a server was not trusted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key verification failed: {host} is not a known host\n\
         Its {algorithm} key fingerprint is {fingerprint}.\n\
         If the gateway's administrator confirms this fingerprint, either push once with\n  \
         -o StrictHostKeyChecking=accept-new\n\
         or add the key to {file} with\n  \
         ssh-keyscan {keyscan} >> {file}"
    )]
    Unknown {
        host: String,
        algorithm: String,
        fingerprint: String,
        file: String,
        keyscan: String,
    },
    #[error(
        "host key verification failed: the host key of {host} has CHANGED\n{}\n\
         Refusing to connect. If the change is expected, remove the old key with\n  \
         ssh-keygen -R '{host}' -f {file}",
        changed_banner(algorithm, host, fingerprint, file, *line)
    )]
    Changed {
        host: String,
        algorithm: String,
        fingerprint: String,
        file: String,
        line: usize,
    },
}

pub struct HostKeyCheck {
    /// Name looked up in known_hosts (HostKeyAlias or the HostName).
    name: String,
    port: u16,
    user_files: Vec<PathBuf>,
    global_files: Vec<PathBuf>,
    strict: StrictHostKeyChecking,
}

impl HostKeyCheck {
    pub fn new(settings: &SshSettings) -> HostKeyCheck {
        HostKeyCheck {
            name: settings
                .host_key_alias
                .clone()
                .unwrap_or_else(|| settings.hostname.clone()),
            port: settings.port,
            user_files: settings.known_hosts.clone(),
            global_files: settings.global_known_hosts.clone(),
            strict: settings.strict,
        }
    }

    fn display_host(&self) -> String {
        if self.port == 22 {
            self.name.clone()
        } else {
            format!("[{}]:{}", self.name, self.port)
        }
    }

    /// `Ok(warnings)` when the key is trusted.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<String>, HostKeyError> {
        let mut warnings = Vec::new();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let algorithm = key.algorithm().to_string();
        for file in self.user_files.iter().chain(&self.global_files) {
            match check_known_hosts_path(&self.name, self.port, key, file) {
                Ok(true) => {
                    tracing::debug!(file = %file.display(), "host key known");
                    return Ok(warnings);
                }
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    let file = file.display().to_string();
                    if self.strict == StrictHostKeyChecking::No {
                        let banner =
                            changed_banner(&algorithm, &self.display_host(), &fingerprint, &file, line);
                        warnings.push(format!("{banner}\nStrictHostKeyChecking=no: connecting anyway."));
                        return Ok(warnings);
                    }
                    return Err(HostKeyError::Changed {
                        host: self.display_host(),
                        algorithm,
                        fingerprint,
                        file,
                        line,
                    });
                }
                Err(e) => warnings.push(format!("cannot use {}: {e}", file.display())),
            }
        }
        let learn_file = self.user_files.first();
        if self.strict == StrictHostKeyChecking::Yes {
            let file = learn_file
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "~/.ssh/known_hosts".into());
            let keyscan = if self.port == 22 {
                self.name.clone()
            } else {
                format!("-p {} {}", self.port, self.name)
            };
            return Err(HostKeyError::Unknown {
                host: self.display_host(),
                algorithm,
                fingerprint,
                file,
                keyscan,
            });
        }
        match learn_file {
            Some(file) => match learn(&self.display_host(), key, file) {
                Ok(()) => warnings.push(format!(
                    "Permanently added {} ({algorithm} {fingerprint}) to {}",
                    self.display_host(),
                    file.display()
                )),
                Err(e) => warnings.push(format!(
                    "cannot record the host key of {} in {}: {e}",
                    self.display_host(),
                    file.display()
                )),
            },
            None => warnings.push(format!(
                "accepting the unknown host key of {} ({fingerprint}) without recording it",
                self.display_host()
            )),
        }
        Ok(warnings)
    }
}

fn changed_banner(algorithm: &str, host: &str, fingerprint: &str, file: &str, line: usize) -> String {
    format!(
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
         @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
         The {algorithm} host key for {host} has changed: it now is {fingerprint}.\n\
         Offending key in {file}:{line}"
    )
}

/// Appends `host key` to a known_hosts file (created with its directory if needed).
fn learn(host: &str, key: &PublicKey, file: &Path) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line = key.to_openssh().map_err(std::io::Error::other)?;
    let existing = std::fs::read(file).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    if existing.last().is_some_and(|&b| b != b'\n') {
        f.write_all(b"\n")?;
    }
    writeln!(f, "{host} {line}")
}
