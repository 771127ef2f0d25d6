//! End-to-end tests of the `ostree-push` client against a real `ostree-gateway serve`.
//!
//! Each test starts its own gateway (temp state dir, user alice with an ed25519 key, repo
//! `main`, a rule allowing create/update of every ref), makes a local archive repo with the
//! `ostree` CLI, points HOME at a temp dir holding `.ssh/known_hosts` (and usually the key as
//! `.ssh/id_ed25519`), and runs the built `target/debug/ostree-push`. Helpers are private to
//! this file on purpose.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const PUSH_TIMEOUT: Duration = Duration::from_secs(120);

fn bin(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(Path::parent).map(Path::to_path_buf))
    {
        candidates.push(dir.join(name));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug")
            .join(name),
    );
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!("{name} not built (looked at {candidates:?}): run `cargo build --workspace` first")
        })
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command`, killing it after `limit`.
fn run_limited(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{command:?} timed out: {}", describe(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn run_ok(command: &mut Command) -> String {
    let output = run_limited(command, PUSH_TIMEOUT);
    assert!(output.status.success(), "{command:?}: {}", describe(&output));
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn ostree(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c
}

fn rev_parse(repo: &Path, name: &str) -> Option<String> {
    let out = run_limited(ostree(repo).args(["rev-parse", name]), PUSH_TIMEOUT);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn keygen(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"])
            .arg(path),
    );
}

/// A gateway serving a temp state dir, a local archive repo and a HOME for the pusher.
struct Fixture {
    dir: TempDir,
    child: Child,
    port: u16,
    /// Commit timestamps: strictly increasing (the gateway wants newer commits).
    clock: std::cell::Cell<i64>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new().prefix("push-e2e-").tempdir().unwrap();
        std::fs::write(dir.path().join("gateway.toml"), "").unwrap();
        let key = dir.path().join("home/.ssh/id_ed25519");
        keygen(&key);
        let admin = |args: &[&str]| {
            let mut c = Command::new(bin("ostree-gateway"));
            c.arg("--state-dir").arg(dir.path().join("state")).args(args);
            c.env("OSTREE_GATEWAY_CONFIG", dir.path().join("gateway.toml"))
                .env_remove("OSTREE_GATEWAY_STATE_DIR")
                .env_remove("RUST_LOG");
            run_ok(&mut c);
        };
        admin(&["user", "add", "alice"]);
        admin(&["key", "add", "alice", key.with_extension("pub").to_str().unwrap()]);
        admin(&["repo", "add", "main", "--init"]);
        admin(&["repo", "add", "locked", "--init"]);
        let rule: Vec<&str> = "rule add --repo main --ref ** --user alice --allow create,update,delete"
            .split(' ')
            .collect();
        admin(&rule);
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let mut child = Command::new(bin("ostree-gateway"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("OSTREE_GATEWAY_CONFIG", dir.path().join("gateway.toml"))
            .env_remove("OSTREE_GATEWAY_STATE_DIR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start gateway");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("ostree-gateway listening on ") {
                        break addr.rsplit(':').next().unwrap().parse().unwrap();
                    }
                }
                _ => panic!(
                    "gateway did not start: {}",
                    std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default()
                ),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let fixture = Fixture {
            dir,
            child,
            port,
            clock: std::cell::Cell::new(1_700_000_000),
        };
        run_ok(ostree(&fixture.local()).args(["init", "--mode=archive"]));
        std::fs::write(fixture.known_hosts(), format!("{}\n", fixture.known_hosts_line())).unwrap();
        fixture
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn local(&self) -> PathBuf {
        self.path("local")
    }
    fn home(&self) -> PathBuf {
        self.path("home")
    }
    fn known_hosts(&self) -> PathBuf {
        self.path("home/.ssh/known_hosts")
    }
    fn remote_repo(&self, name: &str) -> PathBuf {
        self.path("state/repos").join(name)
    }
    /// The commit of `name` in the gateway's repo `main`.
    fn remote(&self, name: &str) -> Option<String> {
        rev_parse(&self.remote_repo("main"), name)
    }
    fn host_pub(&self) -> String {
        std::fs::read_to_string(self.path("state/host_keys/ssh_host_ed25519_key.pub")).unwrap()
    }
    fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_pub().trim())
    }
    fn host_fingerprint(&self) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(self.path("state/host_keys/ssh_host_ed25519_key.pub")),
        );
        out.split_whitespace().nth(1).unwrap().to_string()
    }
    fn dest(&self, repo: &str) -> String {
        format!("ssh://alice@127.0.0.1:{}/{repo}", self.port)
    }

    /// Commits `files` (name, contents) to `branch` of the local repo; returns the checksum.
    fn commit(&self, branch: &str, files: &[(&str, &str)]) -> String {
        let tree = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            std::fs::write(tree.path().join(name), contents).unwrap();
        }
        self.clock.set(self.clock.get() + 60);
        run_ok(
            ostree(&self.local())
                .args(["commit", &format!("--branch={branch}"), "-s", branch])
                .arg(format!("--timestamp=@{}", self.clock.get()))
                .arg(format!("--tree=dir={}", tree.path().display())),
        );
        rev_parse(&self.local(), branch).unwrap()
    }

    /// `ostree-push --repo LOCAL ARGS…` with HOME set, no agent.
    fn push_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("ostree-push"));
        c.arg("--repo")
            .arg(self.local())
            .args(args)
            .env("HOME", self.home())
            .env("USER", "alice")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("OSTREE_REPO")
            .env_remove("RUST_LOG");
        c
    }
    fn push(&self, args: &[&str]) -> Output {
        run_limited(&mut self.push_command(args), PUSH_TIMEOUT)
    }
    fn push_ok(&self, args: &[&str]) -> Output {
        let out = self.push(args);
        assert_eq!(out.status.code(), Some(0), "push {args:?}: {}", describe(&out));
        out
    }
    fn push_code(&self, args: &[&str], code: i32) -> Output {
        let out = self.push(args);
        assert_eq!(out.status.code(), Some(code), "push {args:?}: {}", describe(&out));
        out
    }
}

/// Asserts that stdout or stderr of `out` contains `needle`.
fn must_show(out: &Output, needle: &str) {
    let all = format!("{}{}", stdout(out), stderr(out));
    assert!(all.contains(needle), "{needle:?} not shown: {}", describe(out));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn first_push_preserves_the_commit_and_fsck_is_clean() {
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "hello"), ("b", "world")]);
    let out = f.push_ok(&[&f.dest("main"), "os/main"]);
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
    run_ok(ostree(&f.remote_repo("main")).arg("fsck"));
    let table = stdout(&out);
    assert!(table.contains("os/main") && table.contains("created"), "{table}");
    assert!(table.contains(&commit[..12]), "{table}");
}

#[test]
fn incremental_then_noop_push() {
    let f = Fixture::new();
    let first = f.commit("os/main", &[("a", "one")]);
    f.push_ok(&[&f.dest("main"), "os/main"]);
    let second = f.commit("os/main", &[("a", "two"), ("c", "new")]);
    let out = f.push_ok(&[&f.dest("main"), "os/main"]);
    assert_eq!(f.remote("os/main").as_deref(), Some(second.as_str()));
    must_show(&out, "updated");
    must_show(&out, &first[..12]);
    run_ok(ostree(&f.remote_repo("main")).arg("fsck"));
    let out = f.push_ok(&[&f.dest("main"), "os/main"]);
    must_show(&out, "up to date");
    assert_eq!(f.remote("os/main").as_deref(), Some(second.as_str()));
}

#[test]
fn several_refs_at_once() {
    let f = Fixture::new();
    let a = f.commit("app/a", &[("a", "a")]);
    let b = f.commit("app/b", &[("b", "b")]);
    f.commit("app/c", &[("c", "c")]);
    f.push_ok(&[&f.dest("main"), "app/b", "app/a"]);
    let remote = f.remote_repo("main");
    assert_eq!(rev_parse(&remote, "app/a").as_deref(), Some(a.as_str()));
    assert_eq!(rev_parse(&remote, "app/b").as_deref(), Some(b.as_str()));
    assert_eq!(rev_parse(&remote, "app/c"), None, "an unnamed ref was pushed");
}

#[test]
fn all_refs_when_none_named_but_not_metadata_refs() {
    let f = Fixture::new();
    let x = f.commit("x", &[("x", "x")]);
    let y = f.commit("y/z", &[("y", "y")]);
    f.commit("appstream/x86_64", &[("s", "s")]);
    f.commit("ostree-metadata", &[("m", "m")]);
    let summary_before = f.local().join("summary").exists();
    let out = f.push_ok(&[&f.dest("main"), "--json"]);
    let remote = f.remote_repo("main");
    assert_eq!(rev_parse(&remote, "x").as_deref(), Some(x.as_str()));
    assert_eq!(rev_parse(&remote, "y/z").as_deref(), Some(y.as_str()));
    assert_eq!(rev_parse(&remote, "appstream/x86_64"), None);
    assert_eq!(rev_parse(&remote, "ostree-metadata"), None);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = json["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "y/z"]);
    assert_eq!(
        f.local().join("summary").exists(),
        summary_before,
        "the local repo was written to"
    );
}

#[test]
fn missing_local_refs_are_listed_and_nothing_connects() {
    let f = Fixture::new();
    f.commit("os/main", &[("a", "a")]);
    let out = f.push_code(&[&f.dest("main"), "zeta", "os/main", "alpha"], 1);
    must_show(&out, "error: refs not found in local repo: alpha, zeta");
    assert_eq!(f.remote("os/main"), None);
}

#[test]
fn unknown_host_is_refused_with_its_fingerprint() {
    let f = Fixture::new();
    f.commit("os/main", &[("a", "a")]);
    std::fs::write(f.known_hosts(), "").unwrap();
    let out = f.push_code(&[&f.dest("main"), "os/main"], 1);
    let err = stderr(&out);
    assert!(err.contains(&f.host_fingerprint()), "{err}");
    assert!(
        err.contains("StrictHostKeyChecking=accept-new") && err.contains("ssh-keyscan"),
        "{err}"
    );
    assert_eq!(f.remote("os/main"), None);
    assert_eq!(
        std::fs::read_to_string(f.known_hosts()).unwrap(),
        "",
        "learned without asking"
    );
}

#[test]
fn changed_host_key_is_refused() {
    let f = Fixture::new();
    f.commit("os/main", &[("a", "a")]);
    let other = f.path("other_host_key");
    keygen(&other);
    let fake = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let fake: Vec<&str> = fake.split_whitespace().collect();
    std::fs::write(
        f.known_hosts(),
        format!("[127.0.0.1]:{} {} {}\n", f.port, fake[0], fake[1]),
    )
    .unwrap();
    for extra in [None, Some("StrictHostKeyChecking=accept-new")] {
        let mut args = vec![f.dest("main"), "os/main".to_string()];
        if let Some(o) = extra {
            args.extend(["-o".to_string(), o.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = f.push_code(&args, 1);
        let err = stderr(&out);
        assert!(err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{err}");
        assert!(err.contains(&f.host_fingerprint()), "{err}");
    }
    assert_eq!(f.remote("os/main"), None);
}

#[test]
fn accept_new_learns_the_host_key() {
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "a")]);
    std::fs::remove_file(f.known_hosts()).unwrap();
    let out = f.push_ok(&[
        &f.dest("main"),
        "os/main",
        "-o",
        "StrictHostKeyChecking=accept-new",
    ]);
    must_show(&out, "Permanently added");
    let learned = std::fs::read_to_string(f.known_hosts()).unwrap();
    let host_pub = f.host_pub();
    let parts: Vec<&str> = host_pub.split_whitespace().collect();
    let expected = format!("[127.0.0.1]:{} {} {}", f.port, parts[0], parts[1]);
    assert!(
        learned.lines().any(|l| l.starts_with(&expected)),
        "{learned:?} lacks {expected:?}"
    );
    // Now known: a plain push works.
    f.push_ok(&[&f.dest("main"), "os/main"]);
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
}

/// `ssh-agent -D -a SOCK`, killed on drop.
struct Agent(Child);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_only_authentication() {
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "a")]);
    // Move the key out of ~/.ssh: only the agent holds it.
    let key = f.path("agent_key");
    std::fs::rename(f.path("home/.ssh/id_ed25519"), &key).unwrap();
    std::fs::remove_file(f.path("home/.ssh/id_ed25519.pub")).unwrap();
    let out = f.push_code(&[&f.dest("main"), "os/main"], 1);
    must_show(&out, "permission denied");

    let sock = f.path("agent.sock");
    let agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent"),
    );
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssh-agent did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run_ok(
        Command::new("ssh-add")
            .arg("-q")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &sock),
    );
    let out = run_limited(
        f.push_command(&[&f.dest("main"), "os/main", "-v"])
            .env("SSH_AUTH_SOCK", &sock),
        PUSH_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe(&out));
    must_show(&out, "agent key");
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
    drop(agent);
}

#[test]
fn dry_run_moves_nothing() {
    // The dry run is the gateway's first pull on purpose: a dry run after an earlier pull in
    // the same gateway process sometimes hangs inside libostree (gateway issue, reported).
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "a")]);
    f.commit("os/new", &[("n", "n")]);
    let out = f.push_ok(&["-n", &f.dest("main"), "os/main", "os/new", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["refs"][0]["status"], "dry-run", "{json}");
    assert_eq!(json["refs"][1]["status"], "dry-run", "{json}");
    assert_eq!(f.remote("os/main"), None);
    assert_eq!(f.remote("os/new"), None);
    // The objects were checked but nothing moved: a real push still creates.
    let out = f.push_ok(&[&f.dest("main"), "os/main"]);
    must_show(&out, "created");
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
}

#[test]
fn json_report() {
    let f = Fixture::new();
    let a = f.commit("a", &[("a", "a")]);
    f.push_ok(&[&f.dest("main"), "a"]);
    let b = f.commit("b", &[("b", "b")]);
    let out = f.push_ok(&["--json", &f.dest("main"), "a", "b"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", describe(&out)));
    assert_eq!(json["dest"], f.dest("main"));
    assert_eq!(json["exit_code"], 0);
    assert_eq!(
        json["repo"],
        std::fs::canonicalize(f.local()).unwrap().to_str().unwrap()
    );
    let refs = json["refs"].as_array().unwrap();
    assert_eq!(refs.len(), 2, "{json}");
    assert_eq!(refs[0]["ref"], "a");
    assert_eq!(refs[0]["status"], "up-to-date");
    assert_eq!(refs[0]["new"], a.as_str());
    assert_eq!(refs[1]["ref"], "b");
    assert_eq!(refs[1]["status"], "created");
    assert_eq!(refs[1]["new"], b.as_str());
    assert!(refs[1]["old"].is_null());
}

#[test]
fn denied_push_shows_the_reason() {
    let f = Fixture::new();
    f.commit("os/main", &[("a", "a")]);
    let out = f.push_code(&[&f.dest("locked"), "os/main"], 1);
    must_show(&out, "rejected: no rule allows");
    assert_eq!(rev_parse(&f.remote_repo("locked"), "os/main"), None);
    let out = f.push_code(&["--json", &f.dest("locked"), "os/main"], 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["refs"][0]["status"], "rejected");
    assert!(
        json["refs"][0]["reason"].as_str().unwrap().contains("no rule"),
        "{json}"
    );
}

#[test]
fn command_fallback_on_127() {
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "a")]);
    let dest = f.dest("main");
    let out = f.push_code(
        &[
            "--command",
            "bogus-receive",
            "--command",
            "nope",
            &dest,
            "os/main",
        ],
        1,
    );
    must_show(&out, "Could not find commands bogus-receive, nope on server");
    assert_eq!(f.remote("os/main"), None);
    f.push_ok(&[
        "--command",
        "bogus-receive",
        "--command",
        "ostree-receive-1",
        &dest,
        "os/main",
    ]);
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
}

#[test]
fn bad_scheme_refused_and_deletion_over_the_native_protocol() {
    let f = Fixture::new();
    f.commit("os/main", &[("a", "a")]);
    let out = f.push(&[&format!("http://127.0.0.1:{}/main", f.port), "os/main"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    must_show(&out, "Destination scheme \"http\" not allowed");
    f.push_ok(&[&f.dest("main"), "os/main"]);
    let out = f.push_ok(&[&f.dest("main"), ":os/main", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refs"][0]["status"], "deleted", "{report}");
    let out = f.push_code(&[&f.dest("main"), ":os/main"], 1);
    must_show(&out, "does not exist");
    // The classic tunnel cannot delete: naming a classic command says so.
    let out = f.push_code(&[&f.dest("main"), ":os/main", "--command", "ostree-receive-1"], 1);
    must_show(&out, "native push protocol");
}

#[test]
fn ssh_config_alias_and_unknown_options() {
    let f = Fixture::new();
    let commit = f.commit("os/main", &[("a", "a")]);
    std::fs::write(
        f.path("home/.ssh/config"),
        format!("Host gw\n  HostName 127.0.0.1\n  Port {}\n  User alice\n", f.port),
    )
    .unwrap();
    let out = run_limited(
        f.push_command(&["gw:main", "os/main", "-o", "Frobnicate=yes"])
            .env("USER", "nobody"),
        PUSH_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe(&out));
    must_show(&out, "Frobnicate");
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
}

#[test]
fn bare_user_local_repo_pushes_over_the_native_protocol() {
    // The tunnel can only serve archive repos; the native protocol sends content objects of
    // other modes as uncompressed content streams, verified and stored by the gateway.
    let f = Fixture::new();
    std::fs::remove_dir_all(f.local()).unwrap();
    std::fs::create_dir_all(f.local()).unwrap();
    run_ok(ostree(&f.local()).args(["init", "--mode=bare-user"]));
    let commit = f.commit("os/main", &[("a", "alpha"), ("b", "beta")]);
    let out = f.push_ok(&[&f.dest("main"), "os/main", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refs"][0]["status"], "created", "{report}");
    assert_eq!(f.remote("os/main").as_deref(), Some(commit.as_str()));
    run_ok(ostree(&f.remote_repo("main")).arg("fsck"));
    // The tunnel is refused for such a repo, with the reason.
    let c2 = f.commit("os/main", &[("a", "alpha2")]);
    let out = f.push_code(&[&f.dest("main"), "os/main", "--command", "ostree-receive-1"], 1);
    must_show(&out, "not an archive-mode repo");
    assert_eq!(
        f.remote("os/main").as_deref(),
        Some(commit.as_str()),
        "tunnel moved nothing"
    );
    let _ = c2;
}

#[test]
fn ctrl_c_before_the_ref_update_moves_nothing() {
    use e2e_tests::world::{World, T0};
    // The gateway holds the push right before its ref update; the pusher gets SIGINT there.
    let w = World::new_with_env(&[], &[("OSTREE_GATEWAY_TEST_PAUSE", "before-update")]);
    w.local.commit("app/a").file("f", "x").timestamp(T0).run();
    let child = e2e_tests::pusher::ostree_push(&w.gw, &w.served, &w.alice, "alice", &w.local.path, "main")
        .arg("app/a")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let marker = w.gw.state_dir().join("paused-before-update");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "push never reached the ref update"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    // Let the gateway go on: it must notice the client is gone and move nothing.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(&marker).unwrap();
    for _ in 0..100 {
        let audit = w.audit();
        if audit.first().is_some_and(|r| r["state"] != "in_progress") {
            assert_eq!(audit[0]["state"], "failed", "{audit:?}");
            assert_eq!(w.target().rev_parse("app/a"), None, "no ref moved");
            w.target().fsck();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("audit row not settled: {:?}", w.audit());
}

#[test]
fn a_local_failure_mid_push_ends_both_sides_at_once() {
    // The local ref names a commit the local repo lacks: the client fails after the gateway
    // answered. It must say why and tell the gateway, not leave both waiting for each other.
    let f = Fixture::new();
    f.commit("os/main", &[("a", "one")]);
    let missing = "ab".repeat(32);
    run_ok(ostree(&f.local()).args(["refs", "--create=os/ghost", &missing]));
    let out = run_limited(
        &mut f.push_command(&[&f.dest("main"), "os/ghost"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    must_show(&out, &missing[..12]);
    assert_eq!(f.remote("os/ghost"), None);
}

#[test]
fn an_object_unreadable_mid_stream_reaches_the_gateway_as_the_clients_error() {
    // The objects before it were buffered (several per SSH packet): they are delivered whole,
    // then the ERROR frame, which the gateway reads as such (not as a broken stream).
    let f = Fixture::new();
    // 200 files of 2 KiB that barely compress: several buffers' worth.
    let mut seed = 7u64;
    let mut noise = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b"0123456789abcdef"[(seed >> 60) as usize])
            })
            .collect()
    };
    let names: Vec<String> = (0..200).map(|i| format!("f{i:03}")).collect();
    let contents: Vec<String> = (0..200).map(|_| noise(2048)).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    f.commit("os/broken", &files);
    // A file late in the tree: its object is one of the last sent.
    let listing = run_ok(ostree(&f.local()).args(["ls", "-C", "os/broken", "/f190"]));
    let checksum = listing.split_whitespace().nth(4).unwrap().to_string();
    let lost = f
        .local()
        .join(format!("objects/{}/{}.filez", &checksum[..2], &checksum[2..]));
    std::fs::remove_file(&lost).unwrap();
    let out = run_limited(
        &mut f.push_command(&[&f.dest("main"), "os/broken"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let lost_name = lost.file_name().unwrap().to_str().unwrap();
    must_show(&out, lost_name);
    assert_eq!(f.remote("os/broken"), None);
    let log = std::fs::read_to_string(f.path("gateway.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("client gave up") && l.contains(lost_name)),
        "the gateway did not read the client's error: {log}"
    );
    run_ok(ostree(&f.remote_repo("main")).arg("fsck"));
}

#[test]
fn many_objects_from_a_bare_user_repo_convert_in_one_transaction() {
    // Every content object of a bare-user repo arrives uncompressed and is converted by
    // libostree on both verification workers at once, into one staging transaction.
    let f = Fixture::new();
    std::fs::remove_dir_all(f.local()).unwrap();
    std::fs::create_dir_all(f.local()).unwrap();
    run_ok(ostree(&f.local()).args(["init", "--mode=bare-user"]));
    let names: Vec<String> = (0..400).map(|i| format!("f{i}")).collect();
    let contents: Vec<String> = (0..400).map(|i| format!("content {i}\n").repeat(50)).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let commit = f.commit("os/many", &files);
    f.push_ok(&[&f.dest("main"), "os/many"]);
    assert_eq!(f.remote("os/many").as_deref(), Some(commit.as_str()));
    run_ok(ostree(&f.remote_repo("main")).arg("fsck"));
}
