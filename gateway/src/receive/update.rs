//! Phase "update": under the repo lock, compare-and-swap every ref against the value read at
//! the start, import the staged objects (trusted: they were verified on the way in; hardlinks
//! where possible) and move all refs in one libostree transaction.

use std::path::Path;
use std::ptr;

use ostree::gio;
use ostree::glib::translate::{from_glib_full, ToGlibPtr};

use super::staging::Staging;
use super::ReceiveError;

/// One ref move: from `expected` (what we read before transferring) to `new`.
#[derive(Debug, Clone)]
pub struct RefMove {
    pub name: String,
    pub expected: Option<String>,
    pub new: Option<String>,
}

/// libostree's exclusive repo lock (held until drop) so no other process writes meanwhile.
struct ExclusiveLock<'a>(&'a ostree::Repo);

impl<'a> ExclusiveLock<'a> {
    fn take(repo: &'a ostree::Repo) -> Result<ExclusiveLock<'a>, ReceiveError> {
        let mut error = ptr::null_mut();
        // SAFETY: valid repo pointer; error is an out-param owned by us afterwards.
        let ok = unsafe {
            ostree::ffi::ostree_repo_lock_push(
                repo.to_glib_none().0,
                ostree::ffi::OSTREE_REPO_LOCK_EXCLUSIVE,
                ptr::null_mut(),
                &mut error,
            )
        };
        if ok == 0 {
            let error: ostree::glib::Error = unsafe { from_glib_full(error) };
            return Err(error.into());
        }
        Ok(ExclusiveLock(repo))
    }
}

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        let mut error = ptr::null_mut();
        // SAFETY: as above; pops the lock we pushed.
        unsafe {
            ostree::ffi::ostree_repo_lock_pop(
                self.0.to_glib_none().0,
                ostree::ffi::OSTREE_REPO_LOCK_EXCLUSIVE,
                ptr::null_mut(),
                &mut error,
            );
            if !error.is_null() {
                let error: ostree::glib::Error = from_glib_full(error);
                tracing::error!(%error, "cannot release repo lock");
            }
        }
    }
}

/// Applies the moves atomically. Call with the in-process repo lock held.
pub fn apply(
    target: &Path,
    staging: Option<&Staging>,
    moves: &[RefMove],
) -> Result<ImportStats, ReceiveError> {
    let repo = ostree::Repo::new_for_path(target);
    repo.open(gio::Cancellable::NONE)?;
    let _lock = ExclusiveLock::take(&repo)?;
    for m in moves {
        let current = repo.resolve_rev(&m.name, true)?.map(|s| s.to_string());
        if current != m.expected {
            return Err(ReceiveError::RefChanged(m.name.clone()));
        }
    }
    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let result = (|| {
        let stats = match staging {
            Some(staging) => import(&repo, staging, target)?,
            None => ImportStats::default(),
        };
        for m in moves {
            repo.transaction_set_ref(None, &m.name, m.new.as_deref());
        }
        repo.commit_transaction(gio::Cancellable::NONE)?;
        Ok(stats)
    })();
    if result.is_err() {
        let _ = repo.abort_transaction(gio::Cancellable::NONE);
    }
    result
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ImportStats {
    pub objects: usize,
    /// Moving the objects in, then flushing them to disk (milliseconds, for the debug log).
    pub import_ms: u64,
    pub sync_ms: u64,
}

/// Puts every staged object into the target by renames and hard links (`move_objects`), since
/// staging lives on the target's filesystem (same layout, same mode). Objects become visible
/// before the refs move, which is harmless (unreferenced until then; `ostree prune` removes
/// them if the transaction fails) and is what libostree does too. As in libostree, the data reach the
/// disk before their final names exist (`syncfs`, so a crash cannot leave a torn object under
/// a name the next push trusts), and the names before any ref (`commit_transaction` syncs
/// again). Across filesystems (a repo path configured elsewhere) libostree imports the
/// objects instead.
fn import(repo: &ostree::Repo, staging: &Staging, target: &Path) -> Result<ImportStats, ReceiveError> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(&staging.path)?.dev() != std::fs::metadata(target)?.dev() {
        return import_with_libostree(repo, staging);
    }
    let started = std::time::Instant::now();
    if !repo.is_disable_fsync() {
        sync_filesystem(&staging.path)?;
    }
    let sync_ms = started.elapsed().as_millis() as u64;
    let mut stats = move_objects(&staging.path, target)?;
    stats.sync_ms = sync_ms;
    stats.import_ms = started.elapsed().as_millis() as u64 - sync_ms;
    Ok(stats)
}

