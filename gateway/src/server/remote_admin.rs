//! Admin commands over SSH (`ssh -p 2222 admin@gateway user list --json`) for users marked
//! admin (`user set-admin`). The command runs as this same binary in a child process on the
//! gateway's state dir and config, with the same grammar as the local CLI; its stdout, stderr
//! and exit status go back over the channel, and stdin comes from the client (`key add U -`).
//! Options that would reach the server's files or another state are refused, and so is `serve`.

use std::process::Stdio;
use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::AsyncWriteExt;

use super::Shared;
use crate::admin::{ACTOR_ENV, PEER_ENV};
use crate::receive::Identity;

/// The first words that name admin command groups.
pub const GROUPS: &[&str] = &[
    "user", "key", "team", "repo", "rule", "gpg-key", "policy", "audit",
];

/// Why a remote admin command line is refused, if it is.
pub fn refusal(words: &[String]) -> Option<String> {
    if words
        .iter()
        .any(|w| w.starts_with("--config") || w.starts_with("--state-dir"))
    {
        return Some("--config and --state-dir cannot be given remotely".into());
    }
    let group = words.first().map(String::as_str).unwrap_or_default();
    let action = words.get(1).map(String::as_str).unwrap_or_default();
    // File arguments would be read on the server: remotely, data comes on stdin (`-`).
    let file_arg = match (group, action) {
        ("key", "add") => words.get(3).filter(|f| f.as_str() != "-"),
        ("gpg-key", "add") => words.get(3).filter(|f| f.as_str() != "-"),
        _ => None,
    };
    if let Some(file) = file_arg {
        return Some(format!(
            "remotely, {group} add reads its data from stdin: use - instead of {file}"
        ));
    }
    if group == "gpg-key" && action == "add" && words.get(3).is_none() {
        return Some("gpg-key add REPO -: the key comes on stdin".into());
    }
    if group == "repo" && action == "add" && words.iter().any(|w| w.starts_with("--path")) {
        return Some(
            "repo add --path is for local admins (repos added remotely live under the repos root)".into(),
        );
    }
    None
}

/// Runs the admin command and relays everything; returns the exit status.
pub async fn run(shared: Arc<Shared>, identity: Identity, words: Vec<String>, channel: Channel<Msg>) {
    let (mut read, write) = channel.split();
    let status = async {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the gateway binary: {e}"))?;
        let mut command = tokio::process::Command::new(exe);
        command.arg("--state-dir").arg(&shared.state.root);
        if let Some(config) = &shared.config_path {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(&words)
            .env(ACTOR_ENV, &identity.user)
            .env(PEER_ENV, identity.peer.to_string())
            .env_remove("OSTREE_GATEWAY_TEST_PAUSE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run the admin command: {e}"))?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (out_writer, err_writer) = (write.make_writer(), write.make_writer_ext(Some(1)));
        let relay_out = async move {
            let mut w = out_writer;
            let _ = tokio::io::copy(&mut stdout, &mut w).await;
            let _ = w.flush().await;
        };
        let relay_err = async move {
            let mut w = err_writer;
            let _ = tokio::io::copy(&mut stderr, &mut w).await;
            let _ = w.flush().await;
        };
        let feed_in = async {
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if let Some(stdin) = stdin.as_mut() {
                            if stdin.write_all(&data).await.is_err() {
                                break;
                            }
                        }
                    }
                    ChannelMsg::Eof | ChannelMsg::Close => break,
                    _ => {}
                }
            }
            drop(stdin.take());
        };
        let waited = async {
            tokio::join!(relay_out, relay_err);
            child.wait().await
        };
        tokio::pin!(waited);
        tokio::select! {
            status = &mut waited => return status.map(|s| s.code().unwrap_or(1) as u32).map_err(|e| e.to_string()),
            _ = feed_in => {}
        }
        waited.await.map(|s| s.code().unwrap_or(1) as u32).map_err(|e| e.to_string())
    }
    .await;
    let status = match status {
        Ok(status) => status,
        Err(message) => {
            let _ = write
                .extended_data_bytes(1, format!("error: {message}\n").into_bytes())
                .await;
            1
        }
    };
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

#[cfg(test)]
mod tests {
    use super::refusal;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn server_files_and_state_are_out_of_reach() {
        assert!(refusal(&words("user list --json")).is_none());
        assert!(refusal(&words("key add bob -")).is_none());
        assert!(refusal(&words("key add bob /etc/shadow")).is_some());
        assert!(refusal(&words("gpg-key add main /root/.gnupg/x")).is_some());
        assert!(refusal(&words("gpg-key add main")).is_some());
        assert!(refusal(&words("repo add x --path /srv")).is_some());
        assert!(refusal(&words("user list --state-dir /tmp/other")).is_some());
        assert!(refusal(&words("--config=/tmp/x user list")).is_some());
    }
}
