//! An injected libostree failure right before the transaction commits
//! (`OSTREE_REPO_TEST_ERROR=pre-commit`) leaves every ref of the push where it was.
//! A separate test binary: the variable is process-wide.

use std::path::Path;
use std::process::Command;

use ostree_gateway::receive::update::{apply, RefMove};

fn ostree(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An archive repo with two commits on `a` and one on `b`; returns (c1, c2, b1).
fn repo(dir: &Path) -> (String, String, String) {
    ostree(dir, &["init", "--mode=archive"]);
    let tree = dir.join("../tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), "1").unwrap();
    let tree_arg = format!("--tree=dir={}", tree.display());
    let c1 = ostree(dir, &["commit", "--branch=a", &tree_arg, "--timestamp=@1000"]);
    std::fs::write(tree.join("f"), "2").unwrap();
    let c2 = ostree(
        dir,
        &["commit", "--branch=scratch", &tree_arg, "--timestamp=@2000"],
    );
    let b1 = ostree(dir, &["commit", "--branch=b", &tree_arg, "--timestamp=@3000"]);
    (c1, c2, b1)
}

fn rev(dir: &Path, name: &str) -> Option<String> {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", dir.display()))
        .args(["rev-parse", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[test]
fn failure_before_commit_moves_no_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let (c1, c2, b1) = repo(&dir);
    std::env::set_var("OSTREE_REPO_TEST_ERROR", "pre-commit");
    let moves = [
        RefMove {
            name: "a".into(),
            expected: Some(c1.clone()),
            new: Some(c2.clone()),
        },
        RefMove {
            name: "b".into(),
            expected: Some(b1.clone()),
            new: Some(c2),
        },
    ];
    let result = apply(&dir, None, &moves);
    std::env::remove_var("OSTREE_REPO_TEST_ERROR");
    assert!(result.is_err(), "the injected failure must surface");
    assert_eq!(rev(&dir, "a"), Some(c1));
    assert_eq!(rev(&dir, "b"), Some(b1));
    ostree(&dir, &["fsck"]);
}
