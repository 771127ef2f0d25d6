//! Command-line grammar of `ostree-gateway` (admin commands and `serve`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ostree-gateway",
    version,
    about = "Publish OSTree commits over SSH under per-ref policy"
)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/ostree-gateway/gateway.toml when it exists.
    #[arg(long, global = true, env = "OSTREE_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (database, host keys, repos). Default: the config's `state_dir`,
    /// else /var/lib/ostree-gateway.
    #[arg(long, global = true, env = "OSTREE_GATEWAY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage SSH public keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Manage teams and their members.
    #[command(subcommand)]
    Team(TeamCmd),
    /// Manage repositories.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Manage access rules (ordered, first match decides).
    #[command(subcommand)]
    Rule(RuleCmd),
    /// Manage trusted GPG keys of a repository.
    #[command(subcommand, name = "gpg-key")]
    GpgKey(GpgKeyCmd),
    /// Explain how the rules decide an update.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Show the audit trail, newest first.
    Audit(AuditArgs),
    /// Run the SSH server.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    Add {
        name: String,
    },
    List(#[command(flatten)] JsonFlag),
    Show {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Remove {
        name: String,
    },
    /// Let the user run admin commands over SSH (`ssh gateway user list`).
    SetAdmin {
        name: String,
    },
    UnsetAdmin {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Add keys from authorized_keys lines (a file, or `-`/nothing for stdin).
    Add {
        user: String,
        file: Option<PathBuf>,
    },
    List {
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    Remove {
        fingerprint: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamCmd {
    Add {
        name: String,
    },
    List(#[command(flatten)] JsonFlag),
    Remove {
        name: String,
    },
    AddMember {
        team: String,
        user: String,
    },
    RemoveMember {
        team: String,
        user: String,
    },
    /// Mark a member as an admin of the team (recorded; remote team admins are planned).
    SetAdmin {
        team: String,
        user: String,
    },
    UnsetAdmin {
        team: String,
        user: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RepoMode {
    Archive,
    Bare,
    BareUser,
}

impl RepoMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoMode::Archive => "archive",
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    Add {
        name: String,
        /// Repo directory; relative paths are taken from the repos root. Default: <repos root>/NAME.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Create the OSTree repo if it does not exist.
        #[arg(long)]
        init: bool,
        /// Mode for --init (default archive); checked against an existing repo otherwise.
        #[arg(long, value_enum)]
        mode: Option<RepoMode>,
        #[arg(long)]
        collection_id: Option<String>,
    },
    List(#[command(flatten)] JsonFlag),
    Show {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Forget a repo (its files stay on disk).
    Remove {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RuleCmd {
    Add(RuleAddArgs),
    List {
        /// Only rules whose repo pattern matches this repo name.
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    Remove {
        id: i64,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["user", "team", "everyone"])))]
#[command(group(clap::ArgGroup::new("effect").required(true).args(["allow", "deny"])))]
pub struct RuleAddArgs {
    /// Repo name pattern (globs: * within a segment, ** across, {user}).
    #[arg(long)]
    pub repo: String,
    /// Ref pattern, e.g. `app/org.example.*/**` or `users/{user}/**`.
    #[arg(long = "ref")]
    pub ref_pattern: String,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub everyone: bool,
    /// Comma list of create,update,force,delete (or all).
    #[arg(long, value_name = "OPS")]
    pub allow: Option<String>,
    #[arg(long, value_name = "OPS")]
    pub deny: Option<String>,
    /// Commits must be signed by one of the repo's trusted GPG keys.
    #[arg(long)]
    pub require_signature: bool,
    /// Waive the "new commit must be strictly newer than the current one" check for this rule.
    #[arg(long)]
    pub no_timestamp_check: bool,
    /// 1-based position; rules at or after it move down. Default: last.
    #[arg(long)]
    pub position: Option<i64>,
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GpgKeyCmd {
    /// Trust the public key(s) in FILE (ASCII-armored or binary) for REPO.
    Add {
        repo: String,
        file: PathBuf,
    },
    List {
        repo: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    Remove {
        repo: String,
        fingerprint: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Print the decision for one update and the trace of every rule looked at.
    Explain(ExplainArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SignatureArg {
    Valid,
    Unsigned,
    Untrusted,
    Expired,
    Revoked,
    Invalid,
    Unchecked,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub repo: String,
    #[arg(long = "ref")]
    pub ref_name: String,
    /// create, update (fast-forward), force (non-fast-forward) or delete.
    #[arg(long)]
    pub op: String,
    /// Signature status to assume for the new commit.
    #[arg(long, value_enum, default_value = "unchecked")]
    pub signature: SignatureArg,
    /// Timestamps (unix seconds) of the current and the new commit, for the newer-than check.
    #[arg(long)]
    pub old_timestamp: Option<u64>,
    #[arg(long)]
    pub new_timestamp: Option<u64>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub repo: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    /// RFC 3339 time, a date (YYYY-MM-DD), or an age such as 30m, 12h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Show admin changes (who changed users, keys, teams, repos, rules, GPG keys) instead of
    /// ref updates.
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides the config's server.listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}
