//! Compatibility with the unmodified Python `ostree-push` 1.2.0: the client users already have
//! pushes to a real gateway process over the real OpenSSH client, with ssh options given
//! through its `-i`/`-o`/`-p` flags the way a user would.
//!
//! The client comes from `make python-ostree-push` (a venv under `target/`); without it these
//! tests fail, saying so, rather than skip.

use std::time::Instant;

use e2e_tests::python::PythonPush;
use e2e_tests::world::{stderr, World, T0};
use e2e_tests::{run, run_ok};
use serde_json::Value;

#[test]
fn named_refs_land_with_the_pushers_checksums() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);
    let mut files = w.local.commit("app/hello");
    for i in 0..200 {
        files = files.file(&format!("share/f{i:03}"), format!("file {i}\n").repeat(50));
    }
    let hello = files.file("bin/hello", vec![7u8; 70_000]).timestamp(T0 + 1).run();
    let other = w
        .local
        .commit("runtime/base")
        .file("lib/x", "x")
        .timestamp(T0 + 2)
        .run();
    // A local ref that is not named: it must not be pushed.
    w.local.commit("app/unnamed").timestamp(T0 + 3).run();

    let started = Instant::now();
    let out = py.push(&[], &["app/hello", "runtime/base"]);
    let python_time = started.elapsed();
    py.assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("app/hello: created"), "{}", py.describe(&out));
    assert!(err.contains("runtime/base: created"), "{}", py.describe(&out));

    let target = w.target();
    assert_eq!(target.rev_parse("app/hello").as_deref(), Some(hello.as_str()));
    assert_eq!(target.rev_parse("runtime/base").as_deref(), Some(other.as_str()));
    assert_eq!(target.rev_parse("app/unnamed"), None);
    target.fsck();
    let summary = run_ok(target.ostree().args(["summary", "--view"]));
    assert!(summary.contains("app/hello"), "summary lists the ref:\n{summary}");

    let audit = w.audit();
    assert_eq!(audit.len(), 2, "{audit:#?}");
    let row = audit
        .iter()
        .find(|r| r["ref"] == "app/hello")
        .expect("app/hello row");
    assert_eq!(row["user"], "alice");
    assert_eq!(row["repo"], "main");
    assert_eq!(row["op"], "create");
    assert_eq!(row["decision"], "allow");
    assert_eq!(row["state"], "accepted");
    assert_eq!(row["new_rev"], hello.as_str());
    assert_eq!(row["old_rev"], Value::Null);
    assert_eq!(row["key_fingerprint"], w.alice.fingerprint().as_str());
    assert!(audit.iter().all(|r| r["state"] == "accepted"), "{audit:#?}");

    eprintln!("timing: python ostree-push of 203 objects took {python_time:?}");
}

#[test]
fn all_refs_when_none_named_regenerates_the_source_summary() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);
    let a = w.local.commit("app/a").timestamp(T0 + 1).run();
    let b = w.local.commit("runtime/b").timestamp(T0 + 2).run();
    w.local.commit("appstream/x86_64").timestamp(T0 + 3).run();
    w.local.commit("appstream2/x86_64").timestamp(T0 + 4).run();
    let summary = w.local.path.join("summary");
    assert!(
        !summary.exists(),
        "no source summary yet: the client must make it"
    );

    let out = py.push(&[], &[]);
    py.assert_exit(&out, 0);
    assert!(summary.exists(), "the client regenerated its summary");
    let target = w.target();
    assert_eq!(target.rev_parse("app/a").as_deref(), Some(a.as_str()));
    assert_eq!(target.rev_parse("runtime/b").as_deref(), Some(b.as_str()));
    assert_eq!(target.rev_parse("appstream/x86_64"), None);
    assert_eq!(target.rev_parse("appstream2/x86_64"), None);
    assert_eq!(target.refs(), ["app/a", "runtime/b"]);
    target.fsck();

    // A stale source summary (refs moved and added since) is regenerated before the next push.
    let a2 = w.local.commit("app/a").file("f", "2").timestamp(T0 + 10).run();
    let c = w.local.commit("app/c").timestamp(T0 + 11).run();
    let out = py.push(&[], &[]);
    py.assert_exit(&out, 0);
    assert!(stderr(&out).contains("app/a: updated"), "{}", py.describe(&out));
    assert_eq!(target.rev_parse("app/a").as_deref(), Some(a2.as_str()));
    assert_eq!(target.rev_parse("app/c").as_deref(), Some(c.as_str()));
    assert_eq!(target.rev_parse("runtime/b").as_deref(), Some(b.as_str()));
    target.fsck();
}

