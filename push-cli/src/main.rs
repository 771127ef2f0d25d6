//! `ostree-push`: push OSTree refs to an ostree-gateway (or any ostree-receive server) over
//! SSH, compatible with ostree-push 1.2.0's command line.

mod cli;
mod http;
mod local;
mod push;
mod report;
mod ssh;
mod sshopts;
mod transport;
mod ui;

use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

fn main() {
    let args = cli::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

async fn run(args: cli::Args) -> i32 {
    let cancel = CancellationToken::new();
    let watcher = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(int), Ok(term)) => Some(tokio::spawn(watch_signals(int, term, cancel.clone()))),
        _ => {
            tracing::warn!("cannot install signal handlers");
            None
        }
    };
    let code = push::run(&args, &cancel).await;
    if let Some(w) = watcher {
        w.abort();
    }
    code
}

/// First SIGINT/SIGTERM: cancel (the push tears down and exits 130/143). Second: exit now.
async fn watch_signals(
    mut int: tokio::signal::unix::Signal,
    mut term: tokio::signal::unix::Signal,
    cancel: CancellationToken,
) {
    loop {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        if cancel.is_cancelled() {
            std::process::exit(code);
        }
        push::INTERRUPT_STATUS.store(code, Ordering::SeqCst);
        cancel.cancel();
    }
}
