//! The tree diff against libostree's full traversal, on real repos: alone it reaches exactly
//! what `traverse_commit` reaches; against an old commit it reaches at least everything the old
//! commit does not (so nothing the proof or the client needs is skipped), and for a small
//! change, only a little more than the change itself.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use ostree::gio;
use wire::treediff::{reachable, walk, Root};
use wire::ObjectId;

fn ostree(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .expect("ostree");
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn commit(repo: &Path, tree: &Path) -> String {
    ostree(
        repo,
        &[
            "commit",
            "--branch=b",
            "--subject=s",
            &format!("--tree=dir={}", tree.display()),
        ],
    )
}

fn diff(repo: &ostree::Repo, new: &str, old: Option<&str>) -> HashSet<ObjectId> {
    let root = |c: &str| Root::of_commit(&repo.load_variant(ostree::ObjectType::Commit, c).unwrap());
    let old_root = old.map(root);
    let mut seen = HashSet::new();
    let mut out = HashSet::new();
    walk::<ostree::glib::Error>(repo, &root(new), old_root.as_ref(), &mut seen, &mut |id| {
        assert!(out.insert(id), "visited twice");
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn the_diff_covers_everything_new_and_little_else() {
    let dir = tempfile::tempdir().unwrap();
    let (path, tree) = (dir.path().join("repo"), dir.path().join("tree"));
    ostree(&path, &["init", "--mode=archive"]);
    for d in 0..20 {
        for f in 0..10 {
            let p = tree.join(format!("d{d}/sub{}", f % 3));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
    std::fs::write(tree.join("same-content-a"), "dup").unwrap();
    std::fs::write(tree.join("d3/same-content-b"), "dup").unwrap();
    let old = commit(&path, &tree);
    // 5 changed, 2 added, 1 deleted, one directory renamed.
    for d in 0..5 {
        std::fs::write(tree.join(format!("d{d}/sub0/f0")), "changed").unwrap();
    }
    std::fs::write(tree.join("d7/new1"), "added 1").unwrap();
    std::fs::create_dir_all(tree.join("d8/newdir")).unwrap();
    std::fs::write(tree.join("d8/newdir/new2"), "added 2").unwrap();
    std::fs::remove_file(tree.join("d9/sub1/f1")).unwrap();
    std::fs::rename(tree.join("d10"), tree.join("d10-renamed")).unwrap();
    let new = commit(&path, &tree);

    let repo = ostree::Repo::new_for_path(&path);
    repo.open(gio::Cancellable::NONE).unwrap();
    let all_new = reachable(&repo, &new).unwrap();
    let all_old = reachable(&repo, &old).unwrap();
    assert_eq!(
        diff(&repo, &new, None),
        all_new,
        "alone, the walk is a full traversal"
    );

    let walked = diff(&repo, &new, Some(&old));
    let truly_new: HashSet<_> = all_new.difference(&all_old).copied().collect();
    assert!(
        walked.is_superset(&truly_new),
        "missed: {:?}",
        truly_new.difference(&walked)
    );
    assert!(walked.is_subset(&all_new));
    // The renamed directory is walked again (its objects exist in the old tree, at another
    // path); everything else unchanged is skipped.
    assert!(
        walked.len() < all_new.len() / 3,
        "{} of {}",
        walked.len(),
        all_new.len()
    );
    assert_eq!(diff(&repo, &new, Some(&new)), HashSet::new());
}
