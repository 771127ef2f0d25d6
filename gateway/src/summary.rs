//! Summary regeneration, coalesced per repo: pushes that finish close together share one
//! regeneration (each still waits until a summary that includes its refs is written), signed
//! with the repo's configured GPG key; static deltas are generated off the push's path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ostree::{gio, glib};
use tokio::sync::{mpsc, oneshot};

use crate::config::RepoConfig;

type Waiter = oneshot::Sender<Result<(), String>>;

/// What one regeneration needs to know about a repo.
#[derive(Clone)]
pub struct Job {
    pub repo_id: i64,
    pub path: PathBuf,
    pub sign_key: Option<String>,
    pub gpg_homedir: PathBuf,
}

impl Job {
    pub fn new(repo_id: i64, path: &Path, config: Option<&RepoConfig>, state_dir: &Path) -> Job {
        Job {
            repo_id,
            path: path.to_path_buf(),
            sign_key: config.and_then(|c| c.summary_gpg_key.clone()),
            gpg_homedir: config
                .and_then(|c| c.gpg_homedir.clone())
                .unwrap_or_else(|| state_dir.join("gnupg")),
        }
    }
}

/// One coalescing worker per repo, started on first use.
#[derive(Default)]
pub struct Summaries {
    workers: Mutex<HashMap<i64, mpsc::UnboundedSender<(Job, Waiter)>>>,
}

impl Summaries {
    /// Regenerates (and signs) the summary, sharing the work with pushes finishing within
    /// `coalesce`; returns when a summary written after this call began is in place.
    pub async fn regenerate(
        &self,
        job: Job,
        coalesce: Duration,
        lock: Arc<crate::receive::locks::RepoLocks>,
    ) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let sender = {
            let mut workers = self.workers.lock().expect("summaries lock");
            workers
                .entry(job.repo_id)
                .or_insert_with(|| {
                    let (sender, queue) = mpsc::unbounded_channel();
                    tokio::spawn(worker(queue, coalesce, lock));
                    sender
                })
                .clone()
        };
        sender
            .send((job, tx))
            .map_err(|_| "summary worker stopped".to_string())?;
        rx.await.map_err(|_| "summary worker stopped".to_string())?
    }
}

async fn worker(
    mut queue: mpsc::UnboundedReceiver<(Job, Waiter)>,
    coalesce: Duration,
    locks: Arc<crate::receive::locks::RepoLocks>,
) {
    while let Some(first) = queue.recv().await {
        tokio::time::sleep(coalesce).await;
        let mut waiters = vec![first.1];
        let mut job = first.0;
        while let Ok((later, waiter)) = queue.try_recv() {
            job = later; // the newest settings win
            waiters.push(waiter);
        }
        let result = {
            let _guard = locks.lock(job.repo_id).await;
            let job = job.clone();
            match tokio::task::spawn_blocking(move || write_summary(&job)).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        if let Err(e) = &result {
            tracing::error!(repo = %job.path.display(), error = %e, "summary regeneration failed");
        }
        tracing::debug!(repo = %job.path.display(), pushes = waiters.len(), "summary regenerated");
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

/// Writes the summary and, when a key is configured, its signature.
pub fn write_summary(job: &Job) -> Result<(), glib::Error> {
    let repo = ostree::Repo::new_for_path(&job.path);
    repo.open(gio::Cancellable::NONE)?;
    repo.regenerate_summary(None, gio::Cancellable::NONE)?;
    if let Some(key) = &job.sign_key {
        let homedir = job.gpg_homedir.to_string_lossy();
        repo.add_gpg_signature_summary(&[key.as_str()], Some(&homedir), gio::Cancellable::NONE)?;
    }
    Ok(())
}

/// Generates a static delta `from` → `to` (both commits present in the repo).
pub fn generate_delta(path: &Path, from: &str, to: &str) -> Result<(), glib::Error> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE)?;
    // libostree 2022.7 crashes on a NULL params dictionary: pass an empty one.
    let params = glib::VariantDict::new(None).end();
    repo.static_delta_generate(
        ostree::StaticDeltaGenerateOpt::Major,
        Some(from),
        to,
        None,
        Some(&params),
        gio::Cancellable::NONE,
    )
}
