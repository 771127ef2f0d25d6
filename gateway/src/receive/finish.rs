//! The phases after the transfer, shared by the tunnel and native paths: completeness proof,
//! locked compare-and-swap + import + ref move, audit settlement and the summary.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::staging::Staging;
use super::update::{self, RefMove};
use super::{audit, repo_mode, short, ReceiveError, RefUpdate};
use crate::server::reporter::Reporter;
use crate::server::Shared;
use crate::store::audit::State;
use crate::store::repos::Repo;

/// A fresh staging repo for this push, beside the target (same filesystem: hardlinks).
pub async fn create_staging(
    shared: &Arc<Shared>,
    repo: &Repo,
    push_id: &str,
) -> Result<Staging, ReceiveError> {
    let (root, id, target, mode) = (
        shared.state.repos_root.clone(),
        push_id.to_string(),
        PathBuf::from(&repo.path),
        repo_mode(repo),
    );
    tokio::task::spawn_blocking(move || Staging::create(&root, &id, &target, mode)).await?
}

/// Proves the staged push complete, then (unless a dry run) moves the refs under the locks.
/// The staging repo is removed in every case.
pub async fn prove_and_apply(
    shared: &Arc<Shared>,
    repo: &Repo,
    staging: Staging,
    updates: &[RefUpdate],
    dry_run: bool,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<(), ReceiveError> {
    let staging = Arc::new(staging);
    let result = prove_and_apply_inner(shared, repo, &staging, updates, dry_run, reporter, cancel).await;
    let staging = Arc::try_unwrap(staging).ok();
    tokio::task::spawn_blocking(move || drop(staging)).await?;
    result
}

async fn prove_and_apply_inner(
    shared: &Arc<Shared>,
    repo: &Repo,
    staging: &Arc<Staging>,
    updates: &[RefUpdate],
    dry_run: bool,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<(), ReceiveError> {
    let commits: Vec<String> = updates.iter().filter_map(|u| u.new.clone()).collect();
    let checked = {
        let staging = staging.clone();
        tokio::task::spawn_blocking(move || staging.prove_complete(&commits)).await??
    };
    reporter
        .verbose(&format!("verified: all {checked} reachable objects present"))
        .await;
    if cancel.is_cancelled() {
        return Err(ReceiveError::Aborted);
    }
    if dry_run {
        return Ok(());
    }
    let moves: Vec<RefMove> = updates
        .iter()
        .map(|u| RefMove {
            name: u.name.clone(),
            expected: u.old.clone(),
            new: u.new.clone(),
        })
        .collect();
    let _guard = shared.repo_locks.lock(repo.id).await;
    if cancel.is_cancelled() {
        return Err(ReceiveError::Aborted);
    }
    super::testhook::pause(&shared.state.root, "before-update").await;
    let target = PathBuf::from(&repo.path);
    let stats = {
        let staging = staging.clone();
        tokio::task::spawn_blocking(move || update::apply(&target, Some(&staging), &moves)).await??
    };
    reporter
        .verbose(&format!("imported {} objects", stats.objects))
        .await;
    Ok(())
}

/// Settles the audit rows of a push that went through, then regenerates the summary.
/// A summary failure is reported but does not undo the push.
pub async fn settle_and_summarize(
    shared: &Arc<Shared>,
    repo: &Repo,
    updates: &[RefUpdate],
    dry_run: bool,
    no_update: bool,
    reporter: &Reporter,
) {
    if dry_run {
        audit::settle(
            &shared.store,
            updates,
            State::Rejected,
            Some("dry run (-n): no ref moved"),
        )
        .await;
        return;
    }
    audit::settle(&shared.store, updates, State::Accepted, None).await;
    if no_update {
        return;
    }
    let path = PathBuf::from(&repo.path);
    let _guard = shared.repo_locks.lock(repo.id).await;
    super::testhook::pause(&shared.state.root, "summary").await;
    match tokio::task::spawn_blocking(move || update::regenerate_summary(&path)).await {
        Ok(Ok(())) => reporter.verbose("summary updated").await,
        Ok(Err(e)) => {
            reporter
                .line(&format!(
                    "warning: refs updated but the summary could not be regenerated: {e}"
                ))
                .await
        }
        Err(e) => {
            reporter
                .line(&format!("warning: summary regeneration failed: {e}"))
                .await
        }
    }
}

pub fn status_of(u: &RefUpdate, dry_run: bool) -> wire::Status {
    match (dry_run, u.op) {
        (true, _) => wire::Status::DryRun,
        (_, Some(policy::Op::Create)) => wire::Status::Created,
        (_, Some(policy::Op::Delete)) => wire::Status::Deleted,
        (_, Some(policy::Op::Force)) => wire::Status::ForceUpdated,
        _ => wire::Status::Updated,
    }
}

/// The human result line for a ref that went through.
pub fn result_line(u: &RefUpdate, dry_run: bool) -> String {
    let (old, new) = (short(&u.old), short(&u.new));
    match status_of(u, dry_run) {
        wire::Status::DryRun => {
            let verb = match u.op {
                Some(policy::Op::Create) => "create",
                Some(policy::Op::Delete) => "delete",
                Some(policy::Op::Force) => "force-update",
                _ => "update",
            };
            format!("{}: would {verb} {old} → {new} (dry run)", u.name)
        }
        wire::Status::Created => format!("{}: created {old} → {new}", u.name),
        wire::Status::Deleted => format!("{}: deleted {old} → {new}", u.name),
        wire::Status::ForceUpdated => format!("{}: force-updated {old} → {new}", u.name),
        _ => format!("{}: updated {old} → {new}", u.name),
    }
}
