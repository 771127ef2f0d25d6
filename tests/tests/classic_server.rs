//! Our `ostree-push` against a classic setup: the system's OpenSSH server (sshd, started by the
//! test on a loopback port) running the Python `ostree-receive-1` from ostree-push 1.2.0.
//! The server has no `ostree-gateway-receive`, so the client's native attempt ends with exit
//! 127 and it falls back to the tunnel flow by itself.
//!
//! Needs root (sshd must switch users) and `/usr/sbin/sshd` (package openssh-server, installed
//! by `make deps`). Run as another user, the test says so and passes without checking anything
//! else: CI runs as root.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::python::ostree_push_bin;
use e2e_tests::{describe, run, run_ok, workspace_bin, OstreeRepo, SshKeyPair};

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts sshd on a loopback port with `authorized_keys` for root; returns it and the port.
fn start_sshd(dir: &Path, client: &SshKeyPair, venv_bin: &Path) -> (Sshd, u16) {
    let host_key = dir.join("host_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key),
    );
    let auth = dir.join("authorized_keys");
    // The classic server's PATH must reach ostree-receive-1 (as a system install would).
    let line = format!(
        "environment=\"PATH={}:/usr/local/bin:/usr/bin:/bin\" {}\n",
        venv_bin.display(),
        std::fs::read_to_string(&client.public).unwrap().trim()
    );
    std::fs::write(&auth, line).unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitUserEnvironment yes\n\
             StrictModes no\nAllowTcpForwarding yes\nPidFile {}\n",
            host_key.display(),
            auth.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let mut child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sshd");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Sshd(child), port)
}

#[test]
fn our_client_falls_back_to_the_tunnel_against_a_classic_server() {
    if unsafe_is_not_root() {
        eprintln!("classic_server: not root, sshd cannot run here; skipped (CI runs as root)");
        return;
    }
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "sshd missing: run `make deps` (openssh-server)"
    );
    let venv_bin = ostree_push_bin().parent().unwrap().to_path_buf();
    let dir = tempfile::Builder::new().prefix("classic-").tempdir().unwrap();
    let key = SshKeyPair::generate(dir.path(), "client", "client@test");
    let (_sshd, port) = start_sshd(dir.path(), &key, &venv_bin);
    let local = OstreeRepo::init(&dir.path().join("local"), "archive");
    local
        .commit("os/main")
        .file("f", "hello")
        .timestamp(1_700_000_000)
        .run();
    let remote = OstreeRepo::init(&dir.path().join("srv/repo"), "archive");
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let host_pub = std::fs::read_to_string(dir.path().join("host_ed25519.pub")).unwrap();
    let known_hosts = home.join(".ssh/known_hosts");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
    let dest = format!("ssh://root@127.0.0.1:{port}{}", remote.path.display());
    let out = run(Command::new(workspace_bin("ostree-push"))
        .arg("--repo")
        .arg(&local.path)
        .arg("-i")
        .arg(&key.private)
        .args(["-o", "IdentitiesOnly=yes", "-v", "--json", &dest, "os/main"])
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK"));
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no native receive"),
        "fell back to the tunnel: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exit_code"], 0, "{report}");
    // ostree-receive re-commits (its checksums differ from ours): compare the content.
    let pushed = remote.rev_parse("os/main").expect("ref on the classic server");
    let tree = |repo: &OstreeRepo, rev: &str| run_ok(repo.ostree().args(["ls", "-R", "-C", rev]));
    assert_eq!(tree(&remote, &pushed), tree(&local, "os/main"));
    remote.fsck();
}

fn unsafe_is_not_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() != "0"
}
