//! The phases after the transfer, shared by the tunnel and native paths: completeness proof,
//! locked compare-and-swap + import + ref move, audit settlement and the summary.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::staging::Staging;
use super::update::{self, RefMove};
use super::{audit, repo_mode, short, Identity, ReceiveError, RefUpdate};
use crate::hooks::{self, HookInput};
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

/// Who pushes what where: what the shared phases need besides the updates.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub repo: &'a Repo,
    pub identity: &'a Identity,
    pub reporter: &'a Reporter,
    pub cancel: &'a CancellationToken,
}

/// Proves the staged push complete, runs the pre-update hook, then (unless a dry run) moves
/// the refs under the locks. The staging repo is removed in every case.
pub async fn prove_and_apply(
    ctx: &Ctx<'_>,
    staging: Staging,
    updates: &[RefUpdate],
    dry_run: bool,
) -> Result<(), ReceiveError> {
    let staging = Arc::new(staging);
    let result = prove_and_apply_inner(ctx, &staging, updates, dry_run).await;
    // After a success, what is left of the staging repo (its skeleton, and the second names
    // of objects linked into the target) is removed in the background, not while the pusher
    // waits; a crash before that leaves a directory startup removes. After a failure it goes
    // first.
    let staging = Arc::try_unwrap(staging).ok();
    let removal = tokio::task::spawn_blocking(move || drop(staging));
    if result.is_err() {
        removal.await?;
    }
    result
}