/// Puts every staged object into the target. An `objects/XX` directory the target does not
/// have yet (a new repo has none) moves in as a whole, in one rename. Into a directory the
/// target has, each object is hard-linked, by two threads: renames across directories are
/// serialized by the kernel (one mutex per filesystem; two renaming threads measured no
/// faster), links are not. The staged names go with the staging repo, which is removed in the
/// background after the push. Detached metadata is renamed instead, replacing what the target
/// had: it is not named by its content, and the pushed one is what the checks saw. Names are
/// resolved from the two `objects` directories, not by full paths.
fn move_objects(staging: &Path, target: &Path) -> std::io::Result<ImportStats> {
    let from = super::present::open_objects_dir(staging)?;
    let to = super::present::open_objects_dir(target)?;
    let mut moved = 0;
    let mut to_link = Vec::new();
    for dir in std::fs::read_dir(staging.join("objects"))? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        if names.is_empty() {
            continue;
        }
        moved += names
            .iter()
            .filter(|n| !n.to_string_lossy().ends_with(".commitmeta"))
            .count();
        let sub = Path::new(dir.file_name().as_os_str()).to_path_buf();
        match rustix::fs::renameat_with(&from, &sub, &to, &sub, rustix::fs::RenameFlags::NOREPLACE) {
            Ok(()) => continue,
            // The target has it; or the filesystem cannot rename without replacing.
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::INVAL) => {}
            Err(e) => return Err(e.into()),
        }
        to_link.push((sub, names));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let link_some = || -> std::io::Result<()> {
        while let Some((sub, names)) = to_link.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            for name in names {
                let path = sub.join(name);
                if name.to_string_lossy().ends_with(".commitmeta") {
                    rustix::fs::renameat(&from, &path, &to, &path)?;
                    continue;
                }
                match rustix::fs::linkat(&from, &path, &to, &path, rustix::fs::AtFlags::empty()) {
                    // Already there (another push brought it): the same bytes, by its name.
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    // A filesystem without hard links (or a file at its link limit).
                    Err(
                        rustix::io::Errno::PERM | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::MLINK,
                    ) => rustix::fs::renameat(&from, &path, &to, &path)?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let helper = scope.spawn(link_some);
        let mine = link_some();
        let theirs = helper.join().expect("link thread panicked");
        mine.and(theirs)
    })?;
    Ok(ImportStats {
        objects: moved,
        ..ImportStats::default()
    })
}

