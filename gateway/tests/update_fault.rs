//! An injected libostree failure right before the transaction commits
//! (`OSTREE_REPO_TEST_ERROR=pre-commit`) leaves every ref of the push where it was.
//! A separate test binary: the variable is process-wide.

mod common;

use common::{ostree, repo, rev};
use ostree_gateway::receive::update::{apply, RefMove};

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
