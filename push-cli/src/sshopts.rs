//! SSH settings from the destination, `-p`, `-i`, `-o` and `~/.ssh/config`, with OpenSSH's
//! "first obtained value wins" rule (command line first, then matching config blocks in order;
//! IdentityFile accumulates).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{Args, Destination};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Unknown hosts are refused (also OpenSSH's interactive `ask`: we never prompt).
    Yes,
    /// Unknown hosts are learned; changed keys are refused.
    AcceptNew,
    /// Anything is accepted (changed keys with a loud warning).
    No,
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The host as typed (may be a config alias).
    pub alias: String,
    /// Where to connect.
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Explicit keys: `-i`, `-o IdentityFile=`, then config IdentityFile.
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    /// UserKnownHostsFile (learned keys go to the first); empty when `/dev/null`/`none`.
    pub known_hosts: Vec<PathBuf>,
    pub global_known_hosts: Vec<PathBuf>,
    pub host_key_alias: Option<String>,
    pub strict: StrictHostKeyChecking,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
    pub home: PathBuf,
}

/// `$HOME`, which every `~` refers to.
pub fn home_dir() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => bail!("HOME is not set"),
    }
}

fn local_user() -> Result<String> {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return Ok(u);
            }
        }
    }
    bail!("cannot tell the local user name (USER is unset): give one in DEST as user@host")
}

/// One `key value` pair with where it came from (for warnings).
struct Entry {
    key: String,
    value: String,
    origin: String,
}

/// Splits `Key=Value`, `Key Value` or `Key = Value`; strips one pair of double quotes.
fn split_option(text: &str) -> Option<(String, String)> {
    split_option_raw(text).map(|(k, v)| (k.to_ascii_lowercase(), v))
}

/// Like [`split_option`] but keeps the key's spelling.
fn split_option_raw(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let end = text.find(|c: char| c.is_whitespace() || c == '=')?;
    let key = &text[..end];
    let mut value = text[end..].trim_start();
    if let Some(v) = value.strip_prefix('=') {
        value = v.trim_start();
    }
    let value = value.trim_end();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!key.is_empty()).then(|| (key.to_string(), value.to_string()))
}

