//! Operations on the published repo: the summary signed with the repo's configured GPG key
//! (verified by an ostree client with gpg-verify-summary), and static deltas generated after a
//! fast-forward, listed by the regenerated summary and usable by `ostree pull
//! --require-static-deltas`; `[summary] coalesce_ms` applied by a reload; a summary left
//! unsigned by a broken GnuPG home re-signed without a push (retry, restart).

use std::time::{Duration, Instant};

use e2e_tests::server::Served;
use e2e_tests::world::{assert_exit, stderr, World, T0};
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
    let client = verifying_client(&gw.work_dir(), &gpg.export_armored(&fpr), &target.path);
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
    let doubter_dir = gw.work_dir().join("doubter");
    std::fs::create_dir_all(&doubter_dir).unwrap();
    let doubter = verifying_client(&doubter_dir, &other.export_armored(&other_fpr), &target.path);
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

/// A World whose repo `main` signs its summary with a key from `<work>/signing`, a symlink to
/// a GnuPG home that [`SigningWorld::breaks`] replaces with a plain file (signing fails) and
/// [`SigningWorld::fix`] restores.
struct SigningWorld {
    w: World,
    gpg: GpgHome,
    fpr: String,
}

impl SigningWorld {
    fn new() -> SigningWorld {
        let gpg = GpgHome::new();
        let fpr = gpg.generate_key("Repo Signer <signer@example.com>");
        let w = World::with_config(&[], |gw| {
            let link = gw.work_dir().join("signing");
            std::os::unix::fs::symlink(gpg.path(), &link).unwrap();
            format!(
                "[repos.main]\nsummary_gpg_key = \"{fpr}\"\ngpg_homedir = \"{}\"\n",
                link.display()
            )
        });
        SigningWorld { w, gpg, fpr }
    }

    fn link(&self) -> std::path::PathBuf {
        self.w.gw.work_dir().join("signing")
    }

    fn breaks(&self) {
        std::fs::remove_file(self.link()).unwrap();
        std::fs::write(self.link(), "not a GnuPG home").unwrap();
    }

    fn fix(&self) {
        std::fs::remove_file(self.link()).unwrap();
        std::os::unix::fs::symlink(self.gpg.path(), self.link()).unwrap();
    }

    fn signature(&self) -> std::path::PathBuf {
        self.w.target().path.join("summary.sig")
    }

    /// Pushes a new commit to os/main while signing fails: accepted, summary unsigned.
    fn push_unsigned(&self, timestamp: i64) -> String {
        self.breaks();
        let commit = self.w.local.commit("os/main").timestamp(timestamp).run();
        let out = self.w.push("main URL os/main");
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("summary could not be regenerated"),
            "{}",
            stderr(&out)
        );
        assert!(
            !self.signature().exists(),
            "no signature while the home is broken"
        );
        commit
    }

    /// An ostree client trusting only the signer's key lists `commit` on os/main.
    fn assert_verified(&self, commit: &str) {
        let dir = tempfile::tempdir_in(self.w.gw.work_dir()).unwrap();
        let key = self.gpg.export_armored(&self.fpr);
        let client = verifying_client(dir.path(), &key, &self.w.target().path);
        let refs = run_ok(client.ostree().args(["remote", "refs", "origin"]));
        assert!(refs.contains("origin:os/main"), "{refs}");
        let summary = run_ok(self.w.target().ostree().args(["summary", "--view"]));
        assert!(summary.contains(commit), "{summary}");
    }
}

impl Drop for SigningWorld {
    fn drop(&mut self) {
        // The gateway's gpg-agent runs for the link's path, not the GpgHome's.
        let _ = std::process::Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.link())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

#[test]
fn unsigned_summary_is_re_signed_by_a_retry_once_gnupg_works() {
    let sw = SigningWorld::new();
    let commit = sw.push_unsigned(T0);
    sw.fix();
    // No push: the worker's retries (1 s, 2 s, 4 s… after the failure) sign it.
    wait_until("summary re-signed by a retry", || sw.signature().exists());
    sw.assert_verified(&commit);
    let log = sw.w.served.log_text();
    assert!(log.contains("retry_in_secs"), "{log}");
    assert!(
        log.contains("summary regenerated after an earlier failure"),
        "{log}"
    );
}

#[test]
fn unsigned_summary_is_re_signed_at_startup() {
    let mut sw = SigningWorld::new();
    let commit = sw.push_unsigned(T0);
    // Killed before any retry could succeed; fixed while it is down.
    sw.w.served.kill9();
    assert!(!sw.signature().exists());
    sw.fix();
    // Startup recovery runs before the gateway listens: signed by the time it is up.
    sw.w.served = Served::start(&sw.w.gw);
    assert!(sw.signature().exists(), "{}", sw.w.served.log_text());
    assert!(sw.w.served.log_text().contains("re-signed"));
    sw.assert_verified(&commit);
    // A fresh, signed summary is left alone at the next start.
    let signed_at = std::fs::metadata(sw.signature()).unwrap().modified().unwrap();
    sw.w.served.kill9();
    sw.w.served = Served::start(&sw.w.gw);
    assert!(
        !sw.w.served.log_text().contains("re-signed"),
        "{}",
        sw.w.served.log_text()
    );
    assert_eq!(
        std::fs::metadata(sw.signature()).unwrap().modified().unwrap(),
        signed_at
    );
    // A signature older than the summary is renewed.
    sw.w.served.kill9();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(T0 as u64);
    let file = std::fs::File::options().write(true).open(sw.signature()).unwrap();
    file.set_modified(old).unwrap();
    drop(file);
    sw.w.served = Served::start(&sw.w.gw);
    assert!(
        sw.w.served.log_text().contains("re-signed"),
        "{}",
        sw.w.served.log_text()
    );
    assert!(std::fs::metadata(sw.signature()).unwrap().modified().unwrap() > old);
    sw.assert_verified(&commit);
}

/// A bare-user repo in `dir` with remote `origin` = `target`, which requires a signed summary
/// and trusts only `key` (armored).
fn verifying_client(dir: &std::path::Path, key: &[u8], target: &std::path::Path) -> OstreeRepo {
    let client = OstreeRepo::init(&dir.join("client"), "bare-user");
    let pubkey = dir.join("signer.asc");
    std::fs::write(&pubkey, key).unwrap();
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
            .arg(format!("file://{}", target.display())),
    );
    client
}
