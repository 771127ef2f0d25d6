//! What a person sees on stderr: progress (a bar on a terminal, plain lines otherwise,
//! nothing with -q), warnings and the receiver's messages.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub struct Ui {
    verbosity: Verbosity,
    tty: bool,
    bar: Option<ProgressBar>,
    last_plain: Option<Instant>,
    last_counts: (u64, u64),
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        Ui {
            verbosity,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            last_plain: None,
            last_counts: (0, 0),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Always shown (around a progress bar).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    pub fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    /// Shown with -v only.
    pub fn verbose(&self, text: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.line(text);
        }
    }

    /// The receiver fetched `done` of `total` objects so far.
    pub fn progress(&mut self, done: u64, total: u64) {
        if self.verbosity == Verbosity::Quiet || (done, total) == self.last_counts {
            return;
        }
        self.last_counts = (done, total);
        if self.tty {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "Receiving objects: {bar:30} {pos}/{len} [{elapsed_precise}]",
                    )
                    .expect("valid template"),
                );
                bar
            });
            bar.set_length(total);
            bar.set_position(done);
            return;
        }
        // Plain lines: at most one a second, plus the last one.
        let due = self
            .last_plain
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due || done == total {
            self.last_plain = Some(Instant::now());
            eprintln!("Receiving objects: {done}/{total}");
        }
    }

    /// Ends the progress display.
    pub fn finish_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
