//! The embedded SSH server: accepts connections, enforces session limits, and shuts down
//! gracefully (running receives get `shutdown_grace_secs`, then are aborted with no ref moved).

pub mod deadline;
pub mod forward;
pub mod handler;
pub mod host_keys;
pub mod limits;
pub mod remote_admin;
pub mod reporter;
pub mod team_admin;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::receive::locks::RepoLocks;
use crate::state::StateDir;
use crate::store::Store;

/// What every session shares.
pub struct Shared {
    pub store: Store,
    pub state: StateDir,
    /// Replaced as a whole on SIGHUP; readers take a snapshot with [`Shared::config`], the
    /// summary workers also watch it for changes.
    pub config_slot: tokio::sync::watch::Sender<Arc<Config>>,
    /// The config file the server was started with (for SIGHUP and remote admin commands).
    pub config_path: Option<std::path::PathBuf>,
    pub repo_locks: Arc<RepoLocks>,
    /// Coalesced, signed summary regeneration per repo.
    pub summaries: crate::summary::Summaries,
    pub sessions: limits::SessionLimits,
    /// Running receives; waited for on shutdown.
    pub receives: TaskTracker,
    /// Cancelled when the grace period after SIGTERM/SIGINT is over: receives abort.
    pub abort: CancellationToken,
}

impl Shared {
    /// The current configuration (a cheap snapshot: one push sees one config throughout).
    pub fn config(&self) -> Arc<Config> {
        self.config_slot.borrow().clone()
    }

    /// Swaps in a reloaded configuration for everything that starts from now on.
    pub fn replace_config(&self, config: Config) {
        self.config_slot.send_replace(Arc::new(config));
    }
}

/// Runs the server until `stop` is cancelled (by a signal, or a test).
pub async fn serve(shared: Arc<Shared>, listen: SocketAddr, stop: CancellationToken) -> anyhow::Result<()> {
    let keys = host_keys::load(&shared.config().server.host_keys, &shared.state.host_key_dir())?;
    let ssh_config = Arc::new(ssh_config(&shared.config(), keys));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts wait for this exact line to learn the port.
    tracing::info!(%local, "listening");
    println!("ostree-gateway listening on {local}");
    crate::sd_notify::notify("READY=1");

    let connections = TaskTracker::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(slot) = shared.sessions.connection(shared.config().server.max_sessions) else {
                    tracing::warn!(%peer, "too many sessions: connection refused");
                    drop(socket);
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let authenticated = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let handler = handler::SessionHandler::new(shared.clone(), peer, slot, authenticated.clone());
                let auth_timeout = Duration::from_secs(shared.config().server.auth_timeout_secs);
                let ssh_config = ssh_config.clone();
                let stop = stop.clone();
                connections.spawn(async move {
                    // run_stream waits for the client's version line: bound that wait too.
                    let socket = deadline::AuthDeadline::new(socket, authenticated.clone(), auth_timeout);
                    let started = tokio::time::timeout(auth_timeout, russh::server::run_stream(ssh_config, socket, handler));
                    let Ok(started) = started.await else {
                        tracing::info!(%peer, "no SSH handshake within the authentication timeout");
                        return;
                    };
                    match started {
                        Ok(session) => {
                            let handle = session.handle();

                            tokio::select! {
                                result = session => {
                                    if let Err(e) = result {
                                        tracing::debug!(%peer, error = %e, "session ended with an error");
                                    }
                                }
                                _ = stop.cancelled() => {
                                    // Let a running receive finish within the grace period.
                                    let _ = handle;
                                }
                            }
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "handshake failed"),
                    }
                });
            }
        }
    }
    drop(listener);
    crate::sd_notify::notify("STOPPING=1");
    tracing::info!("stopped accepting connections; waiting for running receives");
    shared.receives.close();
    let grace = Duration::from_secs(shared.config().server.shutdown_grace_secs);
    if tokio::time::timeout(grace, shared.receives.wait()).await.is_err() {
        tracing::warn!("grace period over: aborting running receives (no ref will move)");
        shared.abort.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), shared.receives.wait()).await;
    }
    tracing::info!("shut down");
    Ok(())
}

fn ssh_config(config: &Config, keys: Vec<russh::keys::PrivateKey>) -> russh::server::Config {
    let server = &config.server;
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-ostree-gateway_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        inactivity_timeout: Some(Duration::from_secs(server.idle_timeout_secs)),
        keepalive_interval: Some(Duration::from_secs(30)),
        window_size: 8 << 20,
        maximum_packet_size: 65535,
        max_auth_attempts: 6,
        nodelay: true,
        ..Default::default()
    }
}
