//! Operations on the published repo: the summary signed with the repo's configured GPG key
//! (verified by an ostree client with gpg-verify-summary), and static deltas generated after a
//! fast-forward, listed by the regenerated summary and usable by `ostree pull
//! --require-static-deltas`; `[summary] coalesce_ms` applied by a reload.

use std::time::{Duration, Instant};

use e2e_tests::world::{assert_exit, World, T0};
use e2e_tests::{run, run_ok, GpgHome, OstreeRepo};

#[test]
fn signed_summary_and_static_deltas() {
    let gpg = GpgHome::new();
    let fpr = gpg.generate_key("Repo Signer <signer@example.com>");
    let w = World::with_config(&[], |_| {
        format!(
            "[summary]\ncoalesce_ms = 50\n\n[repos.main]\nsummary_gpg_key = \"{fpr}\"\ngpg_homedir = \"{}\"\nstatic_deltas = true\n",
            gpg.path().display()
        )
    });
    let (gw, local, http) = (&w.gw, &w.local, &w.http);
    let first = local
        .commit("os/main")
        .file("big", vec![7u8; 300_000])
        .file("x", "1")
        .timestamp(T0)
        .run();
    let mut ssh = w.ssh();
    assert_exit(&ssh.tunnel_push(http, "main URL os/main"), 0);
    let target = OstreeRepo::at(&gw.repos_root().join("main"));
    assert!(target.path.join("summary.sig").exists(), "summary signed");

    // A client that insists on a signed summary, trusting only the signer's key.
    let client = OstreeRepo::init(&gw.work_dir().join("client"), "bare-user");
    let pubkey = gw.work_dir().join("signer.asc");
    std::fs::write(&pubkey, gpg.export_armored(&fpr)).unwrap();
    run_ok(
        client
            .ostree()
            .args([
                "remote",
                "add",
                "--set=gpg-verify-summary=true",
                "--set=gpg-verify=false",
            ])
            .arg(format!("--gpg-import={}", pubkey.display()))
            .arg("origin")
            .arg(format!("file://{}", target.path.display())),
    );
    let refs = run_ok(client.ostree().args(["remote", "refs", "origin"]));
    assert!(refs.contains("origin:os/main"), "{refs}");
    run_ok(client.ostree().args(["pull", "origin", "os/main"]));
    assert_eq!(
        client.rev_parse("origin:os/main").as_deref(),
        Some(first.as_str())
    );

    // A wrong key: the same client setup without the signer's key refuses the summary.
    let other = GpgHome::new();
    let other_fpr = other.generate_key("Other <o@example.com>");
    let other_key = gw.work_dir().join("other.asc");
    std::fs::write(&other_key, other.export_armored(&other_fpr)).unwrap();
    let doubter = OstreeRepo::init(&gw.work_dir().join("doubter"), "bare-user");
    run_ok(
        doubter
            .ostree()
            .args([
                "remote",
                "add",
                "--set=gpg-verify-summary=true",
                "--set=gpg-verify=false",
            ])
            .arg(format!("--gpg-import={}", other_key.display()))
            .arg("origin")
            .arg(format!("file://{}", target.path.display())),
    );
    assert!(!run(doubter.ostree().args(["remote", "refs", "origin"]))
        .status
        .success());

    // A fast-forward: a delta first → second appears, and the client can use only deltas.
    let second = local
        .commit("os/main")
        .file("big", vec![7u8; 300_000])
        .file("x", "2")
        .timestamp(T0 + 10)
        .run();
    assert_exit(&ssh.tunnel_push(http, "main URL os/main"), 0);
    let mut listed = String::new();
    for _ in 0..200 {
        listed = run_ok(target.ostree().args(["static-delta", "list"]));
        if listed.contains(&second[..12]) || listed.contains(&second) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        listed
            .lines()
            .any(|l| !l.trim().is_empty() && !l.contains("(No static deltas)")),
        "delta listed: {listed}"
    );
    // The summary is regenerated after the delta (and still signed): retry until it lists it.
    let mut out = run(client
        .ostree()
        .args(["pull", "--require-static-deltas", "origin", "os/main"]));
    for _ in 0..50 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run(client
            .ostree()
            .args(["pull", "--require-static-deltas", "origin", "os/main"]));
    }
    assert!(out.status.success(), "{}", e2e_tests::describe(&out));
    assert_eq!(
        client.rev_parse("origin:os/main").as_deref(),
        Some(second.as_str())
    );
    client.fsck();
}

/// Generous bound for waits on the gateway's background work (a hang detector, not a timing
/// assertion: the work itself takes well under a second).
const WAIT: Duration = Duration::from_secs(120);

/// Polls `done` until it holds; panics naming `what` after [`WAIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn coalesce_ms_reload_releases_a_waiting_regeneration() {
    // An hour of coalescing: the push's summary regeneration waits (the refs already moved).
    let w = World::with_config(&[], |_| "[summary]\ncoalesce_ms = 3600000\n".to_string());
    let commit = w.local.commit("os/main").timestamp(T0).run();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = done.send(w.push("main URL os/main"));
        });
        // Settled `accepted`: the push's only remaining step is the summary, whose worker
        // started with the hour-long wait.
        wait_until("push accepted", || {
            w.audit().iter().any(|r| r["state"] == "accepted")
        });
        w.gw.write_config("[summary]\ncoalesce_ms = 0\n");
        w.served.signal("HUP");
        match result.recv_timeout(WAIT) {
            Ok(out) => assert_exit(&out, 0),
            Err(_) => {
                w.served.signal("KILL"); // ends the push, so the scope can end
                panic!("the push still waits for its summary after coalesce_ms = 0 was reloaded");
            }
        }
    });
    let summary = run_ok(w.target().ostree().args(["summary", "--view"]));
    assert!(summary.contains(&commit), "{summary}");
}
