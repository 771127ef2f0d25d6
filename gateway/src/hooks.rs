//! Operator hooks run around the ref update, with the environment ostree-receive gives its
//! `update_hook` (`OSTREE_RECEIVE_REPO`, `OSTREE_RECEIVE_REFS`) plus who pushed and what moves.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a hook is told about the push.
pub struct HookInput<'a> {
    pub repo_name: &'a str,
    pub repo_path: &'a Path,
    /// Staging repo holding the new objects (pre-update only): hooks may inspect them there.
    pub staging: Option<&'a Path>,
    pub user: &'a str,
    pub key_fingerprint: &'a str,
    /// (ref, old, new); `None` means absent.
    pub updates: Vec<(&'a str, Option<&'a str>, Option<&'a str>)>,
}

/// Runs `program`; `Err` carries the reason to show (its stderr, or the timeout).
pub async fn run(program: &Path, input: &HookInput<'_>, timeout: Duration) -> Result<(), String> {
    let none = "0000000000000000000000000000000000000000000000000000000000000000";
    let lines: String = input
        .updates
        .iter()
        .map(|(r, old, new)| format!("{r} {} {}\n", old.unwrap_or(none), new.unwrap_or(none)))
        .collect();
    let refs: Vec<&str> = input.updates.iter().map(|(r, _, _)| *r).collect();
    let mut command = tokio::process::Command::new(program);
    command
        .env("OSTREE_RECEIVE_REPO", input.repo_path)
        .env("OSTREE_RECEIVE_REFS", refs.join(" "))
        .env("OSTREE_GATEWAY_REPO_NAME", input.repo_name)
        .env("OSTREE_GATEWAY_USER", input.user)
        .env("OSTREE_GATEWAY_KEY_FINGERPRINT", input.key_fingerprint)
        .env("OSTREE_GATEWAY_UPDATES", &lines)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(staging) = input.staging {
        command.env("OSTREE_GATEWAY_STAGING", staging);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run hook {}: {e}", program.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let work = async {
        // The same lines on stdin, like a git pre-receive hook; a hook may ignore them.
        let _ = stdin.write_all(lines.as_bytes()).await;
        drop(stdin);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut out_reader, mut err_reader) = ((&mut stdout).take(1 << 20), (&mut stderr).take(1 << 20));
        let (_, _, status) = tokio::join!(
            out_reader.read_to_end(&mut out),
            err_reader.read_to_end(&mut err),
            child.wait()
        );
        (status, out, err)
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(format!(
            "hook {} timed out after {}s",
            program.display(),
            timeout.as_secs()
        )),
        Ok((Err(e), _, _)) => Err(format!("hook {} failed: {e}", program.display())),
        Ok((Ok(status), out, err)) => {
            if !out.is_empty() {
                tracing::info!(hook = %program.display(), stdout = %String::from_utf8_lossy(&out).trim(), "hook output");
            }
            if status.success() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&err).trim().to_string();
                Err(if text.is_empty() {
                    format!("hook {} exited with {status}", program.display())
                } else {
                    text
                })
            }
        }
    }
}
