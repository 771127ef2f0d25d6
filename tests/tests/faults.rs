//! Crash and fault tests: `kill -9` the gateway at each phase of a push, an injected libostree
//! failure right before the ref move, and `kill -9` of the pusher mid-transfer.
//!
//! A phase is hit deterministically with the gateway's test-only hook
//! (`OSTREE_GATEWAY_TEST_PAUSE=<phase>`, see `gateway/src/receive/testhook.rs`): the first push
//! to reach the phase writes `<state>/paused-<phase>` and waits while that file exists. Each
//! test then kills the gateway (SIGKILL, no shutdown), restarts it without the hook on the
//! same state dir and checks: the ref did not move (or, killed during the summary, moved
//! completely), `ostree fsck` is clean, no audit row is left `in_progress` (the interrupted
//! push's row is `failed`), the staging area is empty, and the same push then succeeds.
//! Every phase is run through the native protocol (our `ostree-push`) and the classic tunnel
//! (OpenSSH `-R` + `ostree-receive-1`).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::pusher::ostree_push;
use e2e_tests::server::{OpenSsh, Served};
use e2e_tests::world::{World, T0};
use e2e_tests::{describe, noise, run, run_ok};
use serde_json::Value;

const PAUSE: &str = "OSTREE_GATEWAY_TEST_PAUSE";
const REF: &str = "app/org.example.App/x86_64/stable";
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    /// `ostree-push` (native protocol over the SSH exec channel).
    Native,
    /// OpenSSH control master, `-O forward -R`, `ostree-receive-1 main URL REF`.
    Tunnel,
}

fn audit(w: &World) -> Vec<Value> {
    w.gw.ok_json(&["audit", "--json", "--limit", "100000"])
        .as_array()
        .expect("audit array")
        .clone()
}

/// Rows (newest first) whose new_rev is `rev`.
fn rows_for(w: &World, rev: &str) -> Vec<Value> {
    audit(w)
        .into_iter()
        .filter(|r| r["new_rev"].as_str() == Some(rev))
        .collect()
}

