//! The classic flow: the local repo is served read-only over HTTP through an SSH remote
//! forward (`tcpip-forward` on 127.0.0.1, port chosen by the server), and the server runs
//! `ostree-receive-1 [-n] [-f] [-q|-v] PATH http://127.0.0.1:RPORT/PREFIX REF…`, pulling
//! from it. Its stderr carries progress and one result line per ref.

use anyhow::{anyhow, bail, Context, Result};
use russh::ChannelMsg;
use tokio::task::JoinSet;

use super::{PushRequest, RemoteOutcome};
use crate::http::RepoServer;
use crate::report::{parse_line, Line};
use crate::ssh::{Connection, ForwardedStreams};
use crate::ui::{Ui, Verbosity};

/// Exit status meaning "no such command": try the next candidate.
const EXIT_NOT_FOUND: u32 = 127;

pub async fn push(conn: &Connection, request: &PushRequest, ui: &mut Ui) -> Result<RemoteOutcome> {
    let server =
        RepoServer::new(&request.repo).with_context(|| format!("cannot serve {}", request.repo.display()))?;
    let summary = {
        let (path, refs) = (request.repo.clone(), request.refs.clone());
        tokio::task::spawn_blocking(move || crate::local::summary_for(&path, &refs)).await??
    };
    let server = server.with_summary(summary);
    let (port, mut streams) = conn.forward_remote_port().await?;
    let url = format!("http://127.0.0.1:{port}{}", server.prefix().trim_end_matches('/'));
    tracing::debug!(port, "remote forward ready");
    let mut serving = JoinSet::new();
    let result = try_commands(conn, request, ui, &url, &server, &mut streams, &mut serving).await;
    conn.stop_forwarding().await;
    serving.abort_all();
    result
}

#[allow(clippy::too_many_arguments)]
async fn try_commands(
    conn: &Connection,
    request: &PushRequest,
    ui: &mut Ui,
    url: &str,
    server: &RepoServer,
    streams: &mut ForwardedStreams,
    serving: &mut JoinSet<()>,
) -> Result<RemoteOutcome> {
    for command in &request.commands {
        let line = command_line(command, request, url)?;
        tracing::debug!(command = %line, "running");
        let run = run_remote(conn, &line, request, ui);
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome?,
                Some(stream) = streams.recv() => {
                    let server = server.clone();
                    serving.spawn(async move { server.serve_connection(stream).await });
                    while serving.try_join_next().is_some() {}
                }
            }
        };
        if outcome.status == EXIT_NOT_FOUND {
            tracing::debug!(%command, "not found on the server (exit 127)");
            continue;
        }
        return Ok(outcome);
    }
    bail!(
        "Could not find commands {} on server",
        request.commands.join(", ")
    )
}

/// `CMD [-n] [-f] [-q|-v] PATH URL REF…`, quoted for a shell where needed.
pub fn command_line(command: &str, request: &PushRequest, url: &str) -> Result<String> {
    let mut words = shlex::split(command).ok_or_else(|| anyhow!("invalid --command {command:?}"))?;
    if words.is_empty() {
        bail!("empty --command");
    }
    if request.dry_run {
        words.push("-n".into());
    }
    if request.force {
        words.push("-f".into());
    }
    match request.verbosity {
        Verbosity::Quiet => words.push("-q".into()),
        Verbosity::Verbose => words.push("-v".into()),
        Verbosity::Normal => {}
    }
    words.push(request.remote_path.clone());
    words.push(url.to_string());
    words.extend(request.ref_names());
    shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| anyhow!("cannot quote the remote command: {e}"))
}

/// Runs one command; progress goes to `ui` as it comes, the rest is returned.
async fn run_remote(
    conn: &Connection,
    command: &str,
    request: &PushRequest,
    ui: &mut Ui,
) -> Result<RemoteOutcome> {
    let refs = request.ref_names();
    let mut channel = conn
        .handle()
        .channel_open_session()
        .await
        .context("cannot open an SSH session channel")?;
    channel
        .exec(true, command)
        .await
        .context("cannot start the remote command")?;
    let mut buffer = Vec::new();
    let mut pending = Vec::new();
    let mut status = None;
    let mut signal = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                buffer.extend_from_slice(&data);
                while let Some(pos) = buffer.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = buffer.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&raw);
                    match parse_line(text.trim_end_matches(['\n', '\r']), &refs) {
                        Line::Progress { done, total } => ui.progress(done, total),
                        other => pending.push(other),
                    }
                }
            }
            ChannelMsg::Data { data } => {
                tracing::debug!(stdout = %String::from_utf8_lossy(&data), "remote stdout");
            }
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal {
                signal_name,
                error_message,
                ..
            } => signal = Some(format!("{signal_name:?} {error_message}")),
            ChannelMsg::Failure => bail!("the server refused to run {command:?}"),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if !buffer.is_empty() {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        pending.push(parse_line(&text, &refs));
    }
    let status = match (status, signal) {
        (Some(s), _) => s,
        (None, Some(sig)) => bail!("the remote command was killed by signal {sig}"),
        (None, None) => bail!("the connection closed before the remote command finished"),
    };
    let mut outcome = RemoteOutcome {
        status,
        ..Default::default()
    };
    if status == EXIT_NOT_FOUND {
        for line in pending {
            tracing::debug!(?line, "output of a command not found");
        }
        return Ok(outcome);
    }
    ui.finish_progress();
    for line in pending {
        match line {
            Line::Result(r) => outcome.results.push(r),
            Line::Error(e) => {
                ui.line(&format!("remote: error: {e}"));
                outcome.errors.push(e);
            }
            Line::Other(text) if !text.is_empty() => ui.line(&format!("remote: {text}")),
            Line::Other(_) | Line::Progress { .. } => {}
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let mut req = PushRequest {
            repo: "/r".into(),
            remote_path: "/main".into(),
            refs: vec![("a".into(), "c".into()), ("b/c".into(), "d".into())],
            deletions: Vec::new(),
            dry_run: true,
            force: false,
            verbosity: Verbosity::Quiet,
            commands: vec![],
        };
        let url = "http://127.0.0.1:1/abc";
        assert_eq!(
            command_line("ostree-receive-1", &req, url).unwrap(),
            "ostree-receive-1 -n -q /main http://127.0.0.1:1/abc a b/c"
        );
        req.dry_run = false;
        req.force = true;
        req.verbosity = Verbosity::Normal;
        req.remote_path = "my repo".into();
        assert_eq!(
            command_line("sudo -u x 'ostree-receive'", &req, url).unwrap(),
            "sudo -u x ostree-receive -f 'my repo' http://127.0.0.1:1/abc a b/c"
        );
        assert!(command_line("'unterminated", &req, url).is_err());
    }
}
