//! Our `ostree-push` client as a process, pointed at a served gateway: identity, a pinned
//! known_hosts for the gateway's current port, an empty HOME and no agent.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::server::Served;
use crate::{workspace_bin, Gateway, SshKeyPair};

/// `ostree-push --repo LOCAL -i KEY -o … ssh://USER@127.0.0.1:PORT/REPO`, without refs yet:
/// add them (and flags such as `--json`) before running. Standard input is null.
pub fn ostree_push(
    gateway: &Gateway,
    served: &Served,
    key: &SshKeyPair,
    user: &str,
    local: &Path,
    repo: &str,
) -> Command {
    let home = gateway.work_dir().join("push-home");
    std::fs::create_dir_all(&home).expect("push HOME");
    let known_hosts = gateway.work_dir().join(format!("known_hosts-{}", served.port));
    if !known_hosts.exists() {
        std::fs::write(&known_hosts, served.known_hosts_line(gateway) + "\n").expect("known_hosts");
    }
    let mut command = Command::new(workspace_bin("ostree-push"));
    command
        .arg("--repo")
        .arg(local)
        .arg("-i")
        .arg(&key.private)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"])
        .arg(format!("ssh://{user}@127.0.0.1:{}/{repo}", served.port))
        .env("HOME", &home)
        .env("USER", user)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("OSTREE_REPO")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}