fn states(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["state"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// kill -9 the running gateway and start a new one on the same state dir with `env`.
fn restart(w: &mut World, env: &[(&str, &str)]) {
    w.served.kill9();
    w.served = Served::start_with(&w.gw, env);
}

fn marker(w: &World, phase: &str) -> PathBuf {
    w.gw.state_dir().join(format!("paused-{phase}"))
}

fn staging_entries(w: &World) -> Vec<PathBuf> {
    match std::fs::read_dir(w.gw.repos_root().join(".staging")) {
        Ok(entries) => entries.map(|e| e.expect("staging entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// `ostree-push … main REF` (native first, as our client always does).
fn native_push(w: &World) -> Command {
    let mut command = ostree_push(&w.gw, &w.served, &w.alice, "alice", &w.local.path, "main");
    command.arg(REF);
    command
}

/// Starts a push of REF in the background; the OpenSsh (tunnel) must outlive the child.
fn start_push(w: &World, via: Via) -> (Child, Option<OpenSsh>) {
    match via {
        Via::Native => {
            let child = native_push(w)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ostree-push");
            (child, None)
        }
        Via::Tunnel => {
            let mut ssh = w.ssh();
            ssh.start_master();
            let port = ssh.forward(w.http.port);
            let child = ssh
                .ssh()
                .arg(ssh.target())
                .arg(format!("ostree-receive-1 main http://127.0.0.1:{port} {REF}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ssh");
            (child, Some(ssh))
        }
    }
}

/// A push in the foreground; returns its output.
fn push_now(w: &World, via: Via) -> Output {
    match via {
        Via::Native => run(&mut native_push(w)),
        Via::Tunnel => w.push(&format!("main URL {REF}")),
    }
}

fn push_ok(w: &World, via: Via) -> Output {
    let out = push_now(w, via);
    assert_eq!(
        out.status.code(),
        Some(0),
        "push via {via:?} failed: {}\n--- gateway log\n{}",
        describe(&out),
        w.served.log_text()
    );
    out
}

/// Waits until the gateway writes the pause marker of `phase`; fails if the push ends first.
fn wait_paused(w: &World, phase: &str, pusher: &mut Child) {
    let marker = marker(w, phase);
    let deadline = Instant::now() + WAIT;
    while !marker.exists() {
        if let Some(status) = pusher.try_wait().expect("try_wait") {
            panic!(
                "the push ended ({status}) before pausing at {phase}\n--- gateway log\n{}",
                w.served.log_text()
            );
        }
        assert!(Instant::now() < deadline, "no pause at {phase} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for a process to end; returns its output.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// World with a served gateway, REF pushed once (base), and a second commit made locally.
fn world_with_base(via: Via) -> (World, String, String) {
    let w = World::new(&[]);
    let base = w.local.commit(REF).file("a", "base").timestamp(T0).run();
    push_ok(&w, via);
    assert_eq!(w.target().rev_parse(REF).as_deref(), Some(base.as_str()));
    let next = w
        .local
        .commit(REF)
        .file("a", "next")
        .file("b/c", "more")
        .timestamp(T0 + 100)
        .run();
    (w, base, next)
}

/// The invariants after a crash and restart: where REF is, fsck, no row in progress, no
/// staging leftovers.
fn assert_recovered(w: &World, expected: &str) {
    assert_eq!(
        w.target().rev_parse(REF).as_deref(),
        Some(expected),
        "REF after the restart"
    );
    w.target().fsck();
    let rows = audit(w);
    assert!(
        rows.iter().all(|r| r["state"] != "in_progress"),
        "audit rows left in progress after the restart: {rows:#?}"
    );
    assert_eq!(staging_entries(w), Vec::<PathBuf>::new(), "staging leftovers");
}

fn kill_at(phase: &str, via: Via) {
    let (mut w, base, next) = world_with_base(via);
    restart(&mut w, &[(PAUSE, phase)]);

    let (mut pusher, ssh) = start_push(&w, via);
    wait_paused(&w, phase, &mut pusher);
    // Where the push stands when the gateway dies.
    let (rows_while_paused, ref_while_paused, staged) = (
        states(&rows_for(&w, &next)),
        w.target().rev_parse(REF),
        staging_entries(&w).len(),
    );
    match phase {
        "metadata" => {
            assert!(rows_while_paused.is_empty(), "{rows_while_paused:?}");
            assert_eq!(staged, 0);
        }
        "transfer" | "before-update" => {
            assert_eq!(rows_while_paused, ["in_progress"]);
            assert_eq!(staged, 1, "the push's staging repo exists");
        }
        "summary" => assert_eq!(rows_while_paused, ["accepted"]),
        _ => unreachable!(),
    }
    let moved = phase == "summary";
    let expected = if moved { &next } else { &base };
    assert_eq!(ref_while_paused.as_deref(), Some(expected.as_str()));

    w.served.kill9();
    let out = finish(pusher, "the pusher after the gateway died");
    if !moved {
        assert!(!out.status.success(), "push reported success: {}", describe(&out));
    }
    drop(ssh);
    std::fs::remove_file(marker(&w, phase)).expect("remove the marker");

    w.served = Served::start(&w.gw);
    assert_recovered(&w, expected);
    let rows = states(&rows_for(&w, &next));
    match phase {
        "metadata" => assert!(rows.is_empty(), "{rows:?}"),
        "transfer" | "before-update" => {
            assert_eq!(rows, ["failed"]);
            let log = w.served.log_text();
            assert!(
                log.contains("marked audit rows left in progress by a previous run as failed"),
                "{log}"
            );
            assert!(
                log.contains("removed staging repos left by a previous run"),
                "{log}"
            );
        }
        _ => assert_eq!(rows, ["accepted"]),
    }

    // The same push now goes through (killed during the summary: REF is already up to date).
    push_ok(&w, via);
    assert_eq!(w.target().rev_parse(REF).as_deref(), Some(next.as_str()));
    w.target().fsck();
    let rows = states(&rows_for(&w, &next));
    assert_eq!(rows.first().map(String::as_str), Some("accepted"), "{rows:?}");
    assert!(audit(&w).iter().all(|r| r["state"] != "in_progress"));
    if moved {
        report_summary(&w, &next);
    }
}

/// Killed during the summary regeneration, the refs moved; the restarted gateway finds the
/// summary stale at startup and regenerates it.
fn report_summary(w: &World, next: &str) {
    let out = run(w.target().ostree().args(["summary", "--view"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(next),
        "summary lists the new commit after the restart: {text}"
    );
}

#[test]
fn kill9_fetching_commit_metadata_native() {
    kill_at("metadata", Via::Native);
}

#[test]
fn kill9_fetching_commit_metadata_tunnel() {
    kill_at("metadata", Via::Tunnel);
}

#[test]
fn kill9_mid_object_transfer_native() {
    kill_at("transfer", Via::Native);
}

#[test]
fn kill9_mid_object_transfer_tunnel() {
    kill_at("transfer", Via::Tunnel);
}

#[test]
fn kill9_right_before_the_ref_move_native() {
    kill_at("before-update", Via::Native);
}

#[test]
fn kill9_right_before_the_ref_move_tunnel() {
    kill_at("before-update", Via::Tunnel);
}

#[test]
fn kill9_during_summary_regeneration_native() {
    kill_at("summary", Via::Native);
}

#[test]
fn kill9_during_summary_regeneration_tunnel() {
    kill_at("summary", Via::Tunnel);
}

/// libostree fails right before its transaction commits (`OSTREE_REPO_TEST_ERROR=pre-commit`
/// in the gateway's environment): the push fails cleanly, nothing moves, the row is failed.
/// Native: that is the ref-move transaction. Tunnel: libostree's pull into the staging repo
/// commits a transaction of its own, so the failure comes there, earlier.
#[test]
fn injected_failure_before_the_ref_move() {
    for via in [Via::Native, Via::Tunnel] {
        let (mut w, base, next) = world_with_base(via);
        restart(&mut w, &[("OSTREE_REPO_TEST_ERROR", "pre-commit")]);
        let out = push_now(&w, via);
        assert!(!out.status.success(), "{via:?}: {}", describe(&out));
        // Still running: the failure is reported, not a crash.
        assert!(
            run_ok(w.gw.command().args(["audit", "--json"])).contains("failed"),
            "{via:?}"
        );
        let rows = rows_for(&w, &next);
        assert_eq!(states(&rows), ["failed"], "{via:?}");
        let reason = rows[0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("PRE_COMMIT"), "{via:?}: {reason}");
        eprintln!("{via:?}: {reason}");
        assert_recovered(&w, &base);
        restart(&mut w, &[]);
        assert_recovered(&w, &base);
        push_ok(&w, via);
        assert_eq!(w.target().rev_parse(REF).as_deref(), Some(next.as_str()));
        assert_eq!(states(&rows_for(&w, &next)), ["accepted", "failed"], "{via:?}");
        w.target().fsck();
    }
}

/// `kill -9` of `ostree-push` mid-transfer: the gateway settles the row as failed within a
/// few seconds, nothing moves, staging is cleaned, and the next push succeeds.
#[test]
fn kill9_pusher_mid_transfer() {
    let (mut w, base, _) = world_with_base(Via::Native);
    let mut commit = w.local.commit(REF).timestamp(T0 + 200);
    // 32 distinct MiB of noise: more than every buffer on the way (the SSH window of 8 MiB,
    // the sockets' queues). Measured here: the pusher got 9.4 MB out before it blocked.
    for i in 0..32 {
        commit = commit.file(&format!("big/{i}"), noise(i + 1, 1 << 20));
    }
    let big = commit.run();
    restart(&mut w, &[(PAUSE, "transfer")]);
    let (mut pusher, _) = start_push(&w, Via::Native);
    wait_paused(&w, "transfer", &mut pusher);
    assert_eq!(states(&rows_for(&w, &big)), ["in_progress"]);
    pusher.kill().expect("kill -9 ostree-push");
    let status = pusher.wait().expect("reap ostree-push");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    // The premise: the pusher died before it had handed every object to its connection (it
    // reports "Sending objects: N/N" the moment it has). Twelve equal-seeded MiB once fitted
    // in the buffers and the gateway rightly took the whole push.
    let mut said = String::new();
    std::io::Read::read_to_string(&mut pusher.stderr.take().expect("stderr"), &mut said)
        .expect("read the pusher's stderr");
    assert!(
        !said.lines().any(|l| {
            let counts = l
                .strip_prefix("Sending objects: ")
                .and_then(|r| r.split(',').next());
            counts
                .and_then(|c| c.split_once('/'))
                .is_some_and(|(done, all)| done == all)
        }),
        "the pusher sent everything before it was killed; raise the push size:\n{said}"
    );
    // Let the gateway go on: it finds the stream cut short.
    let resumed = Instant::now();
    std::fs::remove_file(marker(&w, "transfer")).expect("remove the marker");
    loop {
        let rows = states(&rows_for(&w, &big));
        if rows == ["failed"] && staging_entries(&w).is_empty() {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "row not settled 10 s after the pusher died: {rows:?}\n--- gateway log\n{}",
            w.served.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "audit row settled {:?} after the gateway resumed",
        resumed.elapsed()
    );
    assert_recovered(&w, &base);
    // The same gateway (the hook pauses only once) takes the same push.
    push_ok(&w, Via::Native);
    assert_eq!(w.target().rev_parse(REF).as_deref(), Some(big.as_str()));
    assert_eq!(states(&rows_for(&w, &big)), ["accepted", "failed"]);
    w.target().fsck();
}
