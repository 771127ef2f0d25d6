//! Admin commands, one module per command group. Each takes the opened store and state dir.

pub mod audit;
pub mod gpg_key;
pub mod key;
pub mod output;
pub mod policy;
pub mod repo;
pub mod rule;
pub mod team;
pub mod user;

use crate::state::StateDir;
use crate::store::Store;

/// What every admin command works on.
pub struct Admin {
    pub store: Store,
    pub state: StateDir,
}

/// Environment the gateway sets when it runs an admin command for a remote admin.
pub const ACTOR_ENV: &str = "OSTREE_GATEWAY_ADMIN_ACTOR";
pub const PEER_ENV: &str = "OSTREE_GATEWAY_ADMIN_PEER";

/// Whether the command changes anything (those are audited; reads are not).
pub fn is_change(command: &crate::cli::Command) -> bool {
    use crate::cli::{Command, GpgKeyCmd, KeyCmd, RepoCmd, RuleCmd, TeamCmd, UserCmd};
    match command {
        Command::User(c) => !matches!(c, UserCmd::List(_) | UserCmd::Show { .. }),
        Command::Key(c) => !matches!(c, KeyCmd::List { .. }),
        Command::Team(c) => !matches!(c, TeamCmd::List(_)),
        Command::Repo(c) => !matches!(c, RepoCmd::List(_) | RepoCmd::Show { .. }),
        Command::Rule(c) => !matches!(c, RuleCmd::List { .. }),
        Command::GpgKey(c) => !matches!(c, GpgKeyCmd::List { .. }),
        Command::Policy(_) | Command::Audit(_) | Command::Serve(_) => false,
    }
}

/// Appends an audit row for an admin change: who (the remote admin, or `local:$USER`), what
/// (the command line), when, and whether it worked.
pub async fn record_change(store: &Store, words: &[String], result: &anyhow::Result<()>) {
    use crate::store::audit::{self, NewEntry, State};
    let actor = std::env::var(ACTOR_ENV).unwrap_or_else(|_| {
        let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"));
        // SAFETY: getuid cannot fail.
        format!(
            "local:{}",
            who.unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
        )
    });
    let (state, reason) = match result {
        Ok(()) => (State::Accepted, None),
        Err(e) => (State::Failed, Some(e.to_string())),
    };
    let row = NewEntry {
        user_name: Some(actor),
        peer_addr: std::env::var(PEER_ENV).ok(),
        op: Some(format!("admin: {}", words.join(" "))),
        decision: "allow".into(),
        reason,
        ..Default::default()
    };
    let written = async { audit::append(&mut *store.conn().await?, &row, state).await }.await;
    if let Err(e) = written {
        eprintln!("warning: the change was made but could not be audited: {e}");
    }
}

/// The command words without the global `--config`/`--state-dir` options.
pub fn command_words() -> Vec<String> {
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" || arg == "--state-dir" {
            args.next();
        } else if !(arg.starts_with("--config=") || arg.starts_with("--state-dir=")) {
            words.push(arg);
        }
    }
    words
}
