//! What a new commit adds over an old one, found by walking both trees together and skipping
//! every subtree whose dirtree and dirmeta are unchanged (as git diffs trees). Both sides use
//! it: the client to list what to send, the gateway to prove a push complete — an old commit a
//! ref points at in the target is complete, so an unchanged subtree needs no check. The cost
//! is proportional to the change, not to the tree.

use std::collections::{HashMap, HashSet};

use ostree::{gio, glib};

use crate::{objtype, ObjectId};

/// The root of a commit: its dirtree and dirmeta checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub tree: String,
    pub meta: String,
}

impl Root {
    /// The root of a commit object.
    pub fn of_commit(commit: &glib::Variant) -> Root {
        Root {
            tree: hex_of(&commit.child_value(6)),
            meta: hex_of(&commit.child_value(7)),
        }
    }
}

fn hex_of(v: &glib::Variant) -> String {
    crate::hex(v.fixed_array::<u8>().unwrap_or_default())
}

/// Calls `visit` once for every object reachable from `new` that is not at the same path in
/// `old`, each before its children, never twice for one object (`seen` spans several calls).
/// Dirtrees are read from `repo` as they are reached; an error from `visit` or a dirtree
/// that cannot be read stops the walk.
pub fn walk<E: From<glib::Error>>(
    repo: &ostree::Repo,
    new: &Root,
    old: Option<&Root>,
    seen: &mut HashSet<ObjectId>,
    visit: &mut dyn FnMut(ObjectId) -> Result<(), E>,
) -> Result<(), E> {
    let mut stack = vec![(new.clone(), old.cloned())];
    while let Some((new, old)) = stack.pop() {
        if old.as_ref().map(|o| &o.meta) != Some(&new.meta) {
            emit(objtype::DIR_META, &new.meta, seen, visit)?;
        }
        if old.as_ref().map(|o| &o.tree) == Some(&new.tree) {
            continue;
        }
        if !emit(objtype::DIR_TREE, &new.tree, seen, visit)? {
            continue; // walked already
        }
        let tree = repo.load_variant(ostree::ObjectType::DirTree, &new.tree)?;
        let (old_files, old_dirs): (HashMap<_, _>, HashMap<_, _>) = match &old {
            Some(o) => {
                let t = repo.load_variant(ostree::ObjectType::DirTree, &o.tree)?;
                (files_of(&t).collect(), dirs_of(&t).collect())
            }
            None => (HashMap::new(), HashMap::new()),
        };
        // The new tree's entries as listed (a hostile tree may repeat a name: each entry is
        // reached, so each is walked); the old one's by name.
        for (name, checksum) in files_of(&tree) {
            if old_files.get(&name) != Some(&checksum) {
                emit(objtype::FILE, &checksum, seen, visit)?;
            }
        }
        for (name, sub) in dirs_of(&tree) {
            stack.push((sub, old_dirs.get(&name).cloned()));
        }
    }
    Ok(())
}

/// `Ok(true)` when `checksum` was not seen before (and `visit` accepted it).
fn emit<E: From<glib::Error>>(
    kind: u8,
    checksum: &str,
    seen: &mut HashSet<ObjectId>,
    visit: &mut dyn FnMut(ObjectId) -> Result<(), E>,
) -> Result<bool, E> {
    let id = ObjectId::from_hex(kind, checksum).ok_or_else(|| {
        glib::Error::new(
            gio::IOErrorEnum::InvalidData,
            &format!("invalid object name {checksum:?}"),
        )
    })?;
    if !seen.insert(id) {
        return Ok(false);
    }
    visit(id)?;
    Ok(true)
}

fn files_of(tree: &glib::Variant) -> impl Iterator<Item = (String, String)> + '_ {
    tree.child_value(0).iter().map(|f| {
        let name = f.child_value(0).str().unwrap_or_default().to_string();
        (name, hex_of(&f.child_value(1)))
    })
}

fn dirs_of(tree: &glib::Variant) -> impl Iterator<Item = (String, Root)> + '_ {
    tree.child_value(1).iter().map(|d| {
        let root = Root {
            tree: hex_of(&d.child_value(1)),
            meta: hex_of(&d.child_value(2)),
        };
        (d.child_value(0).str().unwrap_or_default().to_string(), root)
    })
}

/// Every object of `repo` reachable from a commit, by `traverse_commit` (for tests).
pub fn reachable(repo: &ostree::Repo, commit: &str) -> Result<HashSet<ObjectId>, glib::Error> {
    let mut out = HashSet::new();
    for name in repo.traverse_commit(commit, 0, gio::Cancellable::NONE)? {
        let kind = match name.object_type() {
            ostree::ObjectType::File => objtype::FILE,
            ostree::ObjectType::DirTree => objtype::DIR_TREE,
            ostree::ObjectType::DirMeta => objtype::DIR_META,
            _ => continue,
        };
        out.insert(ObjectId::from_hex(kind, name.checksum()).expect("libostree names"));
    }
    Ok(out)
}
