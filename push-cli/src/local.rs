//! The local (source) repository, opened read-only through libostree. Nothing here writes to
//! it: no summary regeneration, no ref changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ostree::gio;
use ostree::RepoListRefsExtFlags;

/// `--repo`, else `$OSTREE_REPO`, else the current directory if it is a repo, else
/// `/ostree/repo`.
pub fn default_repo(arg: Option<&Path>) -> PathBuf {
    if let Some(path) = arg {
        return path.to_path_buf();
    }
    if let Some(env) = std::env::var_os("OSTREE_REPO").filter(|v| !v.is_empty()) {
        return PathBuf::from(env);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if cwd.join("config").is_file() && cwd.join("objects").is_dir() {
            return cwd;
        }
    }
    PathBuf::from("/ostree/repo")
}

/// Refs never pushed when none are named (as ostree-receive does).
pub fn is_default_excluded(name: &str) -> bool {
    name.starts_with("appstream/") || name.starts_with("appstream2/") || name == "ostree-metadata"
}

#[derive(Debug)]
pub struct LocalRepo {
    /// Canonical path.
    pub path: PathBuf,
    /// Local branches (refs/heads) and their commits.
    pub refs: BTreeMap<String, String>,
    pub archive: bool,
}

impl LocalRepo {
    /// Opens `path` and lists its refs (blocking work in a blocking thread).
    pub async fn open(path: &Path) -> Result<LocalRepo> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || open_blocking(&path)).await?
    }

    /// The refs to push with their commits: the named ones (all must exist), or every ref
    /// but the default exclusions. Sorted by name.
    pub fn select(&self, named: &[String]) -> Result<Vec<(String, String)>> {
        if named.is_empty() {
            return Ok(self
                .refs
                .iter()
                .filter(|(name, _)| !is_default_excluded(name))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect());
        }
        let mut missing: Vec<&str> = named
            .iter()
            .filter(|n| !self.refs.contains_key(n.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            bail!("refs not found in local repo: {}", missing.join(", "));
        }
        let mut out: Vec<(String, String)> = named
            .iter()
            .map(|n| (n.clone(), self.refs[n.as_str()].clone()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn open_blocking(path: &Path) -> Result<LocalRepo> {
    let canonical =
        std::fs::canonicalize(path).with_context(|| format!("local repo {} not found", path.display()))?;
    let repo = ostree::Repo::new_for_path(&canonical);
    repo.open(gio::Cancellable::NONE)
        .map_err(|e| anyhow!("cannot open local repo {}: {e}", path.display()))?;
    let archive = matches!(repo.mode(), ostree::RepoMode::Archive);
    let flags = RepoListRefsExtFlags::EXCLUDE_REMOTES | RepoListRefsExtFlags::EXCLUDE_MIRRORS;
    let refs = repo
        .list_refs_ext(None, flags, gio::Cancellable::NONE)
        .map_err(|e| anyhow!("cannot list refs of {}: {e}", path.display()))?
        .into_iter()
        .collect();
    Ok(LocalRepo {
        path: canonical,
        refs,
        archive,
    })
}

/// A summary file (`(a(s(taya{sv}))a{sv})`, refs sorted) listing exactly `refs`, built in
/// memory from the local commits: what a classic receiver reads to resolve refs.
pub fn summary_for(path: &Path, refs: &[(String, String)]) -> Result<Vec<u8>> {
    use ostree::glib::{self, prelude::*};
    let repo = ostree::Repo::new_for_path(path);
    repo.open(ostree::gio::Cancellable::NONE)?;
    let mut sorted: Vec<&(String, String)> = refs.iter().collect();
    sorted.sort();
    let empty_dict = || glib::VariantDict::new(None).end();
    let mut entries = Vec::new();
    for (name, checksum) in sorted {
        let commit = repo.load_variant(ostree::ObjectType::Commit, checksum)?;
        let bytes = hex::decode(checksum)?;
        let csum = glib::Variant::array_from_fixed_array(&bytes);
        let inner = glib::Variant::tuple_from_iter([(commit.size() as u64).to_variant(), csum, empty_dict()]);
        entries.push(glib::Variant::tuple_from_iter([name.to_variant(), inner]));
    }
    let ty = glib::VariantTy::new("(s(taya{sv}))").expect("valid type");
    let summary = glib::Variant::tuple_from_iter([
        glib::Variant::array_from_iter_with_type(ty, entries),
        empty_dict(),
    ]);
    Ok(summary.data_as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(names: &[&str]) -> LocalRepo {
        LocalRepo {
            path: PathBuf::from("/r"),
            refs: names.iter().map(|n| (n.to_string(), "c".repeat(64))).collect(),
            archive: true,
        }
    }

    #[test]
    fn all_refs_skip_metadata() {
        let r = repo(&["a", "appstream/x86_64", "appstream2/x", "ostree-metadata", "b/c"]);
        let names: Vec<_> = r.select(&[]).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b/c"]);
    }

    #[test]
    fn missing_refs_sorted() {
        let r = repo(&["a"]);
        let e = r
            .select(&["z".into(), "a".into(), "m".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "refs not found in local repo: m, z");
    }
}
