//! The startup check of a repo's summary: a crash between a ref move and the regeneration
//! leaves it stale, a failed signing leaves it unsigned (libostree removes `summary.sig` when it
//! writes a summary). Either way `serve` rewrites it before accepting pushes.

use std::time::SystemTime;

use super::Job;

/// What is wrong with a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// It does not list exactly the repo's refs.
    Stale,
    /// A signing key is configured, but `summary.sig` is missing, older than the summary, or
    /// holds no good signature by that key.
    Unsigned,
}

/// What is wrong with `job`'s summary, if anything.
pub fn needs_repair(job: &Job) -> anyhow::Result<Option<Repair>> {
    let path = job.path.as_path();
    let repo = ostree::Repo::new_for_path(path);
    repo.open(ostree::gio::Cancellable::NONE)?;
    let mut refs: Vec<(String, String)> = repo
        .list_refs(None, ostree::gio::Cancellable::NONE)?
        .into_iter()
        .collect();
    refs.sort();
    let summary = match std::fs::read(path.join("summary")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((!refs.is_empty()).then_some(Repair::Stale));
        }
        Err(e) => return Err(e.into()),
    };
    let mut listed = crate::receive::source::parse_summary_refs(&summary).unwrap_or_default();
    listed.sort();
    if listed != refs {
        return Ok(Some(Repair::Stale));
    }
    match &job.sign_key {
        Some(key) if !signed(job, key, &summary) => Ok(Some(Repair::Unsigned)),
        _ => Ok(None),
    }
}

/// Whether `summary.sig` is at least as new as the summary and signs it with `key`.
fn signed(job: &Job, key: &str, summary: &[u8]) -> bool {
    let modified =
        |name: &str| -> Option<SystemTime> { std::fs::metadata(job.path.join(name)).ok()?.modified().ok() };
    match (modified("summary"), modified("summary.sig")) {
        (Some(summary_time), Some(sig_time)) if sig_time >= summary_time => {}
        _ => return false,
    }
    let Ok(signatures) = std::fs::read(job.path.join("summary.sig")) else {
        return false;
    };
    match crate::gpg::summary_signed_by(&job.gpg_homedir, key, summary, &signatures) {
        Ok(good) => good,
        Err(e) => {
            tracing::warn!(repo = %job.path.display(), error = %e, "cannot check the summary signature");
            false
        }
    }
}
