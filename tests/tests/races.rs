//! Races and load: 32 `ostree-push` processes at once against one gateway.
//!
//! - Same ref, 3 rounds: every pusher has its own local repo holding a distinct fast-forward
//!   commit on the same parent. Exactly one push wins each round; every other one fails with
//!   "ref changed during push" (it read the ref before the winner moved it) or is denied as a
//!   non-fast-forward (it read it after). One audit row per attempt, none left in progress,
//!   and the ref ends on the winner's commit.
//! - Distinct refs of one repo: all 32 succeed.
//!
//! The gateway's peak RSS (VmHWM) after the load is printed and written to
//! `target/race-rss.txt`; only a sanity bound is asserted, never a timing.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::pusher::ostree_push;
use e2e_tests::server::Served;
use e2e_tests::world::T0;
use e2e_tests::{describe, Gateway, OstreeRepo, SshKeyPair};
use serde_json::Value;

const PUSHERS: usize = 32;
const ROUNDS: usize = 3;
const REF: &str = "race/main";
const WAIT: Duration = Duration::from_secs(120);

struct Fixture {
    gw: Gateway,
    served: Served,
    alice: SshKeyPair,
    /// One local repo per pusher, all cloned from the same base.
    locals: Vec<OstreeRepo>,
}

impl Fixture {
    fn new() -> Fixture {
        let gw = Gateway::new();
        // 32 concurrent sessions of one user: above the default per-user cap of 16.
        gw.write_config("[server]\nmax_sessions_per_user = 64\n");
        gw.ok(&["user", "add", "alice"]);
        let alice = SshKeyPair::generate(&gw.work_dir(), "alice", "alice@test");
        gw.ok(&[
            "key".as_ref(),
            "add".as_ref(),
            "alice".as_ref(),
            alice.public.as_os_str(),
        ]);
        gw.ok(&["repo", "add", "main", "--init"]);
        gw.ok(&[
            "rule",
            "add",
            "--repo",
            "main",
            "--ref",
            "race/**",
            "--user",
            "alice",
            "--allow",
            "create,update",
        ]);
        let served = Served::start(&gw);
        let base = OstreeRepo::init(&gw.work_dir().join("base"), "archive");
        base.commit(REF).file("who", "base").timestamp(T0).run();
        let fixture = Fixture {
            gw,
            served,
            alice,
            locals: Vec::new(),
        };
        let out = fixture.push(&base.path, &[REF]);
        assert!(out.status.success(), "base push: {}", describe(&out));
        let locals = parallel(PUSHERS, |i| {
            let local = OstreeRepo::init(&fixture.gw.work_dir().join(format!("p{i}")), "archive");
            pull_local(&local, &base.path, REF);
            local
        });
        Fixture { locals, ..fixture }
    }

    fn target(&self) -> OstreeRepo {
        OstreeRepo::at(&self.gw.repos_root().join("main"))
    }

    fn push_child(&self, local: &Path, refs: &[&str]) -> Child {
        ostree_push(&self.gw, &self.served, &self.alice, "alice", local, "main")
            .args(refs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ostree-push")
    }

    fn push(&self, local: &Path, refs: &[&str]) -> Output {
        wait_output(self.push_child(local, refs))
    }

    /// Starts one push per local repo (branch `refs(i)`), all at once; returns the outputs.
    fn push_all(&self, refs: impl Fn(usize) -> String) -> Vec<Output> {
        let children: Vec<Child> = self
            .locals
            .iter()
            .enumerate()
            .map(|(i, local)| self.push_child(&local.path, &[&refs(i)]))
            .collect();
        // Drain every child from its own thread so no pipe fills up.
        std::thread::scope(|s| {
            let handles: Vec<_> = children
                .into_iter()
                .map(|c| s.spawn(move || wait_output(c)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("waiter")).collect()
        })
    }

    fn audit(&self) -> Vec<Value> {
        self.gw
            .ok_json(&["audit", "--json", "--limit", "100000"])
            .as_array()
            .expect("audit array")
            .clone()
    }
}

fn pull_local(local: &OstreeRepo, from: &Path, refname: &str) {
    e2e_tests::run_ok(local.ostree().arg("pull-local").arg(from).arg(refname));
}

/// Runs `f(0..n)` on n threads; results in index order.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn({
                    let f = &f;
                    move || f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    })
}