async fn prove_and_apply_inner(
    ctx: &Ctx<'_>,
    staging: &Arc<Staging>,
    updates: &[RefUpdate],
    dry_run: bool,
) -> Result<(), ReceiveError> {
    let Ctx {
        shared,
        repo,
        reporter,
        cancel,
        ..
    } = *ctx;
    let pairs: Vec<(String, Option<String>)> = updates
        .iter()
        .filter_map(|u| Some((u.new.clone()?, u.old.clone())))
        .collect();
    let started = std::time::Instant::now();
    let checked = {
        let (staging, target) = (staging.clone(), PathBuf::from(&repo.path));
        tokio::task::spawn_blocking(move || staging.prove_complete(&target, &pairs)).await??
    };
    tracing::debug!(
        checked,
        ms = started.elapsed().as_millis() as u64,
        "completeness proven"
    );
    reporter
        .verbose(&format!(
            "verified: the push is complete ({checked} new objects checked)"
        ))
        .await;
    for u in updates {
        let Some(commit) = &u.commit else { continue };
        let (staging, checksum, checked) =
            (staging.clone(), commit.checksum.clone(), commit.detached.clone());
        let same =
            tokio::task::spawn_blocking(move || staging.detached_matches(&checksum, checked.as_deref()))
                .await??;
        if !same {
            return Err(ReceiveError::Source(format!(
                "commit {}: the detached metadata (signatures) changed during the push",
                commit.checksum
            )));
        }
    }
    if cancel.is_cancelled() {
        return Err(ReceiveError::Aborted);
    }
    if dry_run {
        return Ok(());
    }
    if let Some(hook) = shared
        .config()
        .repos
        .get(&repo.name)
        .and_then(|c| c.pre_update_hook.clone())
    {
        let timeout = shared.config().repos[&repo.name].hook_timeout();
        let input = hook_input(ctx, updates, Some(&staging.path));
        hooks::run(&hook, &input, timeout)
            .await
            .map_err(ReceiveError::Vetoed)?;
        reporter.verbose("pre-update hook accepted the push").await;
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
    super::testhook::pause(&shared.state.root, "before-update").await;
    // The last gate: a client gone or a shutdown deadline passed means no ref moves.
    if cancel.is_cancelled() {
        return Err(ReceiveError::Aborted);
    }
    let target = PathBuf::from(&repo.path);
    let started = std::time::Instant::now();
    let stats = {
        let staging = staging.clone();
        tokio::task::spawn_blocking(move || update::apply(&target, Some(&staging), &moves)).await??
    };
    tracing::debug!(
        objects = stats.objects,
        import_ms = stats.import_ms,
        sync_ms = stats.sync_ms,
        ms = started.elapsed().as_millis() as u64,
        "refs moved"
    );
    reporter
        .verbose(&format!("imported {} objects", stats.objects))
        .await;
    Ok(())
}

/// Settles the audit rows of a push that went through, then regenerates the summary.
/// A summary failure is reported but does not undo the push.
pub async fn settle_and_summarize(ctx: &Ctx<'_>, updates: &[RefUpdate], dry_run: bool, no_update: bool) {
    let Ctx {
        shared,
        repo,
        reporter,
        ..
    } = *ctx;
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
    if !no_update {
        summarize(shared, repo, reporter).await;
        generate_deltas(ctx, updates);
    }
    post_update(ctx, updates);
}

async fn summarize(shared: &Arc<Shared>, repo: &Repo, reporter: &Reporter) {
    super::testhook::pause(&shared.state.root, "summary").await;
    match regenerate_summary(shared, repo).await {
        Ok(()) => reporter.verbose("summary updated").await,
        Err(e) => {
            reporter
                .line(&format!(
                    "warning: refs updated but the summary could not be regenerated: {e}"
                ))
                .await
        }
    }
}

/// Coalesced (and, if configured, signed) summary regeneration for `repo`.
pub async fn regenerate_summary(shared: &Arc<Shared>, repo: &Repo) -> Result<(), String> {
    shared.summaries.regenerate(repo).await
}

/// Static deltas from each moved ref's previous commit, in the background (never on the
/// push's path); the summary is regenerated afterwards so clients find them.
fn generate_deltas(ctx: &Ctx<'_>, updates: &[RefUpdate]) {
    let config = ctx.shared.config();
    if !config.repos.get(&ctx.repo.name).is_some_and(|c| c.static_deltas) {
        return;
    }
    let pairs: Vec<(String, String)> = updates
        .iter()
        .filter_map(|u| Some((u.old.clone()?, u.new.clone()?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let (shared, repo) = (ctx.shared.clone(), ctx.repo.clone());
    ctx.shared.receives.spawn(async move {
        for (from, to) in pairs {
            let path = PathBuf::from(&repo.path);
            let (f, t) = (from.clone(), to.clone());
            match tokio::task::spawn_blocking(move || crate::summary::generate_delta(&path, &f, &t)).await {
                Ok(Ok(())) => tracing::info!(repo = %repo.name, %from, %to, "static delta generated"),
                Ok(Err(e)) => {
                    tracing::warn!(repo = %repo.name, %from, %to, error = %e, "static delta failed")
                }
                Err(e) => tracing::warn!(error = %e, "static delta task failed"),
            }
        }
        if let Err(e) = regenerate_summary(&shared, &repo).await {
            tracing::warn!(repo = %repo.name, error = %e, "summary after deltas failed");
        }
    });
}

fn hook_input<'a>(
    ctx: &'a Ctx<'_>,
    updates: &'a [RefUpdate],
    staging: Option<&'a std::path::Path>,
) -> HookInput<'a> {
    HookInput {
        repo_name: &ctx.repo.name,
        repo_path: std::path::Path::new(&ctx.repo.path),
        staging,
        user: &ctx.identity.user,
        key_fingerprint: &ctx.identity.key_fingerprint,
        updates: updates
            .iter()
            .map(|u| (u.name.as_str(), u.old.as_deref(), u.new.as_deref()))
            .collect(),
    }
}

/// Starts the post-update hook, if any, without holding up the pusher; a failure is logged
/// and written to the audit.
fn post_update(ctx: &Ctx<'_>, updates: &[RefUpdate]) {
    let all = ctx.shared.config();
    let Some(config) = all.repos.get(&ctx.repo.name) else {
        return;
    };
    let Some(hook) = config.post_update_hook.clone() else {
        return;
    };
    let timeout = config.hook_timeout();
    let owned: Vec<(String, Option<String>, Option<String>)> = updates
        .iter()
        .map(|u| (u.name.clone(), u.old.clone(), u.new.clone()))
        .collect();
    let (shared, repo, identity) = (ctx.shared.clone(), ctx.repo.clone(), ctx.identity.clone());
    ctx.shared.receives.spawn(async move {
        let input = HookInput {
            repo_name: &repo.name,
            repo_path: std::path::Path::new(&repo.path),
            staging: None,
            user: &identity.user,
            key_fingerprint: &identity.key_fingerprint,
            updates: owned
                .iter()
                .map(|(r, o, n)| (r.as_str(), o.as_deref(), n.as_deref()))
                .collect(),
        };
        if let Err(reason) = hooks::run(&hook, &input, timeout).await {
            tracing::warn!(repo = %repo.name, %reason, "post-update hook failed");
            audit::hook_failed(&shared.store, &identity, &repo.name, "post-update-hook", &reason).await;
        }
    });
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
