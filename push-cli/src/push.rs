//! One push from start to end: local checks, SSH, the transport, the report.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{bail, Result};
use tokio_util::sync::CancellationToken;

use crate::cli::Args;
use crate::local::{self, LocalRepo};
use crate::report::{self, Report};
use crate::ssh;
use crate::sshopts;
use crate::transport::{PushRequest, Transport};
use crate::ui::{Ui, Verbosity};

/// Exit status to use once interrupted (130 for SIGINT, 143 for SIGTERM).
pub static INTERRUPT_STATUS: AtomicI32 = AtomicI32::new(130);

#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
struct Interrupted;

/// Runs the push and prints its report; returns the exit status.
pub async fn run(args: &Args, cancel: &CancellationToken) -> i32 {
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mut ui = Ui::new(verbosity);
    let repo = local::default_repo(args.repo.as_deref());
    let mut report = Report {
        dest: args.dest.original.clone(),
        repo: repo.display().to_string(),
        refs: Vec::new(),
        error: None,
        exit_code: 1,
    };
    if let Err(e) = push(args, &mut ui, cancel, &mut report).await {
        report.exit_code = if e.is::<Interrupted>() {
            INTERRUPT_STATUS.load(Ordering::SeqCst)
        } else {
            1
        };
        report.error = Some(format!("{e:#}"));
    }
    ui.finish_progress();
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot write JSON: {e}"),
        }
    }
    if let Some(error) = &report.error {
        eprintln!("error: {error}");
    }
    if !args.json && !report.refs.is_empty() {
        if verbosity == Verbosity::Quiet {
            let failed: Vec<_> = report.refs.iter().filter(|r| !r.status.ok()).cloned().collect();
            eprint!("{}", report::table(&failed));
        } else {
            print!("{}", report::table(&report.refs));
        }
    }
    report.exit_code
}

async fn push(args: &Args, ui: &mut Ui, cancel: &CancellationToken, report: &mut Report) -> Result<()> {
    let (deletions, named): (Vec<String>, Vec<String>) =
        args.refs.iter().cloned().partition(|r| r.starts_with(':'));
    let deletions: Vec<String> = deletions.iter().map(|d| d[1..].to_string()).collect();
    if deletions.iter().any(|d| d.is_empty()) {
        bail!("\":\" alone names no ref: use :REF to delete REF");
    }
    let local = interruptible(cancel, LocalRepo::open(std::path::Path::new(&report.repo))).await?;
    report.repo = local.path.display().to_string();
    let refs = if named.is_empty() && !deletions.is_empty() {
        Vec::new()
    } else {
        local.select(&named)?
    };
    if refs.is_empty() && deletions.is_empty() {
        bail!("nothing to push: the local repo {} has no refs", report.repo);
    }
    let request = PushRequest {
        repo: local.path.clone(),
        remote_path: args.dest.path.clone(),
        refs,
        deletions,
        dry_run: args.dry_run,
        force: args.force,
        verbosity: ui.verbosity(),
        commands: args.commands(),
    };
    let settings = sshopts::resolve(args, &args.dest, &mut |w| ui.warn(&w))?;
    ui.verbose(&format!(
        "Connecting to {}@{}:{} ({}; repo {})",
        settings.user, settings.hostname, settings.port, settings.alias, request.remote_path
    ));
    let conn = interruptible(cancel, ssh::connect(&settings, &mut |w| ui.warn(&w))).await?;
    ui.verbose(&format!(
        "Authenticated as {} with {}",
        settings.user, conn.authenticated_with
    ));
    // The native protocol first (unless classic commands were named); 127 → the tunnel.
    let archive = local.archive;
    let pushed = interruptible(cancel, async {
        if args.command.is_empty() {
            if let Some(outcome) = Transport::Native.push(&conn, &request, ui).await? {
                return Ok(outcome);
            }
            ui.verbose("The server has no native receive: using the ostree-receive tunnel");
        }
        if !request.deletions.is_empty() {
            bail!("deleting refs needs the gateway's native push protocol, which this server does not offer");
        }
        if !archive {
            bail!(
                "local repo {} is not an archive-mode repo: the tunnel flow serves it over HTTP, \
                 which needs `ostree init --mode=archive` (copy with `ostree pull-local`)",
                request.repo.display()
            );
        }
        Transport::Tunnel
            .push(&conn, &request, ui)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the tunnel gave no result"))
    })
    .await;
    let reason = if pushed.is_ok() { "done" } else { "aborted" };
    conn.close(reason).await;
    let outcome = pushed?;
    let (deleted, results): (Vec<_>, Vec<_>) = outcome
        .results
        .into_iter()
        .partition(|r| request.deletions.contains(&r.name));
    let (mut refs, mut code) = report::merge(&request.refs, results, &outcome.errors, outcome.status);
    for name in &request.deletions {
        let result = deleted
            .iter()
            .find(|r| &r.name == name)
            .cloned()
            .unwrap_or_else(|| report::RefResult {
                name: name.clone(),
                old: None,
                new: None,
                status: report::Status::Rejected,
                reason: Some(
                    outcome
                        .errors
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "no result from the receiver".into()),
                ),
            });
        if !result.status.ok() {
            code = 1;
        }
        refs.push(result);
    }
    report.refs = refs;
    report.exit_code = code;
    Ok(())
}

/// Runs `work` unless `cancel` fires first (then `work` is dropped: its guards tear down).
async fn interruptible<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        result = work => result,
        _ = cancel.cancelled() => Err(Interrupted.into()),
    }
}
