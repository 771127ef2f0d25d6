//! Configured limits hold against a pusher that exceeds them: object size, total push size,
//! sessions per user, and the depth of the fast-forward walk. Each: a clear error, no ref moved.

use e2e_tests::native::{Hostility, NativeClient, Outcome};
use e2e_tests::noise;
use e2e_tests::world::{assert_exit, stderr, World, T0};

/// Pushes `commit` to ref app/a of repo main over the native protocol.
fn push_ref(w: &World, commit: String) -> Outcome {
    NativeClient::connect(&w.ssh(), &w.local.path).push(
        "main",
        &[("app/a", Some(commit))],
        false,
        Hostility::default(),
    )
}

fn native_world(config: &'static str) -> World {
    World::with_config(
        &[&[
            "--repo",
            "main",
            "--ref",
            "**",
            "--user",
            "alice",
            "--allow",
            "create,update",
        ]],
        move |_| config.into(),
    )
}

#[test]
fn object_larger_than_the_limit_is_refused() {
    let w = native_world("[limits]\nmax_object_size = 4096\n");
    let c = w
        .local
        .commit("app/a")
        .file("big", noise(1, 200_000))
        .timestamp(T0)
        .run();
    let o = push_ref(&w, c);
    assert_eq!(o.exit, Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("larger than the limit of 4096 bytes"),
        "{}",
        o.stderr
    );
    assert!(w.target().refs().is_empty());
    w.target().fsck();
}

#[test]
fn push_larger_than_the_limit_is_refused() {
    let w = native_world("[limits]\nmax_push_size = 20000\n");
    let mut builder = w.local.commit("app/a").timestamp(T0);
    for i in 0..20 {
        builder = builder.file(&format!("f{i}"), noise(i, 3000));
    }
    let c = builder.run();
    let o = push_ref(&w, c);
    assert_eq!(o.exit, Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("push is larger than the limit of 20000 bytes"),
        "{}",
        o.stderr
    );
    assert!(w.target().refs().is_empty());
}

#[test]
fn sessions_beyond_the_per_user_limit_run_nothing() {
    let w = native_world("[server]\nmax_sessions_per_user = 1\n");
    let mut first = w.ssh();
    first.start_master();
    // A second connection of the same user (no master: ControlPath differs).
    let second = w.ssh();
    let out = second.exec("ostree-receive-1 main http://127.0.0.1:1 app/a");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("too many concurrent sessions for user \"alice\" (limit 1)"),
        "{}",
        stderr(&out)
    );
    // The first session still works.
    w.local.commit("app/a").timestamp(T0).run();
    assert_exit(&first.tunnel_push(&w.http, "main URL app/a"), 0);
}

#[test]
fn the_fast_forward_walk_is_bounded() {
    // With a depth of 2, a fast-forward over 4 new commits cannot be proven: it counts as a
    // force update, which no rule allows.
    let w = native_world("[limits]\nmax_ancestry_depth = 2\n");
    let base = w.local.commit("app/a").file("f", "0").timestamp(T0).run();
    let o = push_ref(&w, base);
    assert_eq!(o.exit, Some(0), "{}", o.stderr);
    let mut tip = String::new();
    for i in 1..=4 {
        tip = w
            .local
            .commit("app/a")
            .file("f", format!("{i}"))
            .timestamp(T0 + i)
            .run();
    }
    let o = push_ref(&w, tip.clone());
    assert_eq!(o.exit, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("no rule allows force"), "{}", o.stderr);
    // One commit ahead is within the bound.
    let w2 = native_world("[limits]\nmax_ancestry_depth = 2\n");
    let b = w2.local.commit("app/a").file("f", "0").timestamp(T0).run();
    push_ref(&w2, b);
    let n = w2.local.commit("app/a").file("f", "1").timestamp(T0 + 1).run();
    let o = push_ref(&w2, n);
    assert_eq!(o.exit, Some(0), "{}", o.stderr);
}

#[test]
fn a_trickling_native_pusher_is_cut_off() {
    let w = native_world("[limits]\nstall_timeout_secs = 2\nmin_transfer_rate = 1024\n");
    let c = w
        .local
        .commit("app/a")
        .file("big", noise(3, 50_000))
        .timestamp(T0)
        .run();
    let o = NativeClient::connect(&w.ssh(), &w.local.path).push(
        "main",
        &[("app/a", Some(c.clone()))],
        false,
        Hostility {
            trickle_large: true,
            ..Hostility::default()
        },
    );
    assert_eq!(o.exit, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("stalled or too slow"), "{}", o.stderr);
    assert!(w.target().refs().is_empty());
    w.target().fsck();
    let audit = w.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["state"], "failed", "{audit:?}");
    // At a fair pace the same push goes through.
    assert_eq!(push_ref(&w, c).exit, Some(0));
}