/// `*` and `?` glob, case-insensitive.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p.eq_ignore_ascii_case(t) => glob_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// A `Host` line's patterns against `host`: some positive match and no negated match.
pub fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split_whitespace().flat_map(|p| p.split(',')) {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob_match(negated.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob_match(pattern.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// The entries of an ssh_config text that apply to `host`.
fn config_entries(text: &str, host: &str, origin: &str) -> Vec<Entry> {
    let mut active = true;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = split_option(line) else {
            continue;
        };
        match key.as_str() {
            "host" => active = host_matches(&value, host),
            // Only `Match all` is understood; other criteria never match.
            "match" => active = value.trim().eq_ignore_ascii_case("all"),
            _ if active => out.push(Entry {
                key,
                value,
                origin: format!("{origin} line {}", n + 1),
            }),
            _ => {}
        }
    }
    out
}

/// Expands `~` and the `%` tokens OpenSSH allows in file names.
fn expand_path(value: &str, home: &Path, host: &str, user: &str) -> PathBuf {
    let value = match value.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => value.to_string(),
    };
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&home.display().to_string()),
            Some('h') => out.push_str(host),
            Some('r') => out.push_str(user),
            Some('u') => out.push_str(&local_user().unwrap_or_default()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    PathBuf::from(out)
}

fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn seconds(value: &str, what: &str) -> Result<Duration> {
    let n: u64 = value
        .parse()
        .with_context(|| format!("{what}: invalid number of seconds {value:?}"))?;
    Ok(Duration::from_secs(n))
}

/// Settings for `dest`; `warn` receives warnings (unknown options).
pub fn resolve(args: &Args, dest: &Destination, warn: &mut dyn FnMut(String)) -> Result<SshSettings> {
    let home = home_dir()?;
    let mut entries = Vec::new();
    for option in &args.options {
        let (key, value) = split_option_raw(option)
            .with_context(|| format!("invalid -o option {option:?} (expected Key=Value)"))?;
        entries.push(Entry {
            key: key.to_ascii_lowercase(),
            value,
            origin: format!("-o {key}"),
        });
    }
    let config_path = home.join(".ssh/config");
    if let Ok(text) = std::fs::read_to_string(&config_path) {
        entries.extend(config_entries(
            &text,
            &dest.host,
            &config_path.display().to_string(),
        ));
    }

    let first = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.value.clone());
    let hostname = first("hostname")
        .map(|h| h.replace("%h", &dest.host))
        .unwrap_or_else(|| dest.host.clone());
    let port = match args.port.or(dest.port) {
        Some(p) => p,
        None => match first("port") {
            Some(p) => p.parse().with_context(|| format!("invalid Port {p:?}"))?,
            None => 22,
        },
    };
    let user = match dest.user.clone().or_else(|| first("user")) {
        Some(u) => u,
        None => local_user()?,
    };
    let mut identity_files: Vec<PathBuf> = args.identity.clone();
    let mut known_hosts = None;
    let mut global_known_hosts = None;
    let mut strict = None;
    let mut identities_only = None;
    let mut connect_timeout = None;
    let mut server_alive_interval = None;
    let mut host_key_alias = None;
    for e in &entries {
        let path = |v: &str| expand_path(v, &home, &hostname, &user);
        let files = |v: &str| -> Vec<PathBuf> {
            v.split_whitespace()
                .filter(|f| !matches!(*f, "/dev/null" | "none"))
                .map(path)
                .collect()
        };
        match e.key.as_str() {
            "identityfile" => identity_files.push(path(&e.value)),
            "userknownhostsfile" => {
                known_hosts.get_or_insert_with(|| files(&e.value));
            }
            "globalknownhostsfile" => {
                global_known_hosts.get_or_insert_with(|| files(&e.value));
            }
            "stricthostkeychecking" => {
                let value = match e.value.to_ascii_lowercase().as_str() {
                    "yes" | "ask" | "true" => StrictHostKeyChecking::Yes,
                    "accept-new" => StrictHostKeyChecking::AcceptNew,
                    "no" | "off" | "false" => StrictHostKeyChecking::No,
                    other => bail!("invalid StrictHostKeyChecking value {other:?} ({})", e.origin),
                };
                strict.get_or_insert(value);
            }
            "identitiesonly" => {
                identities_only.get_or_insert(yes_no(&e.value).unwrap_or(false));
            }
            "connecttimeout" => {
                if connect_timeout.is_none() {
                    connect_timeout = Some(seconds(&e.value, "ConnectTimeout")?);
                }
            }
            "serveraliveinterval" => {
                if server_alive_interval.is_none() {
                    let d = seconds(&e.value, "ServerAliveInterval")?;
                    server_alive_interval = Some((!d.is_zero()).then_some(d));
                }
            }
            "hostkeyalias" => {
                host_key_alias.get_or_insert_with(|| e.value.clone());
            }
            "hostname" | "port" | "user" => {}
            // Harmless for us: ssh's own output, batch prompts and multiplexing.
            "batchmode"
            | "loglevel"
            | "controlmaster"
            | "controlpath"
            | "controlpersist"
            | "passwordauthentication"
            | "kbdinteractiveauthentication"
            | "preferredauthentications"
            | "pubkeyauthentication"
            | "addkeystoagent"
            | "include"
            | "sendenv"
            | "setenv"
            | "forwardagent"
            | "compression" => {
                tracing::debug!(option = %e.key, origin = %e.origin, "ssh option ignored");
            }
            _ if e.origin.starts_with("-o ") => {
                warn(format!(
                    "ignoring unsupported ssh option {}={}",
                    e.origin, e.value
                ));
            }
            _ => tracing::debug!(option = %e.key, origin = %e.origin, "ssh_config option ignored"),
        }
    }
    let known_hosts =
        known_hosts.unwrap_or_else(|| vec![home.join(".ssh/known_hosts"), home.join(".ssh/known_hosts2")]);
    let global_known_hosts = global_known_hosts.unwrap_or_else(|| {
        vec![
            PathBuf::from("/etc/ssh/ssh_known_hosts"),
            PathBuf::from("/etc/ssh/ssh_known_hosts2"),
        ]
    });
    Ok(SshSettings {
        alias: dest.host.clone(),
        hostname,
        port,
        user,
        identity_files,
        identities_only: identities_only.unwrap_or(false),
        known_hosts,
        global_known_hosts,
        host_key_alias,
        strict: strict.unwrap_or(StrictHostKeyChecking::Yes),
        connect_timeout,
        server_alive_interval: server_alive_interval.flatten(),
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(host_matches("*", "x"));
        assert!(host_matches("gw gw.example.org", "GW"));
        assert!(host_matches("*.example.org,!bad.example.org", "a.example.org"));
        assert!(!host_matches("*.example.org !bad.example.org", "bad.example.org"));
        assert!(host_matches("h?st", "host"));
        assert!(!host_matches("h?st", "hoost"));
    }

    #[test]
    fn options_split() {
        assert_eq!(split_option("Port=22"), Some(("port".into(), "22".into())));
        assert_eq!(split_option("User = bob"), Some(("user".into(), "bob".into())));
        assert_eq!(
            split_option("IdentityFile \"~/a b\""),
            Some(("identityfile".into(), "~/a b".into()))
        );
    }

    #[test]
    fn config_blocks() {
        let text = "Port 1\nHost gw\n  HostName 127.0.0.1\n  Port 2222\nHost *\n  User u\n";
        let e = config_entries(text, "gw", "cfg");
        let keys: Vec<_> = e.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("port", "1"),
                ("hostname", "127.0.0.1"),
                ("port", "2222"),
                ("user", "u")
            ]
        );
        assert_eq!(config_entries(text, "other", "cfg").len(), 2);
    }

    #[test]
    fn paths() {
        let home = Path::new("/home/a");
        assert_eq!(
            expand_path("~/.ssh/k", home, "h", "u"),
            Path::new("/home/a/.ssh/k")
        );
        assert_eq!(expand_path("%d/%h-%r", home, "h", "u"), Path::new("/home/a/h-u"));
    }
}
