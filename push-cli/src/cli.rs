//! Command line: ostree-push 1.2.0's options, plus `--json` and `--force`.

use std::path::PathBuf;

use clap::Parser;

/// Push OSTree refs to a remote repository over SSH (ostree-push 1.2.0 compatible).
#[derive(Debug, Parser)]
#[command(name = "ostree-push", version)]
pub struct Args {
    /// Dry run: transfer and check everything, move no ref.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,

    /// SSH port (overrides the port in DEST).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,

    /// Print only errors and results.
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more details.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Local repository [default: $OSTREE_REPO, else the current directory if it is a
    /// repository, else /ostree/repo].
    #[arg(long = "repo", value_name = "REPO")]
    pub repo: Option<PathBuf>,

    /// Remote receive command (shell-split); tried in order, 127 means "try the next".
    /// [default: ostree-receive-1, then ostree-receive]
    #[arg(long = "command", value_name = "CMD")]
    pub command: Vec<String>,

    /// SSH identity (private key) file.
    #[arg(short = 'i', value_name = "IDENTITY")]
    pub identity: Vec<PathBuf>,

    /// SSH option, as for ssh -o (Port, User, IdentityFile, UserKnownHostsFile,
    /// StrictHostKeyChecking, HostKeyAlias, IdentitiesOnly, ConnectTimeout,
    /// ServerAliveInterval).
    #[arg(short = 'o', value_name = "OPTION")]
    pub options: Vec<String>,

    /// Print the result as one JSON object on stdout.
    #[arg(long = "json")]
    pub json: bool,

    /// Ask for non-fast-forward updates (policy still decides).
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Destination: [user@]host:path or ssh://[user@]host[:port]/path.
    #[arg(value_name = "DEST", value_parser = Destination::parse)]
    pub dest: Destination,

    /// Refs to push [default: all local refs but appstream/*, appstream2/*, ostree-metadata].
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
}

impl Args {
    /// Receive commands to try, in order.
    pub fn commands(&self) -> Vec<String> {
        if self.command.is_empty() {
            vec!["ostree-receive-1".into(), "ostree-receive".into()]
        } else {
            self.command.clone()
        }
    }
}

/// Where to push: an SSH host (maybe an ~/.ssh/config alias) and the repository path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// As typed, for messages and JSON.
    pub original: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl Destination {
    pub fn parse(text: &str) -> Result<Destination, String> {
        let original = text.to_string();
        if let Some((scheme, rest)) = text.split_once("://") {
            if scheme != "ssh" {
                return Err(format!("Destination scheme \"{scheme}\" not allowed"));
            }
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if path.len() <= 1 {
                return Err(format!("destination {text} names no repository path"));
            }
            let (user, hostport) = split_user(authority);
            let (host, port) = split_port(hostport)?;
            return Ok(Destination {
                original,
                user,
                host,
                port,
                path: path.to_string(),
            });
        }
        let (user, rest) = split_user(text);
        let (host, path) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("destination {text}: unterminated [ in host"))?;
            let path = after.strip_prefix(':').ok_or_else(|| not_a_dest(text))?;
            (host.to_string(), path)
        } else {
            let (host, path) = rest.split_once(':').ok_or_else(|| not_a_dest(text))?;
            (host.to_string(), path)
        };
        if host.is_empty() || path.is_empty() {
            return Err(not_a_dest(text));
        }
        Ok(Destination {
            original,
            user,
            host,
            port: None,
            path: path.to_string(),
        })
    }
}

fn not_a_dest(text: &str) -> String {
    format!("destination {text:?} is not of the form [user@]host:path or ssh://[user@]host[:port]/path")
}

fn split_user(text: &str) -> (Option<String>, &str) {
    match text.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
        _ => (None, text.trim_start_matches('@')),
    }
}

fn split_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = |p: &str| format!("invalid port {p:?} in destination");
    if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "unterminated [ in destination host".to_string())?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad_port(p))?),
            None if after.is_empty() => None,
            None => return Err(format!("invalid destination host {hostport:?}")),
        };
        return Ok((host.to_string(), port));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().map_err(|_| bad_port(p))?)),
        None => (hostport, None),
    };
    if host.is_empty() {
        return Err("destination has no host".into());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_style() {
        let d = Destination::parse("alice@example.org:repos/main").unwrap();
        assert_eq!(d.user.as_deref(), Some("alice"));
        assert_eq!(d.host, "example.org");
        assert_eq!(d.port, None);
        assert_eq!(d.path, "repos/main");
        let d = Destination::parse("host:/srv/repo").unwrap();
        assert_eq!((d.user, d.path.as_str()), (None, "/srv/repo"));
        let d = Destination::parse("[::1]:/r").unwrap();
        assert_eq!(d.host, "::1");
    }

    #[test]
    fn ssh_url() {
        let d = Destination::parse("ssh://bob@127.0.0.1:2222/main").unwrap();
        assert_eq!(d.user.as_deref(), Some("bob"));
        assert_eq!(d.host, "127.0.0.1");
        assert_eq!(d.port, Some(2222));
        assert_eq!(d.path, "/main");
        let d = Destination::parse("ssh://[::1]:22/x").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", Some(22)));
        assert!(Destination::parse("ssh://host").is_err());
        assert!(Destination::parse("ssh://host:abc/x").is_err());
    }

    #[test]
    fn other_schemes_refused() {
        let e = Destination::parse("http://host/repo").unwrap_err();
        assert_eq!(e, "Destination scheme \"http\" not allowed");
        assert!(Destination::parse("just-a-host").is_err());
    }

    #[test]
    fn options_after_dest() {
        let a = Args::try_parse_from(["ostree-push", "h:r", "ref1", "-n", "--json", "ref2"]).unwrap();
        assert!(a.dry_run && a.json);
        assert_eq!(a.refs, ["ref1", "ref2"]);
        assert_eq!(a.commands(), ["ostree-receive-1", "ostree-receive"]);
    }
}
