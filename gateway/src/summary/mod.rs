//! Summary regeneration, coalesced per repo: pushes that finish close together share one
//! regeneration (each still waits until a summary that includes its refs is written), signed
//! with the repo's configured GPG key; static deltas are generated off the push's path.

mod write;

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

/// One coalescing worker per repo, started on first use. Workers read the current
/// configuration (swapped on SIGHUP) at every regeneration, so a reload applies at once.
pub struct Summaries {
    config: watch::Receiver<Arc<Config>>,
    /// For the default signing home, `<state_dir>/gnupg`.
    state_root: PathBuf,
    locks: Arc<RepoLocks>,
    workers: Mutex<HashMap<i64, mpsc::UnboundedSender<Waiter>>>,
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

    /// Regenerates (and signs) `repo`'s summary, sharing the work with pushes finishing within
    /// `[summary] coalesce_ms`; returns when a summary written after this call began is in place.
    pub async fn regenerate(&self, repo: &Repo) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
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
            .send(tx)
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
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Waiter>) {
        while let Some(first) = queue.recv().await {
            self.coalesce().await;
            let mut waiters = vec![first];
            while let Ok(waiter) = queue.try_recv() {
                waiters.push(waiter);
            }
            let result = self.write().await;
            if let Err(e) = &result {
                tracing::error!(repo = %self.repo.name, error = %e, "summary regeneration failed");
            }
            tracing::debug!(repo = %self.repo.name, pushes = waiters.len(), "summary regenerated");
            for waiter in waiters {
                let _ = waiter.send(result.clone());
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
