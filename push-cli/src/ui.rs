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
    /// The label of the last progress shown (a new phase redraws even at equal counts).
    last_what: String,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        Ui {
            verbosity,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            last_plain: None,
            last_counts: (0, 0),
            last_what: String::new(),
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
        self.progress_of("Receiving objects", done, total, None);
    }

    /// `what` (e.g. "Sending objects", "Verified objects"): `done` of `total`, and the bytes
    /// so far when known.
    pub fn progress_of(&mut self, what: &str, done: u64, total: u64, bytes: Option<u64>) {
        if self.verbosity == Verbosity::Quiet || ((done, total) == self.last_counts && self.last_what == what)
        {
            return;
        }
        self.last_counts = (done, total);
        if self.last_what != what {
            self.last_what = what.to_string();
            self.last_plain = None;
        }
        let amount = bytes.map(human_bytes).unwrap_or_default();
        if self.tty {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{msg}: {bar:30} {pos}/{len} {prefix} [{elapsed_precise}]")
                        .expect("valid template"),
                );
                bar
            });
            bar.set_message(what.to_string());
            bar.set_prefix(amount);
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
            if amount.is_empty() {
                eprintln!("{what}: {done}/{total}");
            } else {
                eprintln!("{what}: {done}/{total}, {amount}");
            }
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

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
