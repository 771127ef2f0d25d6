//! Writing one summary (and its signature) and one static delta, through libostree.

use std::path::{Path, PathBuf};

use ostree::{gio, glib};

use crate::config::RepoConfig;

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