#[test]
fn dry_run_moves_no_ref() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);
    // Nothing on the gateway yet: -n creates nothing.
    w.local.commit("app/a").file("f", "1").timestamp(T0 + 1).run();
    let out = py.push(&["-n"], &["app/a"]);
    py.assert_exit(&out, 0);
    assert!(stderr(&out).contains("dry run"), "{}", py.describe(&out));
    assert_eq!(w.target().rev_parse("app/a"), None);

    // An existing ref is not moved by -n either.
    let first = w.local.commit("app/a").file("f", "2").timestamp(T0 + 2).run();
    py.assert_exit(&py.push(&[], &["app/a"]), 0);
    w.local.commit("app/a").file("f", "3").timestamp(T0 + 3).run();
    let out = py.push(&["--dry-run"], &["app/a"]);
    py.assert_exit(&out, 0);
    assert!(stderr(&out).contains("dry run"), "{}", py.describe(&out));
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(first.as_str()));
    w.target().fsck();
    let accepted = w.audit().iter().filter(|r| r["state"] == "accepted").count();
    assert_eq!(accepted, 1, "only the real push was accepted");
}

#[test]
fn command_candidates_fall_back_on_exit_127() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);

    // Unknown first candidate (exit 127) → the versioned receiver.
    let one = w.local.commit("app/a").file("f", "1").timestamp(T0 + 1).run();
    let out = py.push(
        &["--command", "bogus-receive", "--command", "ostree-receive-1"],
        &["app/a"],
    );
    py.assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(one.as_str()));

    // Unknown first candidate → the unversioned receiver (v1 when no `--repo` argument), with
    // the scp-style DEST (relative path) and the port given by -p.
    let two = w.local.commit("app/a").file("f", "2").timestamp(T0 + 2).run();
    let port = py.port.to_string();
    let mut command = py.command();
    command
        .args([
            "-p",
            &port,
            "--command",
            "bogus-receive",
            "--command",
            "ostree-receive",
        ])
        .arg("alice@127.0.0.1:main")
        .arg("app/a");
    let out = py.run(command);
    py.assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(two.as_str()));

    // The default candidates (ostree-receive-1, then ostree-receive), spelled out.
    let three = w.local.commit("app/a").file("f", "3").timestamp(T0 + 3).run();
    let out = py.push(
        &["--command", "ostree-receive-1", "--command", "ostree-receive"],
        &["app/a"],
    );
    py.assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(three.as_str()));

    // A candidate with its own options (shlex-split by the client).
    let four = w.local.commit("app/a").file("f", "4").timestamp(T0 + 4).run();
    let out = py.push(&["--command", "ostree-receive-1 -v"], &["app/a"]);
    py.assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(four.as_str()));

    // Every candidate unknown: the client gives up, naming them.
    w.local.commit("app/a").file("f", "5").timestamp(T0 + 5).run();
    let out = py.push(&["--command", "nope-1", "--command", "nope-2"], &["app/a"]);
    py.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("Could not find commands nope-1 nope-2 on server"),
        "{}",
        py.describe(&out)
    );
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(four.as_str()));
    w.target().fsck();
    assert_eq!(w.audit().len(), 4, "one row per applied push");
}

