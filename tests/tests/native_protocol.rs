//! The native stream protocol against a real gateway over OpenSSH: pushes that work (first,
//! incremental with a fast-forward proof, no-op, delete, dry run) and a hostile client (bytes
//! that do not match their name, a wrong object type, an object not asked for, an incomplete
//! tree, a truncated stream) — each rejected with nothing imported and no ref moved.

use e2e_tests::native::{Hostility, NativeClient, Outcome};
use e2e_tests::world::{World, T0};
use wire::Status;

fn push(w: &World, refs: &[(&str, Option<String>)], dry_run: bool, evil: Hostility) -> Outcome {
    NativeClient::connect(&w.ssh(), &w.local.path).push("main", refs, dry_run, evil)
}

fn world() -> World {
    World::new(&[&[
        "--repo",
        "main",
        "--ref",
        "**",
        "--user",
        "alice",
        "--allow",
        "create,update,delete",
    ]])
}

#[track_caller]
fn assert_ok(o: &Outcome) {
    assert_eq!(o.exit, Some(0), "stderr: {}\nfinal: {:?}", o.stderr, o.last);
}

#[track_caller]
fn assert_rejected(w: &World, o: &Outcome, needle: &str) {
    assert_eq!(o.exit, Some(1), "stderr: {}", o.stderr);
    let text = format!("{} {:?}", o.stderr, o.last);
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
    assert!(w.target().refs().is_empty(), "no ref may move");
    w.target().fsck();
    let staging = w.gw.repos_root().join(".staging");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0,
        "staging removed"
    );
}

#[test]
fn first_incremental_noop_and_delete() {
    let w = world();
    let c1 = w
        .local
        .commit("app/a")
        .file("big", vec![3u8; 200_000])
        .file("small", "s")
        .timestamp(T0)
        .run();
    let o = push(&w, &[("app/a", Some(c1.clone()))], false, Hostility::default());
    assert_ok(&o);
    assert_eq!(o.status_of("app/a"), Some(Status::Created));
    assert!(o.needed >= 4, "{}", o.needed);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(c1.as_str()));
    w.target().fsck();

    let c2 = w
        .local
        .commit("app/a")
        .file("big", vec![3u8; 200_000])
        .file("small", "changed")
        .timestamp(T0 + 1)
        .run();
    let o = push(&w, &[("app/a", Some(c2.clone()))], false, Hostility::default());
    assert_ok(&o);
    assert_eq!(
        o.status_of("app/a"),
        Some(Status::Updated),
        "fast-forward proven by the sent chain"
    );
    assert!(o.needed <= 4, "only changed objects are sent, got {}", o.needed);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(c2.as_str()));

    let o = push(&w, &[("app/a", Some(c2.clone()))], false, Hostility::default());
    assert_ok(&o);
    assert_eq!(o.status_of("app/a"), Some(Status::UpToDate));

    let o = push(&w, &[("app/a", None)], false, Hostility::default());
    assert_ok(&o);
    assert_eq!(o.status_of("app/a"), Some(Status::Deleted));
    assert_eq!(w.target().rev_parse("app/a"), None);
    let audit = w.audit();
    assert_eq!(audit[0]["op"], "delete");
    assert_eq!(audit[0]["state"], "accepted");
    w.target().fsck();
}

#[test]
fn dry_run_and_denied_delete() {
    let w = World::new(&[]); // default rule: create,update only
    let c1 = w.local.commit("app/a").timestamp(T0).run();
    let o = push(&w, &[("app/a", Some(c1.clone()))], true, Hostility::default());
    assert_ok(&o);
    assert_eq!(o.status_of("app/a"), Some(Status::DryRun));
    assert!(w.target().refs().is_empty());
    let o = push(&w, &[("app/a", Some(c1))], false, Hostility::default());
    assert_ok(&o);
    let o = push(&w, &[("app/a", None)], false, Hostility::default());
    assert_eq!(o.exit, Some(1));
    let d = o.decisions.expect("decisions");
    assert!(!d.proceed);
    assert!(
        d.refs[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("no rule allows delete"),
        "{:?}",
        d.refs
    );
    assert!(w.target().rev_parse("app/a").is_some());
}

#[test]
fn object_bytes_not_matching_their_name() {
    let w = world();
    let c = w
        .local
        .commit("app/a")
        .file("f", "real content")
        .timestamp(T0)
        .run();
    let evil = Hostility {
        corrupt: Some(Box::new(|id, bytes| {
            (id.objtype == wire::objtype::DIR_TREE).then(|| {
                let mut b = bytes.to_vec();
                let last = b.len() - 1;
                b[last] ^= 0xff;
                b
            })
        })),
        ..Default::default()
    };
    let o = push(&w, &[("app/a", Some(c))], false, evil);
    assert_rejected(&w, &o, "corrupted or forged");
    assert_eq!(w.audit()[0]["state"], "failed");
}

#[test]
fn corrupted_content_object() {
    let w = world();
    let c = w
        .local
        .commit("app/a")
        .file("f", vec![5u8; 50_000])
        .timestamp(T0)
        .run();
    // Swap in another valid .filez: well-formed, but its content hashes to another name.
    let other = w.local.commit("other").file("g", "different").timestamp(T0).run();
    let _ = other;
    let objects = w.local.path.join("objects");
    let mut filez = Vec::new();
    for dir in std::fs::read_dir(&objects).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "filez") {
                filez.push(std::fs::read(&p).unwrap());
            }
        }
    }
    let evil = Hostility {
        corrupt: Some(Box::new(move |id, bytes| {
            (id.objtype == wire::objtype::FILE)
                .then(|| filez.iter().find(|f| f.as_slice() != bytes).unwrap().clone())
        })),
        ..Default::default()
    };
    let o = push(&w, &[("app/a", Some(c))], false, evil);
    assert_rejected(&w, &o, "corrupted or forged");
}

