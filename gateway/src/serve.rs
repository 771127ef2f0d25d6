//! `ostree-gateway serve`: logging, crash recovery at startup, signals, then the SSH server.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::ServeArgs;
use crate::config::{Config, LogFormat};
use crate::receive::{locks::RepoLocks, staging};
use crate::server::{self, Shared};
use crate::state::StateDir;
use crate::store::repos::Repo;
use crate::store::{audit, Store};
use crate::summary::{needs_repair, Job, Repair, Summaries};

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Startup crash recovery: a previous process may have died mid-push, or left a summary
/// unsigned after a signing failure.
pub async fn recover(store: &Store, state: &StateDir, summaries: &Summaries) -> anyhow::Result<()> {
    let mut conn = store.conn().await?;
    let failed = audit::recover_in_progress(&mut conn).await?;
    if failed > 0 {
        tracing::warn!(
            rows = failed,
            "marked audit rows left in progress by a previous run as failed"
        );
    }
    let repos = crate::store::repos::list(&mut conn).await?;
    for repo in repos {
        repair_summary(state, summaries, &repo).await;
    }
    let root = state.repos_root.clone();
    let removed = tokio::task::spawn_blocking(move || staging::clean_stale(&root)).await??;
    if removed > 0 {
        tracing::warn!(dirs = removed, "removed staging repos left by a previous run");
    }
    Ok(())
}

/// Rewrites a stale or unsigned summary; a failure is logged (and retried by the worker).
async fn repair_summary(state: &StateDir, summaries: &Summaries, repo: &Repo) {
    let job = Job::new(
        repo.id,
        std::path::Path::new(&repo.path),
        summaries.config().repos.get(&repo.name),
        &state.root,
    );
    let repair = match tokio::task::spawn_blocking(move || needs_repair(&job)).await {
        Ok(Ok(Some(repair))) => repair,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => return tracing::error!(repo = %repo.name, error = %e, "cannot check the summary"),
        Err(e) => return tracing::error!(repo = %repo.name, error = %e, "cannot check the summary"),
    };
    match (summaries.repair(repo).await, repair) {
        (Ok(()), Repair::Stale) => {
            tracing::warn!(repo = %repo.name, "summary was stale (interrupted push): regenerated")
        }
        (Ok(()), Repair::Unsigned) => tracing::warn!(
            repo = %repo.name,
            "summary was not signed by the configured key: re-signed"
        ),
        // The worker logged the error and retries.
        (Err(_), _) => tracing::error!(repo = %repo.name, ?repair, "cannot repair the summary at startup"),
    }
}

/// Runs the server. `config_path` is what `--config` named (re-read on SIGHUP).
pub async fn run(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    state: StateDir,
    store: Store,
    args: ServeArgs,
) -> anyhow::Result<()> {
    init_logging(&config);
    let listen = args.listen.unwrap_or(config.server.listen);
    let metrics = config.metrics.listen;
    let config_slot = tokio::sync::watch::Sender::new(Arc::new(config));
    let repo_locks = Arc::new(RepoLocks::default());
    let summaries = Summaries::new(config_slot.subscribe(), state.root.clone(), repo_locks.clone());
    recover(&store, &state, &summaries).await?;
    if let Some(metrics) = metrics {
        crate::metrics::serve(metrics).await?;
    }
    let shared = Arc::new(Shared {
        store,
        state,
        config_slot,
        config_path: config_path.clone(),
        repo_locks,
        summaries,
        sessions: Default::default(),
        receives: TaskTracker::new(),
        abort: CancellationToken::new(),
    });
    let mut hup = signal(SignalKind::hangup())?;
    let reloading = shared.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // Limits, hooks and per-repo settings apply to sessions and pushes from now on;
            // the listen address, host keys and state dir need a restart.
            match Config::discover(config_path.as_deref()) {
                Ok(config) => {
                    crate::sd_notify::notify("RELOADING=1");
                    reloading.replace_config(config);
                    crate::sd_notify::notify("READY=1");
                    tracing::info!("SIGHUP: configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: configuration NOT reloaded, keeping the old one")
                }
            }
        }
    });
    let stop = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        stopper.cancel();
    });
    server::serve(shared, listen, stop).await
}