#[test]
fn second_push_of_the_same_commit_is_a_no_op() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);
    let first = w.local.commit("app/a").file("f", "1").timestamp(T0 + 1).run();
    py.assert_exit(&py.push(&[], &["app/a"]), 0);
    let second = w
        .local
        .commit("app/a")
        .file("f", "2")
        .file("g", "new")
        .timestamp(T0 + 2)
        .run();
    let out = py.push(&[], &["app/a"]);
    py.assert_exit(&out, 0);
    assert!(stderr(&out).contains("app/a: updated"), "{}", py.describe(&out));
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(second.as_str()));
    let audit = w.audit();
    assert_eq!(audit.len(), 2);
    let update = audit.iter().find(|r| r["op"] == "update").expect("update row");
    assert_eq!(update["old_rev"], first.as_str());
    assert_eq!(update["new_rev"], second.as_str());

    // Again, nothing new: exit 0, ref unchanged, no audit row.
    let out = py.push(&[], &["app/a"]);
    py.assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("app/a: up to date"),
        "{}",
        py.describe(&out)
    );
    assert_eq!(w.target().rev_parse("app/a").as_deref(), Some(second.as_str()));
    assert_eq!(w.audit().len(), 2);
    // All refs (none named) is a no-op too.
    let out = py.push(&[], &[]);
    py.assert_exit(&out, 0);
    assert_eq!(w.audit().len(), 2);
    w.target().fsck();
}

#[test]
fn denied_push_fails_and_moves_nothing() {
    let w = World::new(&[
        &[
            "--repo",
            "main",
            "--ref",
            "app/**",
            "--user",
            "alice",
            "--allow",
            "create,update",
        ],
        &[
            "--repo",
            "main",
            "--ref",
            "frozen/**",
            "--user",
            "alice",
            "--allow",
            "create",
        ],
    ]);
    let py = PythonPush::new(&w);

    // A ref outside every rule.
    w.local.commit("secret/x").timestamp(T0 + 1).run();
    let out = py.push(&[], &["secret/x"]);
    py.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("secret/x: rejected: no rule allows create"),
        "{}",
        py.describe(&out)
    );
    assert_eq!(w.target().rev_parse("secret/x"), None);

    // A ref that may be created but not updated.
    let frozen = w.local.commit("frozen/v1").file("f", "1").timestamp(T0 + 2).run();
    py.assert_exit(&py.push(&[], &["frozen/v1"]), 0);
    w.local.commit("frozen/v1").file("f", "2").timestamp(T0 + 3).run();
    let out = py.push(&[], &["frozen/v1"]);
    py.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("frozen/v1: rejected"),
        "{}",
        py.describe(&out)
    );
    assert_eq!(
        w.target().rev_parse("frozen/v1").as_deref(),
        Some(frozen.as_str())
    );

    // One denied ref fails the whole push: the allowed one is not applied either.
    w.local.commit("app/a").timestamp(T0 + 4).run();
    let out = py.push(&[], &["app/a", "secret/x"]);
    py.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("app/a: rejected: not applied because another ref was denied"),
        "{}",
        py.describe(&out)
    );
    assert_eq!(w.target().rev_parse("app/a"), None);
    assert_eq!(w.target().refs(), ["frozen/v1"]);
    let audit = w.audit();
    let denied = audit.iter().filter(|r| r["decision"] == "deny").count();
    assert!(denied >= 3, "{audit:#?}");
}

#[test]
fn missing_local_refs_fail_before_connecting() {
    let w = World::new(&[]);
    let py = PythonPush::new(&w);
    w.local.commit("app/a").timestamp(T0 + 1).run();
    let out = py.push(&[], &["app/a", "app/zz", "app/yy"]);
    py.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("Refs app/yy app/zz not found in"),
        "{}",
        py.describe(&out)
    );
    assert!(w.target().refs().is_empty());
    assert!(w.audit().is_empty());
    // It never connected: the key was never used.
    let keys = w.gw.ok_json(&["key", "list", "--json"]);
    assert!(keys[0]["last_used_at"].is_null(), "{keys}");
    // The local repo is untouched by a failed push.
    assert!(run(w.local.ostree().args(["rev-parse", "app/zz"])).status.code() != Some(0));
}