/// Waits for a pusher and returns its output; one stuck past WAIT is killed (and fails).
fn wait_output(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(WAIT).is_err() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    });
    // Reads stdout and stderr to the end, then reaps.
    let output = child.wait_with_output().expect("pusher output");
    let _ = tx.send(());
    let _ = watchdog.join();
    output
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The gateway's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

#[test]
fn thirty_two_pushers_race_one_ref_then_push_distinct_refs() {
    let started = Instant::now();
    let f = Fixture::new();
    let mut attempts = 1; // the base push
    for round in 1..=ROUNDS {
        // Each pusher: a distinct fast-forward commit on the current value of REF.
        let parent = f.target().rev_parse(REF).expect("REF exists");
        let commits = parallel(PUSHERS, |i| {
            let local = &f.locals[i];
            assert_eq!(local.rev_parse(REF).as_deref(), Some(parent.as_str()));
            local
                .commit(REF)
                .file("who", format!("round {round} pusher {i}"))
                .timestamp(T0 + (round * 1000 + i) as i64)
                .run()
        });
        let outputs = f.push_all(|_| REF.to_string());
        attempts += PUSHERS;
        let winners: Vec<usize> = (0..PUSHERS).filter(|&i| outputs[i].status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one push must win, got {winners:?}\n{}",
            outputs.iter().map(describe).collect::<Vec<_>>().join("\n")
        );
        let winner = winners[0];
        let (mut changed, mut denied) = (0, 0);
        for (i, out) in outputs.iter().enumerate().filter(|(i, _)| *i != winner) {
            let t = text(out);
            if t.contains("ref changed during push") {
                changed += 1;
            } else if t.contains("no rule allows force") {
                denied += 1;
            } else {
                panic!("round {round}, pusher {i}: unexpected failure: {}", describe(out));
            }
        }
        eprintln!(
            "round {round}: pusher {winner} won; {changed} lost the compare-and-swap, \
             {denied} arrived after the move (not a fast-forward)"
        );
        assert_eq!(f.target().rev_parse(REF), Some(commits[winner].clone()));

        // Audit: one row per attempt so far, settled; this round's rows are its commits.
        let rows = f.audit();
        assert_eq!(rows.len(), attempts, "one audit row per attempt");
        assert!(rows.iter().all(|r| r["state"] != "in_progress"), "{rows:#?}");
        for (i, commit) in commits.iter().enumerate() {
            let mine: Vec<&Value> = rows
                .iter()
                .filter(|r| r["new_rev"].as_str() == Some(commit))
                .collect();
            assert_eq!(mine.len(), 1, "pusher {i}: one row for its commit: {mine:#?}");
            if i == winner {
                assert_eq!(mine[0]["state"], "accepted");
            } else {
                assert!(
                    mine[0]["state"] == "failed" || mine[0]["state"] == "rejected",
                    "{:#}",
                    mine[0]
                );
            }
        }
        if round < ROUNDS {
            let target = f.target().path;
            parallel(PUSHERS, |i| pull_local(&f.locals[i], &target, REF));
        }
    }
    f.target().fsck();

    // Distinct refs: all succeed at once.
    let branches: Vec<String> = (0..PUSHERS).map(|i| format!("race/r{i}")).collect();
    let commits = parallel(PUSHERS, |i| {
        f.locals[i]
            .commit(&branches[i])
            .file("who", format!("pusher {i}"))
            .timestamp(T0 + 10_000)
            .run()
    });
    let outputs = f.push_all(|i| branches[i].clone());
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "pusher {i}: {}", describe(out));
        assert_eq!(f.target().rev_parse(&branches[i]), Some(commits[i].clone()));
    }
    let rows = f.audit();
    assert_eq!(rows.len(), attempts + PUSHERS);
    assert!(rows.iter().all(|r| r["state"] != "in_progress"));
    assert_eq!(
        rows.iter().filter(|r| r["state"] == "accepted").count(),
        1 + ROUNDS + PUSHERS
    );
    f.target().fsck();

    let peak = peak_rss_kib(f.served.pid());
    let line = format!(
        "gateway peak RSS (VmHWM) after {ROUNDS} rounds of {PUSHERS} racing pushers and \
         {PUSHERS} pushers to distinct refs: {peak} kB ({:.1} MiB); test took {:?}",
        peak as f64 / 1024.0,
        started.elapsed()
    );
    eprintln!("{line}");
    let _ = std::fs::write(target_dir().join("race-rss.txt"), format!("{line}\n"));
    assert!(peak < 1 << 20, "peak RSS above 1 GiB: {peak} kB");
}
