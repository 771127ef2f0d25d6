//! Phase "checks": classify each ref update (create / fast-forward update / force / delete)
//! by walking the new commit's parents, gather the facts (timestamps, signature), and ask the
//! policy crate's single decision function. No object content has been transferred yet.

use std::collections::HashSet;
use std::path::PathBuf;

use policy::{Decision, Facts, Op, Request, SignatureStatus};

use super::source::Source;
use super::{Identity, ReceiveError, RefUpdate};
use crate::store::repos::Repo;
use crate::store::{gpg_keys, rules, users, Store};

/// Sets `op` and `old_timestamp` on every update.
pub async fn classify(
    source: &Source,
    repo: &Repo,
    updates: &mut [RefUpdate],
    max_depth: u32,
) -> Result<(), ReceiveError> {
    for update in updates.iter_mut() {
        let Some(new) = &update.commit else {
            update.op = Some(Op::Delete);
            continue;
        };
        let Some(old) = update.old.clone() else {
            update.op = Some(Op::Create);
            continue;
        };
        update.old_timestamp = commit_timestamp(PathBuf::from(&repo.path), old.clone()).await?;
        let fast_forward = descends_from(source, new.parent.clone(), &old, max_depth).await?;
        update.op = Some(if fast_forward { Op::Update } else { Op::Force });
    }
    Ok(())
}

/// Whether `old` is reached by following parents from `start`, fetching commit objects only.
/// A missing parent (shallow history) or the depth bound ends the walk: not a descendant.
async fn descends_from(
    source: &Source,
    start: Option<String>,
    old: &str,
    max_depth: u32,
) -> Result<bool, ReceiveError> {
    let mut seen = HashSet::new();
    let mut current = start;
    for _ in 0..max_depth {
        let Some(checksum) = current else { return Ok(false) };
        if checksum == old {
            return Ok(true);
        }
        if !seen.insert(checksum.clone()) {
            return Err(ReceiveError::Source(format!(
                "commit {checksum} appears twice in its own parent chain"
            )));
        }
        current = match source.fetch_commit(&checksum).await? {
            Some(commit) => commit.parent,
            None => return Ok(false),
        };
    }
    Ok(false)
}

async fn commit_timestamp(repo_path: PathBuf, checksum: String) -> Result<Option<u64>, ReceiveError> {
    tokio::task::spawn_blocking(move || {
        let repo = ostree::Repo::new_for_path(&repo_path);
        repo.open(ostree::gio::Cancellable::NONE)?;
        let commit = repo.load_variant_if_exists(ostree::ObjectType::Commit, &checksum)?;
        Ok(commit.map(|c| ostree::commit_get_timestamp(&c)))
    })
    .await?
}

/// Decides every update with the current rules. Returns true when all are allowed.
pub async fn decide(
    store: &Store,
    identity: &Identity,
    repo: &Repo,
    updates: &mut [RefUpdate],
) -> Result<bool, ReceiveError> {
    let mut conn = store.conn().await?;
    let rules = rules::list(&mut conn)
        .await?
        .iter()
        .map(|r| r.to_policy())
        .collect::<Result<Vec<_>, _>>()?;
    let teams = users::teams_of(&mut conn, identity.user_id).await?;
    let trusted: Vec<String> = gpg_keys::list(&mut conn, repo.id)
        .await?
        .into_iter()
        .map(|k| k.armored)
        .collect();
    drop(conn);
    let mut all_allowed = true;
    for update in updates.iter_mut() {
        let op = update.op.expect("classified before deciding");
        let signature = match &update.commit {
            Some(commit) => {
                let (trusted, bytes, detached) =
                    (trusted.clone(), commit.bytes.clone(), commit.detached.clone());
                tokio::task::spawn_blocking(move || {
                    crate::gpg::verify_commit(&trusted, &bytes, detached.as_deref())
                })
                .await?
            }
            None => SignatureStatus::NotChecked,
        };
        let facts = Facts {
            signature,
            old_timestamp: update.old_timestamp,
            new_timestamp: update.commit.as_ref().map(|c| c.timestamp),
        };
        let request = Request {
            user: &identity.user,
            teams: &teams,
            repo: &repo.name,
            ref_name: &update.name,
            op,
            facts,
        };
        let decision: Decision = policy::decide(&rules, &request);
        all_allowed &= decision.allowed;
        update.decision = Some(decision);
    }
    Ok(all_allowed)
}