fn sync_filesystem(path: &Path) -> Result<(), ReceiveError> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)?;
    // SAFETY: a valid open descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn import_with_libostree(repo: &ostree::Repo, staging: &Staging) -> Result<ImportStats, ReceiveError> {
    let source = staging.open()?;
    let flags =
        ostree::ffi::OSTREE_REPO_LIST_OBJECTS_LOOSE | ostree::ffi::OSTREE_REPO_LIST_OBJECTS_NO_PARENTS;
    let objects = source.list_objects(flags, gio::Cancellable::NONE)?;
    let mut stats = ImportStats::default();
    let mut commits = Vec::new();
    for name in objects.keys() {
        match name.object_type() {
            ostree::ObjectType::CommitMeta => continue,
            ostree::ObjectType::Commit => commits.push(name.checksum().to_string()),
            _ => {}
        }
        repo.import_object_from_with_trust(
            &source,
            name.object_type(),
            name.checksum(),
            true,
            gio::Cancellable::NONE,
        )?;
        stats.objects += 1;
    }
    // Detached metadata (GPG signatures) travels beside the commit, not as an object.
    for commit in commits {
        if let Some(meta) = source.read_commit_detached_metadata(&commit, gio::Cancellable::NONE)? {
            repo.write_commit_detached_metadata(&commit, Some(&meta), gio::Cancellable::NONE)?;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, data: &str) {
        let path = root.join("objects").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn moves_new_directories_whole_and_files_into_existing_ones() {
        let (staging, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        put(staging.path(), "aa/1.filez", "a1");
        put(staging.path(), "aa/2.dirtree", "a2");
        put(staging.path(), "bb/3.commit", "b3");
        put(staging.path(), "bb/3.commitmeta", "b3m");
        std::fs::create_dir_all(staging.path().join("objects/cc")).unwrap(); // empty: skipped
        put(target.path(), "bb/old.filez", "old");
        let stats = move_objects(staging.path(), target.path()).unwrap();
        assert_eq!(stats.objects, 3, "commitmeta is not an object");
        let read = |rel: &str| std::fs::read_to_string(target.path().join("objects").join(rel)).unwrap();
        assert_eq!(
            (read("aa/1.filez"), read("aa/2.dirtree"), read("bb/3.commit")),
            ("a1".into(), "a2".into(), "b3".into())
        );
        assert_eq!(
            (read("bb/3.commitmeta"), read("bb/old.filez")),
            ("b3m".into(), "old".into())
        );
        assert!(!staging.path().join("objects/aa").exists(), "moved as a whole");
        // Linked into the existing directory: the staged name stays for the staging removal;
        // the detached metadata was renamed.
        let staged = |rel: &str| staging.path().join("objects").join(rel);
        assert!(staged("bb/3.commit").exists() && !staged("bb/3.commitmeta").exists());
        use std::os::unix::fs::MetadataExt;
        let nlink = std::fs::metadata(target.path().join("objects/bb/3.commit"))
            .unwrap()
            .nlink();
        assert_eq!(nlink, 2, "one inode, two names");
        assert!(!target.path().join("objects/cc").exists());
    }

    #[test]
    fn an_object_the_target_has_stays_and_detached_metadata_is_replaced() {
        // Two pushes of the same object race: the file is the same by its name. Detached
        // metadata is not named by its content: the pushed one replaces the target's.
        let (staging, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        put(staging.path(), "aa/1.filez", "same");
        put(target.path(), "aa/1.filez", "same");
        put(staging.path(), "aa/2.commitmeta", "new signatures");
        put(target.path(), "aa/2.commitmeta", "old signatures");
        assert_eq!(move_objects(staging.path(), target.path()).unwrap().objects, 1);
        let read = |rel: &str| std::fs::read_to_string(target.path().join("objects").join(rel)).unwrap();
        assert_eq!(read("aa/1.filez"), "same");
        assert_eq!(read("aa/2.commitmeta"), "new signatures");
    }

    #[test]
    fn many_directories_are_linked_by_both_threads() {
        let (staging, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for d in 0..40 {
            put(target.path(), &format!("{d:02x}/old.filez"), "old");
            for f in 0..5 {
                put(staging.path(), &format!("{d:02x}/{f}.filez"), &format!("{d}-{f}"));
            }
        }
        assert_eq!(move_objects(staging.path(), target.path()).unwrap().objects, 200);
        for d in 0..40 {
            for f in 0..5 {
                let path = target.path().join(format!("objects/{d:02x}/{f}.filez"));
                assert_eq!(std::fs::read_to_string(path).unwrap(), format!("{d}-{f}"));
            }
        }
    }
}
