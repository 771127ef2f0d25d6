//! Where a repo may live: strictly inside the repos root, with symlinks resolved, so that a
//! name or path can never point the gateway at a directory it should not write.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RepoPathError {
    #[error("repo path {0} must not contain \"..\" or \".\" components")]
    DotComponents(String),
    #[error("repo path {path} is outside the repos root {root}")]
    OutsideRoot { path: String, root: String },
    #[error("repo path {0} is inside the gateway's staging area (.staging), which is wiped at startup")]
    Reserved(String),
    #[error("cannot resolve repo path {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Resolves `requested` (absolute, or relative to `root`) to a canonical path below `root`.
/// The path need not exist yet: its deepest existing ancestor is canonicalized (resolving
/// symlinks) and the rest is appended.
pub fn resolve(root: &Path, requested: &Path) -> Result<PathBuf, RepoPathError> {
    let shown = requested.display().to_string();
    let joined = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        root.join(requested)
    };
    if joined
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(RepoPathError::DotComponents(shown));
    }
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = existing.canonicalize().map_err(|source| RepoPathError::Io {
        path: shown.clone(),
        source,
    })?;
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    let root = root.canonicalize().map_err(|source| RepoPathError::Io {
        path: root.display().to_string(),
        source,
    })?;
    if !resolved.starts_with(&root) || resolved == root {
        return Err(RepoPathError::OutsideRoot {
            path: shown,
            root: root.display().to_string(),
        });
    }
    // `<root>/.staging` holds per-push staging repos and is wiped at startup.
    let first = resolved
        .strip_prefix(&root)
        .ok()
        .and_then(|rest| rest.components().next());
    if first.is_some_and(|c| c.as_os_str() == ".staging") {
        return Err(RepoPathError::Reserved(shown));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_outside_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        std::fs::create_dir_all(root.join("a")).unwrap();
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();

        let root_c = root.canonicalize().unwrap();
        assert_eq!(resolve(&root, Path::new("a")).unwrap(), root_c.join("a"));
        assert_eq!(
            resolve(&root, Path::new("new/deep")).unwrap(),
            root_c.join("new/deep")
        );
        assert!(matches!(
            resolve(&root, Path::new("../x")),
            Err(RepoPathError::DotComponents(_))
        ));
        assert!(matches!(
            resolve(&root, &outside),
            Err(RepoPathError::OutsideRoot { .. })
        ));
        assert!(matches!(
            resolve(&root, Path::new("escape/r")),
            Err(RepoPathError::OutsideRoot { .. })
        ));
        assert!(matches!(
            resolve(&root, Path::new(".staging/x")),
            Err(RepoPathError::Reserved(_))
        ));
        assert!(matches!(
            resolve(&root, &root),
            Err(RepoPathError::OutsideRoot { .. })
        ));
    }
}
