//! Gateway configuration (TOML). Unknown keys are errors, so a typo never silently falls back
//! to a default. Every field has a default: no config file at all is a valid setup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/ostree-gateway/gateway.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ostree-gateway";

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database, host keys and (by default) the repos live here.
    pub state_dir: Option<PathBuf>,
    /// Root under which every repo must live; default `<state_dir>/repos`.
    pub repos_root: Option<PathBuf>,
    pub server: ServerConfig,
    pub limits: Limits,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub summary: SummaryConfig,
    /// Per-repo operations settings, keyed by repo name (`[repos.NAME]`).
    pub repos: std::collections::BTreeMap<String, RepoConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SummaryConfig {
    /// Extra wait before a regeneration so that more pushes can share it. Pushes that finish
    /// while a regeneration runs always share the next one; 0 adds no latency to a push.
    pub coalesce_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RepoConfig {
    /// Runs after a push is received and verified, before any ref moves; a non-zero exit
    /// (or the timeout) refuses the push and its stderr is shown to the pusher.
    pub pre_update_hook: Option<PathBuf>,
    /// Runs after the refs moved (and the summary was regenerated); failures are audited.
    pub post_update_hook: Option<PathBuf>,
    /// Seconds a hook may run before it is killed (and, for pre-update, the push refused).
    pub hook_timeout_secs: Option<u64>,
    /// Sign the summary with this GPG key (fingerprint or id) from `gpg_homedir`.
    pub summary_gpg_key: Option<String>,
    /// GnuPG home holding the signing key; default `<state_dir>/gnupg`.
    pub gpg_homedir: Option<PathBuf>,
    /// After each update, generate a static delta from the previous commit of each moved ref
    /// (in the background, then the summary is regenerated to list it).
    pub static_deltas: bool,
}

impl RepoConfig {
    pub fn hook_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.hook_timeout_secs.unwrap_or(300))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Loopback address for the Prometheus endpoint (`GET /metrics`); unset: disabled.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Host private keys (OpenSSH format). Empty: `<state_dir>/host_keys/ssh_host_ed25519_key`,
    /// generated on first start.
    pub host_keys: Vec<PathBuf>,
    /// Seconds without traffic before a session is closed.
    pub idle_timeout_secs: u64,
    /// Seconds to complete authentication after connecting.
    pub auth_timeout_secs: u64,
    /// Seconds running receives get to finish on SIGTERM/SIGINT before they are aborted.
    pub shutdown_grace_secs: u64,
    pub max_sessions: usize,
    pub max_sessions_per_user: usize,
    /// `ssh -R` forwards one session may hold.
    pub max_forwards_per_session: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest single object accepted, in bytes.
    pub max_object_size: u64,
    /// Largest total of object bytes one push may transfer.
    pub max_push_size: u64,
    /// Refs one push may update.
    pub max_refs_per_push: usize,
    /// How many parent commits the ancestry (fast-forward) walk may fetch.
    pub max_ancestry_depth: u32,
    /// Seconds a receive may run in total.
    pub push_timeout_secs: u64,
    /// A transfer averaging under `min_transfer_rate` bytes/s over this many seconds is
    /// aborted (a silent or trickling pusher); also the limit for one metadata request
    /// through the tunnel.
    pub stall_timeout_secs: u64,
    /// Bytes per second a transfer must average over `stall_timeout_secs`.
    pub min_transfer_rate: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ostree_gateway=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:2222".parse().expect("valid default address"),
            host_keys: Vec::new(),
            idle_timeout_secs: 600,
            auth_timeout_secs: 30,
            shutdown_grace_secs: 60,
            max_sessions: 256,
            max_sessions_per_user: 16,
            max_forwards_per_session: 4,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_size: 2 << 30,
            max_push_size: 64 << 30,
            max_refs_per_push: 1000,
            max_ancestry_depth: 10_000,
            push_timeout_secs: 6 * 3600,
            stall_timeout_secs: 60,
            min_transfer_rate: 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            // toml's message names the unknown key and lists the expected ones; keep it on one line.
            message: e.message().trim().replace('\n', " "),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// `explicit` (from `--config` or the environment) must exist; otherwise the default path
    /// is used when present, and built-in defaults when not.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(path) => Config::load(path),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => Config::load(Path::new(DEFAULT_CONFIG_PATH)),
            None => Ok(Config::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        assert_eq!(Config::parse("", Path::new("x")).unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlissten = 3\n",
            Path::new("g.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lissten"), "{err}");
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.server.listen.port(), 2222);
    }
}
