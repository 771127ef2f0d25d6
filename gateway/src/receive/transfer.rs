//! Phase "transfer": bring the objects of every new commit that the target lacks into the
//! push's staging repo, each one verified. Tunnel path: libostree's pull by checksum through
//! the session's forward, UNTRUSTED (checksums of all objects verified).

use std::sync::Arc;
use std::time::Duration;

use ostree::gio::prelude::*;
use ostree::{gio, glib};
use tokio_util::sync::CancellationToken;

use super::staging::{pull_options, Staging};
use super::ReceiveError;
use crate::server::reporter::Reporter;

/// libostree documents OstreeAsyncProgress as thread-safe (its state is behind a mutex); the
/// Rust binding does not mark it so. We only read counters from the async side.
struct SharedProgress(ostree::AsyncProgress);
unsafe impl Send for SharedProgress {}
unsafe impl Sync for SharedProgress {}

/// Pulls `commits` from `url` into `staging`, reporting progress until done.
pub async fn pull_tunnel(
    staging: &Staging,
    url: String,
    commits: Vec<String>,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<(), ReceiveError> {
    let (progress_tx, progress_rx) = std::sync::mpsc::channel::<Arc<SharedProgress>>();
    let cancellable = gio::Cancellable::new();
    let path = staging.path.clone();
    let pull = {
        let cancellable = cancellable.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ReceiveError> {
            // A main context of our own: libostree's pull and the progress object attach their
            // sources to the thread-default context, and the global default one is shared by
            // every blocking thread (a stale source from another pull deadlocked there).
            let context = glib::MainContext::new();
            context
                .with_thread_default(|| -> Result<(), ReceiveError> {
                    let progress = Arc::new(SharedProgress(ostree::AsyncProgress::new()));
                    let _ = progress_tx.send(progress.clone());
                    let repo = ostree::Repo::new_for_path(&path);
                    repo.open(gio::Cancellable::NONE)?;
                    repo.set_disable_fsync(true);
                    let remote_options = glib::VariantDict::new(None);
                    remote_options.insert("gpg-verify", false);
                    remote_options.insert("gpg-verify-summary", false);
                    repo.remote_change(
                        None::<&gio::File>,
                        ostree::RepoRemoteChange::Add,
                        "pusher",
                        Some(&url),
                        Some(&remote_options.end()),
                        gio::Cancellable::NONE,
                    )?;
                    let result = repo.pull_with_options(
                        "pusher",
                        &pull_options(&commits),
                        Some(&progress.0),
                        Some(&cancellable),
                    );
                    progress.0.finish();
                    result?;
                    Ok(())
                })
                .map_err(|e| ReceiveError::Source(format!("cannot use a main context: {e}")))?
        })
    };
    let progress = match tokio::task::spawn_blocking(move || progress_rx.recv()).await? {
        Ok(progress) => progress,
        Err(_) => return pull.await?,
    };
    tokio::pin!(pull);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let mut last = (0, 0);
    loop {
        tokio::select! {
            result = &mut pull => {
                let fetched = progress.0.uint("fetched");
                crate::metrics::METRICS.received(u64::from(fetched), progress.0.uint64("bytes-transferred"));
                if fetched > 0 {
                    reporter.info(&format!("Receiving objects: {fetched}/{fetched}, done.")).await;
                }
                return result?;
            }
            _ = cancel.cancelled() => {
                cancellable.cancel();
                let _ = (&mut pull).await;
                return Err(ReceiveError::Aborted);
            }
            _ = ticker.tick() => {
                let now = (progress.0.uint("fetched"), progress.0.uint("requested"));
                if now != last && now.1 > 0 {
                    reporter.info(&format!("Receiving objects: {}/{}", now.0, now.1)).await;
                    last = now;
                }
            }
        }
    }
}
