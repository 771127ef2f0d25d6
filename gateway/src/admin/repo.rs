//! `ostree-gateway repo …`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ostree::gio;

use super::{output, Admin};
use crate::cli::{RepoCmd, RepoMode};
use crate::repo_path;
use crate::store::repos;

pub async fn run(admin: &Admin, cmd: RepoCmd) -> anyhow::Result<()> {
    let mut conn = admin.store.conn().await?;
    match cmd {
        RepoCmd::Add {
            name,
            path,
            init,
            mode,
            collection_id,
        } => {
            policy::validate_name("repo", &name)?;
            if repos::find(&mut conn, &name).await?.is_some() {
                bail!("repo \"{name}\" already exists");
            }
            if let Some(id) = &collection_id {
                ostree::validate_collection_id(Some(id))
                    .map_err(|e| anyhow::anyhow!("invalid collection id \"{id}\": {}", e.message()))?;
            }
            let requested = path.unwrap_or_else(|| PathBuf::from(&name));
            let resolved = repo_path::resolve(&admin.state.repos_root, &requested)?;
            let actual_mode = {
                let resolved = resolved.clone();
                let collection_id = collection_id.clone();
                tokio::task::spawn_blocking(move || {
                    open_or_init(&resolved, init, mode, collection_id.as_deref())
                })
                .await??
            };
            let repo = repos::add(
                &mut conn,
                &name,
                &resolved.to_string_lossy(),
                actual_mode.as_str(),
                collection_id.as_deref(),
            )
            .await?;
            println!("added repo {} at {} ({})", repo.name, repo.path, repo.mode);
        }
        RepoCmd::List(flag) => {
            let list = repos::list(&mut conn).await?;
            if flag.json {
                return output::json(&list);
            }
            let rows = list
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.mode.clone(),
                        output::opt(&r.collection_id),
                        r.path.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["NAME", "MODE", "COLLECTION", "PATH"], &rows);
        }
        RepoCmd::Show { name, json } => {
            let repo = repos::get(&mut conn, &name).await?;
            if json.json {
                return output::json(&repo);
            }
            println!("name:       {}", repo.name);
            println!("path:       {}", repo.path);
            println!("mode:       {}", repo.mode);
            println!("collection: {}", output::opt(&repo.collection_id));
            println!("created:    {}", repo.created_at);
        }
        RepoCmd::Remove { name } => {
            repos::remove(&mut conn, &name).await?;
            println!("removed repo {name} (files left on disk)");
        }
    }
    Ok(())
}

fn ostree_mode(mode: RepoMode) -> ostree::RepoMode {
    match mode {
        RepoMode::Archive => ostree::RepoMode::Archive,
        RepoMode::Bare => ostree::RepoMode::Bare,
        RepoMode::BareUser => ostree::RepoMode::BareUser,
    }
}

fn our_mode(mode: ostree::RepoMode) -> Option<RepoMode> {
    match mode {
        ostree::RepoMode::Archive => Some(RepoMode::Archive),
        ostree::RepoMode::Bare => Some(RepoMode::Bare),
        ostree::RepoMode::BareUser => Some(RepoMode::BareUser),
        _ => None,
    }
}

/// Opens the repo at `path`, creating it first with `--init`. Returns its mode.
fn open_or_init(
    path: &Path,
    init: bool,
    mode: Option<RepoMode>,
    collection_id: Option<&str>,
) -> anyhow::Result<RepoMode> {
    let exists = path.join("config").exists();
    if !exists && !init {
        bail!("no OSTree repo at {} (use --init to create it)", path.display());
    }
    let repo = ostree::Repo::new_for_path(path);
    if exists {
        repo.open(gio::Cancellable::NONE)
            .with_context(|| format!("cannot open OSTree repo at {}", path.display()))?;
        let found = our_mode(repo.mode())
            .with_context(|| format!("repo at {} has an unsupported mode", path.display()))?;
        if let Some(wanted) = mode {
            if wanted != found {
                bail!(
                    "repo at {} is in {} mode, not {}",
                    path.display(),
                    found.as_str(),
                    wanted.as_str()
                );
            }
        }
        if let Some(id) = collection_id {
            let actual = repo.collection_id().map(|s| s.to_string());
            if actual.as_deref() != Some(id) {
                bail!(
                    "repo at {} has collection id {}, not {id} (set it with `ostree config set core.collection-id`)",
                    path.display(),
                    actual.as_deref().unwrap_or("(none)")
                );
            }
        }
        return Ok(found);
    }
    let mode = mode.unwrap_or(RepoMode::Archive);
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    repo.create(ostree_mode(mode), gio::Cancellable::NONE)
        .with_context(|| format!("cannot create OSTree repo at {}", path.display()))?;
    if let Some(id) = collection_id {
        repo.set_collection_id(Some(id))?;
        repo.write_config(&repo.copy_config())?;
    }
    Ok(mode)
}
