//! The receive pipeline, one module per phase, in the order they run:
//!
//! 1. `request`  — which repo, which refs, which source (a forward of this session)
//! 2. `source`   — resolve the refs on the pusher's side; fetch each new commit (`commit`)
//! 3. `checks`   — classify create/update/force, gather facts, decide with the policy crate
//! 4. `audit`    — one row per ref, before anything is touched
//! 5. `transfer` — objects into a per-push `staging` repo, every one verified
//! 6. `staging`  — completeness proof: every reachable object is staged or in the target
//! 7. `update`   — repo lock + compare-and-swap + import + all refs in one transaction
//! 8. `audit` settle, then the summary
//!
//! Nothing before step 7 changes what the target repo serves.

pub mod audit;
pub mod checks;
pub mod commit;
pub mod filez;
pub mod finish;
pub mod http;
pub mod ingest;
pub mod ingest_pool;
pub mod locks;
pub mod native;
pub mod present;
pub mod request;
pub mod source;
pub mod staging;
pub mod testhook;
pub mod transfer;
pub mod update;
pub mod watchdog;
pub mod writeback;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelReadHalf;
use tokio_util::sync::CancellationToken;

use crate::command::ReceiveArgs;
use crate::server::forward::ForwardPorts;
use crate::server::reporter::Reporter;
use crate::server::Shared;
use crate::store::audit::State;
use crate::store::repos::Repo;
use crate::store::StoreError;
use commit::CommitInfo;
use source::Source;

/// Who is pushing: bound at authentication, after the key's signature was verified.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub user_id: i64,
    pub key_fingerprint: String,
    pub peer: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("repo \"{0}\" not found")]
    UnknownRepo(String),
    #[error("{0}")]
    Request(String),
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error("rejected object {0}")]
    BadObject(String),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("refused by the pre-update hook: {0}")]
    Vetoed(String),
    #[error("incomplete push: {0}")]
    Incomplete(String),
    #[error("ref changed during push: {0} (someone else updated it first; fetch and retry)")]
    RefChanged(String),
    #[error("push aborted (client disconnected or gateway shutting down): no ref moved")]
    Aborted,
    #[error("push timed out: no ref moved")]
    TimedOut,
    #[error("push aborted: {0}; no ref moved")]
    Stalled(String),
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Ostree(#[from] ostree::glib::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal error: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ReceiveError {
    /// How an update that ended with this error is settled in the audit.
    pub fn audit_state(&self) -> State {
        match self {
            ReceiveError::Vetoed(_) => State::Rejected,
            _ => State::Failed,
        }
    }
}

/// One ref of a push and everything learned about it along the pipeline.
#[derive(Debug, Clone)]
pub struct RefUpdate {
    pub name: String,
    pub old: Option<String>,
    /// `None` for a deletion.
    pub new: Option<String>,
    pub commit: Option<CommitInfo>,
    pub op: Option<policy::Op>,
    pub old_timestamp: Option<u64>,
    pub decision: Option<policy::Decision>,
    pub audit_id: Option<i64>,
}

pub(crate) fn short(rev: &Option<String>) -> String {
    rev.as_deref()
        .map(|r| r[..r.len().min(12)].to_string())
        .unwrap_or_else(|| "(none)".into())
}

/// Runs a classic `ostree-receive-1` request; returns the exit status.
pub async fn run_tunnel(
    shared: &Arc<Shared>,
    identity: Identity,
    args: ReceiveArgs,
    forwards: ForwardPorts,
    input: ChannelReadHalf,
    reporter: &Reporter,
) -> u32 {
    // Stop (before any ref moves) if the client goes away or the gateway is shutting down.
    let cancel = shared.abort.child_token();
    let watcher = tokio::spawn(watch_disconnect(input, cancel.clone()));
    let push_id = new_push_id();
    let span = tracing::info_span!("receive", push = %push_id, user = %identity.user, repo = %args.repo);
    let timeout = Duration::from_secs(shared.config().limits.push_timeout_secs);
    let work = tracing::Instrument::instrument(
        tunnel(shared, &identity, &args, &forwards, &push_id, reporter, &cancel),
        span,
    );
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ReceiveError::TimedOut),
    };
    watcher.abort();
    match result {
        Ok(status) => status,
        Err(e) => {
            tracing::info!(push = %push_id, error = %e, "push failed");
            reporter.line(&format!("error: {e}")).await;
            1
        }
    }
}

async fn watch_disconnect(mut input: ChannelReadHalf, cancel: CancellationToken) {
    // Drain stdin (a held channel nobody reads stalls the session); EOF is fine, CLOSE is not.
    while let Some(msg) = input.wait().await {
        if matches!(msg, russh::ChannelMsg::Close) {
            break;
        }
    }
    cancel.cancel();
}

pub(crate) fn new_push_id() -> String {
    let bytes: [u8; 8] = rand::random();
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        hex::encode(bytes)
    )
}

