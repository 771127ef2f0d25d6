//! Summary regeneration, coalesced per repo: pushes that finish close together share one
//! regeneration (each still waits until a summary that includes its refs is written), signed
//! with the repo's configured GPG key; a failed one is retried with backoff. Static deltas are
//! generated off the push's path.

mod check;
mod write;

pub use check::{needs_repair, Repair};
pub use write::{generate_delta, write_summary, Job};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::Config;
use crate::receive::locks::RepoLocks;
use crate::store::repos::Repo;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Delays before the retries after a failed regeneration; then the worker gives up until the
/// next request. A summary left unsigned by a broken GnuPG home is re-signed soon after the
/// home is fixed, without a push.
const RETRY_DELAYS_SECS: [u64; 7] = [1, 2, 4, 8, 16, 32, 60];

struct Request {
    waiter: Waiter,
    /// Pushes wait `coalesce_ms` to share the work; startup repairs do not.
    coalesce: bool,
}

/// One coalescing worker per repo, started on first use. Workers read the current
/// configuration (swapped on SIGHUP) at every regeneration, so a reload applies at once.
pub struct Summaries {
    config: watch::Receiver<Arc<Config>>,
    /// For the default signing home, `<state_dir>/gnupg`.
    state_root: PathBuf,
    locks: Arc<RepoLocks>,
    workers: Mutex<HashMap<i64, mpsc::UnboundedSender<Request>>>,
}

impl Summaries {
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        state_root: PathBuf,
        locks: Arc<RepoLocks>,
    ) -> Summaries {
        Summaries {
            config,
            state_root,
            locks,
            workers: Mutex::default(),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Regenerates (and signs) `repo`'s summary, sharing the work with pushes finishing within
    /// `[summary] coalesce_ms`; returns when a summary written after this call began is in place.
    pub async fn regenerate(&self, repo: &Repo) -> Result<(), String> {
        self.request(repo, true).await
    }

    /// Regenerates at once (no coalescing wait): the startup repair of a stale or unsigned
    /// summary. A failure is retried in the background like any other.
    pub async fn repair(&self, repo: &Repo) -> Result<(), String> {
        self.request(repo, false).await
    }

    async fn request(&self, repo: &Repo, coalesce: bool) -> Result<(), String> {
        let (waiter, rx) = oneshot::channel();
        let sender = {
            let mut workers = self.workers.lock().expect("summaries lock");
            workers
                .entry(repo.id)
                .or_insert_with(|| {
                    let (sender, queue) = mpsc::unbounded_channel();
                    let worker = Worker {
                        repo: repo.clone(),
                        config: self.config.clone(),
                        state_root: self.state_root.clone(),
                        locks: self.locks.clone(),
                    };
                    tokio::spawn(worker.run(queue));
                    sender
                })
                .clone()
        };
        sender
            .send(Request { waiter, coalesce })
            .map_err(|_| "summary worker stopped".to_string())?;
        rx.await.map_err(|_| "summary worker stopped".to_string())?
    }
}

struct Worker {
    repo: Repo,
    config: watch::Receiver<Arc<Config>>,
    state_root: PathBuf,
    locks: Arc<RepoLocks>,
}

impl Worker {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Request>) {
        // After a failure: the index of the next retry in RETRY_DELAYS_SECS, and when it is due.
        let mut retry: Option<(usize, Instant)> = None;
        loop {
            let first = tokio::select! {
                request = queue.recv() => match request {
                    Some(request) => Some(request),
                    None => return,
                },
                _ = due(retry.map(|(_, at)| at)) => None,
            };
            let mut waiters = Vec::new();
            if let Some(first) = &first {
                if first.coalesce {
                    self.coalesce().await;
                }
            }
            waiters.extend(first.map(|r| r.waiter));
            let retrying = waiters.is_empty();
            while let Ok(later) = queue.try_recv() {
                waiters.push(later.waiter);
            }
            let result = self.write().await;
            retry = match &result {
                Ok(()) => {
                    if retry.is_some() {
                        tracing::info!(repo = %self.repo.name, "summary regenerated after an earlier failure");
                    }
                    None
                }
                Err(e) => {
                    // A request starts a new series of retries; a retry moves on to the next delay.
                    let next = match retry {
                        Some((n, _)) if retrying => n + 1,
                        _ => 0,
                    };
                    self.failed(e, next)
                }
            };
            tracing::debug!(repo = %self.repo.name, pushes = waiters.len(), "summary regenerated");
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
    }

    /// Logs a failed regeneration; schedules retry number `next`, if any is left.
    fn failed(&self, error: &str, next: usize) -> Option<(usize, Instant)> {
        match RETRY_DELAYS_SECS.get(next) {
            Some(&secs) => {
                tracing::error!(repo = %self.repo.name, error, retry_in_secs = secs, "summary regeneration failed");
                Some((next, Instant::now() + Duration::from_secs(secs)))
            }
            None => {
                tracing::error!(
                    repo = %self.repo.name,
                    error,
                    "summary regeneration failed; no more retries until the next push or restart"
                );
                None
            }
        }
    }

    /// Waits `coalesce_ms` from now, as currently configured: a reload during the wait
    /// shortens or lengthens it.
    async fn coalesce(&mut self) {
        let start = Instant::now();
        loop {
            let wait = Duration::from_millis(self.config.borrow_and_update().summary.coalesce_ms);
            tracing::debug!(repo = %self.repo.name, coalesce_ms = wait.as_millis() as u64, "summary: coalescing");
            tokio::select! {
                _ = tokio::time::sleep_until(start + wait) => return,
                changed = self.config.changed() => {
                    if changed.is_err() {
                        // No more reloads (shutting down): finish the wait as it stands.
                        tokio::time::sleep_until(start + wait).await;
                        return;
                    }
                }
            }
        }
    }

    /// One regeneration under the repo lock, with the repo's current settings.
    async fn write(&self) -> Result<(), String> {
        let job = Job::new(
            self.repo.id,
            std::path::Path::new(&self.repo.path),
            self.config.borrow().repos.get(&self.repo.name),
            &self.state_root,
        );
        let _guard = self.locks.lock(job.repo_id).await;
        match tokio::task::spawn_blocking(move || write_summary(&job)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Sleeps until `at`; forever when there is nothing to wait for.
async fn due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
