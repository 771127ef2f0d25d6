//! The unmodified Python `ostree-push` 1.2.0 as a user runs it, for compatibility tests.
//!
//! It is installed into a venv by `scripts/install-python-ostree-push.sh`
//! (`make python-ostree-push`); [`ostree_push_bin`] finds it and panics, saying how to install
//! it, when it is missing: a compatibility test must not pass silently without the client.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::describe;
use crate::world::World;

/// How long one Python push may take before the test gives up and kills it.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(180);

/// The venv's `ostree-push` entry point: `$OSTREE_PUSH_VENV/bin/ostree-push`, else
/// `<workspace>/target/ostree-push-venv/bin/ostree-push`.
pub fn ostree_push_bin() -> PathBuf {
    let venv = match std::env::var_os("OSTREE_PUSH_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ostree-push-venv"),
    };
    let bin = venv.join("bin/ostree-push");
    assert!(
        bin.is_file(),
        "the Python ostree-push 1.2.0 is not installed at {}; run `make python-ostree-push` \
         (scripts/install-python-ostree-push.sh) first, or point OSTREE_PUSH_VENV at its venv",
        bin.display()
    );
    bin
}

/// Alice running the Python client against a [`World`]'s gateway: her key, a known_hosts file
/// pinning the gateway's host key, and a private, empty HOME.
pub struct PythonPush {
    pub bin: PathBuf,
    pub home: PathBuf,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub port: u16,
    pub local_repo: PathBuf,
    gateway_log: PathBuf,
}

impl PythonPush {
    pub fn new(world: &World) -> PythonPush {
        let bin = ostree_push_bin();
        let home = tempfile::Builder::new()
            .prefix("py-home-")
            .tempdir_in(world.gw.work_dir())
            .expect("home dir")
            .keep();
        let known_hosts = home.join("known_hosts");
        std::fs::write(&known_hosts, world.served.known_hosts_line(&world.gw) + "\n").expect("known_hosts");
        PythonPush {
            bin,
            home,
            key: world.alice.private.clone(),
            known_hosts,
            port: world.served.port,
            local_repo: world.local.path.clone(),
            gateway_log: world.served.log.clone(),
        }
    }

    /// `ssh://alice@127.0.0.1:PORT/REPO`.
    pub fn dest(&self, repo: &str) -> String {
        format!("ssh://alice@127.0.0.1:{}/{repo}", self.port)
    }

    /// `ostree-push --repo LOCAL -i KEY -o …` with the test's environment, ready for more
    /// options, then DEST and refs.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--repo")
            .arg(&self.local_repo)
            .arg("-i")
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .env("HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("OSTREE_REPO")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        command
    }

    /// Runs `ostree-push [OPTIONS…] ssh://alice@127.0.0.1:PORT/main [REFS…]` to completion
    /// (killed after [`PUSH_TIMEOUT`]).
    pub fn push(&self, options: &[&str], refs: &[&str]) -> Output {
        self.push_to("main", options, refs)
    }

    /// Like [`PythonPush::push`] to another gateway repo.
    pub fn push_to(&self, repo: &str, options: &[&str], refs: &[&str]) -> Output {
        let mut command = self.command();
        command.args(options).arg(self.dest(repo)).args(refs);
        self.run(command)
    }

    /// Runs `command` with output captured to files, killing it after [`PUSH_TIMEOUT`].
    pub fn run(&self, mut command: Command) -> Output {
        let out_dir = tempfile::Builder::new()
            .prefix("out-")
            .tempdir_in(&self.home)
            .expect("output dir");
        let stdout = out_dir.path().join("stdout");
        let stderr = out_dir.path().join("stderr");
        command
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let deadline = Instant::now() + PUSH_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for ostree-push") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{command:?} did not finish in {PUSH_TIMEOUT:?}\n--- stdout\n{}--- stderr\n{}\
                     --- gateway log\n{}",
                    std::fs::read_to_string(&stdout).unwrap_or_default(),
                    std::fs::read_to_string(&stderr).unwrap_or_default(),
                    self.gateway_log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: std::fs::read(&stdout).expect("read stdout"),
            stderr: std::fs::read(&stderr).expect("read stderr"),
        }
    }

    pub fn gateway_log_text(&self) -> String {
        std::fs::read_to_string(&self.gateway_log).unwrap_or_default()
    }

    /// The output and the gateway's log, for assertion messages.
    pub fn describe(&self, output: &Output) -> String {
        format!("{}--- gateway log\n{}", describe(output), self.gateway_log_text())
    }

    /// Asserts `output` exited with `code`, showing the output and the gateway log otherwise.
    #[track_caller]
    pub fn assert_exit(&self, output: &Output, code: i32) {
        assert_eq!(output.status.code(), Some(code), "{}", self.describe(output));
    }
}