async fn tunnel(
    shared: &Arc<Shared>,
    identity: &Identity,
    args: &ReceiveArgs,
    forwards: &ForwardPorts,
    push_id: &str,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<u32, ReceiveError> {
    // 1. Request.
    let repo = request::resolve_repo(shared, &args.repo).await?;
    request::validate_refs(&args.refs, shared.config().limits.max_refs_per_push)?;
    let limits = shared.config().limits.clone();
    let stall_window = Duration::from_secs(limits.stall_timeout_secs);
    // One metadata request (a ref, a commit, the summary) gets the whole stall window.
    let http = request::tunnel_source(&args.url, forwards, stall_window)?;
    let source = Source::Tunnel(http.clone());

    // 2. Resolve refs on the pusher's side and read the target's current values.
    let wanted = resolve_wanted(&source, &args.refs, shared.config().limits.max_refs_per_push).await?;
    let current = read_refs(
        PathBuf::from(&repo.path),
        wanted.iter().map(|(n, _)| n.clone()).collect(),
    )
    .await?;
    testhook::pause(&shared.state.root, "metadata").await;
    let mut updates = Vec::new();
    for ((name, new), old) in wanted.into_iter().zip(current) {
        if old.as_deref() == Some(new.as_str()) {
            reporter
                .line(&format!("{name}: up to date ({})", short(&Some(new))))
                .await;
            continue;
        }
        let commit = source.fetch_commit(&new).await?.ok_or_else(|| {
            ReceiveError::Source(format!("commit {new} of ref {name} is missing on the pusher"))
        })?;
        updates.push(RefUpdate {
            name,
            old,
            new: Some(new),
            commit: Some(commit),
            op: None,
            old_timestamp: None,
            decision: None,
            audit_id: None,
        });
    }
    if updates.is_empty() {
        reporter.info("Nothing to push: every ref is up to date.").await;
        return Ok(0);
    }
    if args.force {
        reporter
            .verbose("note: -f does not bypass policy; rules decide which updates may be forced")
            .await;
    }

    // 3. Checks: classify and decide, before any object moves.
    checks::classify(
        &source,
        &repo,
        &mut updates,
        shared.config().limits.max_ancestry_depth,
    )
    .await?;
    let all_allowed = checks::decide(&shared.store, identity, &repo, &mut updates).await?;

    // 4. Audit rows (in progress for allowed refs; denials settled at once).
    let refused = (!all_allowed).then_some("not applied: another ref of this push was denied");
    audit::record(
        &shared.store,
        push_id,
        identity,
        &repo.name,
        &mut updates,
        refused,
    )
    .await?;
    if !all_allowed {
        for u in &updates {
            let d = u.decision.as_ref().expect("decided");
            if d.allowed {
                reporter
                    .line(&format!(
                        "{}: rejected: not applied because another ref was denied",
                        u.name
                    ))
                    .await;
            } else {
                reporter
                    .line(&format!("{}: rejected: {}", u.name, d.reason))
                    .await;
            }
        }
        return Ok(1);
    }

    let ctx = finish::Ctx {
        shared,
        repo: &repo,
        identity,
        reporter,
        cancel,
    };
    // 5-8: transfer, prove, update. Any failure settles the rows as failed.
    let transferred = async {
        let staging = finish::create_staging(shared, &repo, push_id).await?;
        testhook::pause(&shared.state.root, "transfer").await;
        let commits: Vec<CommitInfo> = updates.iter().filter_map(|u| u.commit.clone()).collect();
        let fetch = transfer::Fetch {
            http: &http,
            staging: &staging.path,
            target: std::path::Path::new(&repo.path),
            archive: repo.mode == "archive",
            max_object_size: limits.max_object_size,
            max_push_size: limits.max_push_size,
            watch: Arc::new(watchdog::RateWatch::new(limits.min_transfer_rate, stall_window)),
        };
        if let Err(e) = transfer::fetch_tunnel(fetch, &commits, reporter, cancel).await {
            // Removing the staging repo is blocking I/O.
            tokio::task::spawn_blocking(move || drop(staging)).await?;
            return Err(e);
        }
        finish::prove_and_apply(&ctx, staging, &updates, args.dry_run).await
    }
    .await;
    if let Err(e) = transferred {
        audit::settle(&shared.store, &updates, e.audit_state(), Some(&e.to_string())).await;
        return Err(e);
    }
    finish::settle_and_summarize(&ctx, &updates, args.dry_run, args.no_update).await;
    for u in &updates {
        reporter.line(&finish::result_line(u, args.dry_run)).await;
    }
    Ok(0)
}

/// The refs to push with the pusher's commit for each: the named ones, or all (minus the
/// ones ostree-receive never pushes by default).
async fn resolve_wanted(
    source: &Source,
    named: &[String],
    max: usize,
) -> Result<Vec<(String, String)>, ReceiveError> {
    if named.is_empty() {
        let mut all: Vec<_> = source
            .list_refs()
            .await?
            .into_iter()
            .filter(|(name, _)| !source::is_default_excluded(name))
            .collect();
        all.sort();
        let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
        request::validate_refs(&names, max)?;
        return Ok(all);
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in named {
        match source.resolve_ref(name).await? {
            Some(checksum) => out.push((name.clone(), checksum)),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(ReceiveError::Source(format!(
            "refs not found in the pushed repo: {}",
            missing.join(", ")
        )));
    }
    Ok(out)
}

pub(crate) async fn read_refs(
    repo: PathBuf,
    names: Vec<String>,
) -> Result<Vec<Option<String>>, ReceiveError> {
    tokio::task::spawn_blocking(move || {
        let repo = ostree::Repo::new_for_path(&repo);
        repo.open(ostree::gio::Cancellable::NONE)?;
        names
            .iter()
            .map(|n| Ok(repo.resolve_rev(n, true)?.map(|s| s.to_string())))
            .collect()
    })
    .await?
}

pub(crate) fn repo_mode(repo: &Repo) -> ostree::RepoMode {
    match repo.mode.as_str() {
        "bare" => ostree::RepoMode::Bare,
        "bare-user" => ostree::RepoMode::BareUser,
        _ => ostree::RepoMode::Archive,
    }
}
