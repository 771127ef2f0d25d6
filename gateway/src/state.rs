//! The state directory: database, host keys, repos root, and per-push staging.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
    pub repos_root: PathBuf,
}

impl StateDir {
    /// Creates the layout if missing. `repos_root` comes from the config or defaults inside.
    pub fn prepare(root: &Path, config: &Config) -> anyhow::Result<StateDir> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create state dir {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve state dir {}", root.display()))?;
        let repos_root = config.repos_root.clone().unwrap_or_else(|| root.join("repos"));
        std::fs::create_dir_all(&repos_root)
            .with_context(|| format!("cannot create repos root {}", repos_root.display()))?;
        let repos_root = repos_root.canonicalize()?;
        Ok(StateDir { root, repos_root })
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("gateway.db")
    }

    pub fn host_key_dir(&self) -> PathBuf {
        self.root.join("host_keys")
    }
}