#[test]
fn wrong_object_type_under_a_valid_name() {
    let w = world();
    let c = w.local.commit("app/a").file("f", "x").timestamp(T0).run();
    let evil = Hostility {
        wrong_type_for_first_file: Some(wire::objtype::DIR_META),
        ..Default::default()
    };
    let o = push(&w, &[("app/a", Some(c))], false, evil);
    assert_rejected(&w, &o, "not requested");
}

#[test]
fn object_not_requested() {
    let w = world();
    let c = w.local.commit("app/a").timestamp(T0).run();
    let o = push(
        &w,
        &[("app/a", Some(c))],
        false,
        Hostility {
            unrequested: true,
            ..Default::default()
        },
    );
    assert_rejected(&w, &o, "not requested");
}

#[test]
fn commit_whose_tree_is_incomplete() {
    let w = world();
    let c = w.local.commit("app/a").file("d/f", "x").timestamp(T0).run();
    // The content objects are never listed, so never asked for nor sent.
    let o = push(
        &w,
        &[("app/a", Some(c))],
        false,
        Hostility {
            omit_from_list: Some(wire::objtype::FILE),
            ..Default::default()
        },
    );
    assert_rejected(&w, &o, "is missing");
    assert_eq!(w.audit()[0]["state"], "failed");
}

#[test]
fn truncated_stream() {
    let w = world();
    let c = w
        .local
        .commit("app/a")
        .file("f", vec![1u8; 100_000])
        .file("g", "y")
        .timestamp(T0)
        .run();
    let o = push(
        &w,
        &[("app/a", Some(c))],
        false,
        Hostility {
            truncate_after: Some(1),
            ..Default::default()
        },
    );
    assert_ne!(o.exit, Some(0));
    assert!(w.target().refs().is_empty());
    w.target().fsck();
    // The audit row is settled (failed), not left in progress.
    for _ in 0..50 {
        if w.audit().first().is_some_and(|r| r["state"] == "failed") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("audit row not settled: {:?}", w.audit());
}

#[test]
fn symlinks_verify_cleanly() {
    // A symlink's content object has no content stream; verifying it must not touch one.
    let w = world();
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("target"), "data").unwrap();
    std::os::unix::fs::symlink("target", tree.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", tree.path().join("dangling")).unwrap();
    e2e_tests::run_ok(
        w.local
            .ostree()
            .args(["commit", "--branch=app/s", "--timestamp=@1700000000"])
            .arg(format!("--tree=dir={}", tree.path().display())),
    );
    let c = w.local.rev_parse("app/s").unwrap();
    let o = push(&w, &[("app/s", Some(c.clone()))], false, Hostility::default());
    assert_ok(&o);
    assert_eq!(w.target().rev_parse("app/s").as_deref(), Some(c.as_str()));
    w.target().fsck();
    let log = w.served.log_text();
    assert!(
        !log.contains("CRITICAL"),
        "GLib criticals in the gateway log: {log}"
    );
}

#[test]
fn update_whose_changed_subtree_is_incomplete() {
    // The proof skips subtrees unchanged since the ref's current commit: a changed one must
    // still be checked in full.
    let w = world();
    let c1 = w
        .local
        .commit("app/a")
        .file("same/f", "unchanged")
        .file("changed/g", "before")
        .timestamp(T0)
        .run();
    let o = push(&w, &[("app/a", Some(c1.clone()))], false, Hostility::default());
    assert_eq!(o.exit, Some(0), "{}", o.stderr);
    let c2 = w
        .local
        .commit("app/a")
        .file("same/f", "unchanged")
        .file("changed/g", "after")
        .timestamp(T0 + 1)
        .run();
    let o = push(
        &w,
        &[("app/a", Some(c2))],
        false,
        Hostility {
            omit_from_list: Some(wire::objtype::FILE),
            ..Default::default()
        },
    );
    assert_eq!(o.exit, Some(1), "{}", o.stderr);
    let text = format!("{} {:?}", o.stderr, o.last);
    assert!(text.contains("is missing"), "{text}");
    assert_eq!(w.target().rev_parse("app/a"), Some(c1));
    w.target().fsck();
}

#[test]
fn bare_user_target_over_both_paths() {
    // A target that is not an archive repo: content arrives compressed and is converted by
    // libostree on the way into staging; both paths, then an incremental push, fsck clean.
    let w = World::new(&[]);
    w.gw.ok(&["repo", "add", "bu", "--init", "--mode", "bare-user"]);
    let target = e2e_tests::OstreeRepo::at(&w.gw.repos_root().join("bu"));
    let c1 = w
        .local
        .commit("app/a")
        .file("bin/tool", vec![5u8; 70_000])
        .file("etc/conf", "x=1\n")
        .timestamp(T0)
        .run();
    let o = NativeClient::connect(&w.ssh(), &w.local.path).push(
        "bu",
        &[("app/a", Some(c1.clone()))],
        false,
        Hostility::default(),
    );
    assert_ok(&o);
    assert_eq!(target.rev_parse("app/a").as_deref(), Some(c1.as_str()));
    let c2 = w
        .local
        .commit("app/a")
        .file("bin/tool", vec![5u8; 70_000])
        .file("etc/conf", "x=2\n")
        .timestamp(T0 + 1)
        .run();
    let out = w.push("bu URL app/a");
    e2e_tests::world::assert_exit(&out, 0);
    assert_eq!(target.rev_parse("app/a").as_deref(), Some(c2.as_str()));
    target.fsck();
}
