//! A hostile or broken pusher on the tunnel path (the classic `ssh -R` + HTTP protocol): forged
//! objects, objects and pushes over the configured limits, a server that trickles. The gateway
//! fetches and verifies every object itself, so each ends with a clear error, no ref moved, a
//! clean target and a failed audit row.

use std::path::PathBuf;

use e2e_tests::noise;
use e2e_tests::server::StaticHttp;
use e2e_tests::world::{assert_exit, stderr, World, T0};

fn world(config: &'static str) -> World {
    World::with_config(&[], move |_| config.into())
}

fn content_objects(w: &World) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(w.local.path.join("objects")).unwrap() {
        for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "filez") {
                found.push(path);
            }
        }
    }
    found
}

/// Nothing moved, the target is sound, and the push is audited as failed with `why`.
fn assert_nothing_moved(w: &World, why: &str) {
    assert!(w.target().refs().is_empty(), "{:?}", w.target().refs());
    w.target().fsck();
    let audit = w.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["state"], "failed", "{audit:?}");
    let reason = audit[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "audit reason {reason:?} lacks {why:?}");
}

#[test]
fn a_forged_content_object_is_refused() {
    let w = world("");
    w.local
        .commit("app/a")
        .file("one", "first file")
        .file("two", "second file")
        .timestamp(T0)
        .run();
    // Each object file now holds the other's (valid) content under its own name.
    let files = content_objects(&w);
    assert_eq!(files.len(), 2, "{files:?}");
    let (a, b) = (
        std::fs::read(&files[0]).unwrap(),
        std::fs::read(&files[1]).unwrap(),
    );
    std::fs::write(&files[0], &b).unwrap();
    std::fs::write(&files[1], &a).unwrap();
    let out = w.push("main URL app/a");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("corrupted or forged"), "{}", stderr(&out));
    assert_nothing_moved(&w, "corrupted or forged");
}

#[test]
fn an_object_larger_than_the_limit_is_refused() {
    let w = world("[limits]\nmax_object_size = 4096\n");
    w.local
        .commit("app/a")
        .file("big", noise(1, 200_000))
        .timestamp(T0)
        .run();
    let out = w.push("main URL app/a");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("larger than the limit of 4096 bytes"),
        "{}",
        stderr(&out)
    );
    assert_nothing_moved(&w, "larger than the limit of 4096 bytes");
}

#[test]
fn a_push_larger_than_the_limit_is_refused() {
    let w = world("[limits]\nmax_push_size = 20000\n");
    let mut builder = w.local.commit("app/a").timestamp(T0);
    for i in 0..20 {
        builder = builder.file(&format!("f{i}"), noise(i, 3000));
    }
    builder.run();
    let out = w.push("main URL app/a");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("push is larger than the limit of 20000 bytes"),
        "{}",
        stderr(&out)
    );
    assert_nothing_moved(&w, "push is larger than the limit of 20000 bytes");
}

const STALL: &str = "[limits]\nstall_timeout_secs = 2\nmin_transfer_rate = 1024\n";

#[test]
fn a_trickling_object_transfer_is_cut_off() {
    let w = world(STALL);
    w.local
        .commit("app/a")
        .file("big", noise(2, 50_000))
        .timestamp(T0)
        .run();
    let slow = StaticHttp::serve_trickling(&w.local.path, ".filez");
    let out = w.ssh().tunnel_push(&slow, "main URL app/a");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("stalled or too slow"), "{}", stderr(&out));
    assert_nothing_moved(&w, "stalled or too slow");
    // The same push from a server that keeps pace then goes through.
    assert_exit(&w.push("main URL app/a"), 0);
    assert_eq!(w.target().refs(), vec!["app/a".to_string()]);
}

#[test]
fn a_trickled_metadata_request_times_out() {
    let w = world(STALL);
    w.local.commit("app/a").file("f", "x").timestamp(T0).run();
    // The ref file (65 bytes) would take 6.5 s; the request gets the 2 s stall window.
    let slow = StaticHttp::serve_trickling(&w.local.path, "refs/heads/app/a");
    let out = w.ssh().tunnel_push(&slow, "main URL app/a");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("timed out fetching") && stderr(&out).contains("refs/heads/app/a"),
        "{}",
        stderr(&out)
    );
    assert!(w.target().refs().is_empty());
    assert!(w.audit().is_empty(), "no push was attempted: {:?}", w.audit());
}

#[test]
fn a_dirtree_left_without_its_children_is_refetched() {
    // An import cut short (kill -9 while staged objects move into the target) can leave a
    // dirtree in the target without its children. The tunnel fetch walks such a tree from the
    // local copy and fetches what is missing, instead of trusting it.
    let w = world("");
    let c = w
        .local
        .commit("app/b")
        .file("d/one", "first")
        .file("d/two", "second")
        .timestamp(T0)
        .run();
    let listing = e2e_tests::run_ok(w.local.ostree().args(["ls", "-C", "-d", &c, "/d"]));
    let tree = listing
        .split_whitespace()
        .nth(4)
        .expect("dirtree checksum")
        .to_string();
    let rel = format!("objects/{}/{}.dirtree", &tree[..2], &tree[2..]);
    let target = w.target().path;
    std::fs::create_dir_all(target.join(&rel).parent().unwrap()).unwrap();
    std::fs::copy(w.local.path.join(&rel), target.join(&rel)).unwrap();
    let out = w.push("main URL app/b");
    assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/b").as_deref(), Some(c.as_str()));
    w.target().fsck();
}
