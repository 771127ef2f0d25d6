//! In-process per-repo locks: ref compare-and-swap and import for one repo run one at a time
//! within the gateway (libostree's exclusive repo lock covers other processes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct RepoLocks {
    locks: Mutex<HashMap<i64, Arc<AsyncMutex<()>>>>,
}

impl RepoLocks {
    pub async fn lock(&self, repo_id: i64) -> OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("repo locks")
            .entry(repo_id)
            .or_default()
            .clone();
        lock.lock_owned().await
    }
}
