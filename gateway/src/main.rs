use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ostree_gateway::admin::{self, Admin};
use ostree_gateway::cli::{Cli, Command};
use ostree_gateway::config::{Config, DEFAULT_STATE_DIR};
use ostree_gateway::state::StateDir;
use ostree_gateway::store::Store;

fn main() -> ExitCode {
    // glibc gives threads that allocate arenas of their own and rarely returns their memory;
    // allocator retention was part of the peak RSS under 32 concurrent pushes
    // (docs/PERFORMANCE.md). Two arenas serve the two cores we size for.
    // SAFETY: mallopt before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // clap exits with status 2 on usage errors by itself.
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // Admin output piped into `head` ends quietly, as other Unix tools do. (Not for the
        // server, whose sockets must never kill it.)
        // SAFETY: resetting a signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error chain on one line, without repeating a cause already in its parent's text.
fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text.replace('\n', " ")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::discover(cli.config.as_deref())?;
    let state_root = cli
        .state_dir
        .clone()
        .or_else(|| config.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let state = StateDir::prepare(&state_root, &config)?;
    let store = Store::open(&state.database()).await?;
    let admin = Admin {
        store: store.clone(),
        state,
    };
    let audited = admin::is_change(&cli.command);
    let result = match cli.command {
        Command::User(cmd) => admin::user::run(&admin, cmd).await,
        Command::Key(cmd) => admin::key::run(&admin, cmd).await,
        Command::Team(cmd) => admin::team::run(&admin, cmd).await,
        Command::Repo(cmd) => admin::repo::run(&admin, cmd).await,
        Command::Rule(cmd) => admin::rule::run(&admin, cmd).await,
        Command::GpgKey(cmd) => admin::gpg_key::run(&admin, cmd).await,
        Command::Policy(cmd) => admin::policy::run(&admin, cmd).await,
        Command::Audit(args) => admin::audit::run(&admin, args).await,
        Command::Serve(args) => {
            ostree_gateway::serve::run(config, cli.config.clone(), admin.state, store.clone(), args).await
        }
    };
    if audited {
        admin::record_change(&store, &admin::command_words(), &result).await;
    }
    store.close().await;
    result
}
