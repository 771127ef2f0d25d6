//! Real repos for the update-phase tests, made with the `ostree` CLI.

use std::path::Path;
use std::process::Command;

pub fn ostree(repo: &Path, args: &[&str]) -> String {
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
pub fn repo(dir: &Path) -> (String, String, String) {
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

pub fn rev(dir: &Path, name: &str) -> Option<String> {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", dir.display()))
        .args(["rev-parse", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}
