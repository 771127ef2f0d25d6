//! The locked update phase on real repos: compare-and-swap against the values read at the
//! start of a push, and all refs of a push moved together or not at all.

mod common;

use common::{repo, rev};
use ostree_gateway::receive::update::{apply, RefMove};
use ostree_gateway::receive::ReceiveError;

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
