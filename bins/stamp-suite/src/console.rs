//! The sender's terminal: every line of output goes through [`Console`],
//! which hides the progress bar while it prints so that `-R` lines, events
//! and interim summaries never interleave with a half-drawn bar.
//!
//! The bar (indicatif, on stderr) is shown only when both stdout and
//! stderr are terminals; otherwise nothing but the output itself is written.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar, for the log writer (logs go to stderr, where the bar is).
static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// Where log lines go: stderr, with the progress bar hidden while a line is
/// written (the tracing subscriber's writer).
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BAR.get().filter(|b| !b.is_finished()) {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A [`LogWriter`] (for `tracing_subscriber::fmt().with_writer`).
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// Per-target counters shown by the bar.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
}

/// Output for a sender run.
pub struct Console {
    bar: Option<ProgressBar>,
    counts: Vec<Counts>,
    /// One writer at a time, so lines of different targets stay whole.
    lock: Mutex<()>,
}

impl Console {
    /// `total` packets over `targets` (0 = until interrupted). `enabled`
    /// false never shows a bar.
    pub fn new(total: u64, targets: usize, enabled: bool) -> Console {
        let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (enabled && tty).then(|| {
            let bar = if total == 0 {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed} sent {pos} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            } else {
                let b = ProgressBar::new(total);
                b.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:30}] {pos}/{len} sent {msg} (eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            };
            b_target(&bar);
            bar.enable_steady_tick(Duration::from_millis(250));
            let _ = BAR.set(bar.clone());
            bar
        });
        Console {
            bar,
            counts: (0..targets).map(|_| Counts::default()).collect(),
            lock: Mutex::new(()),
        }
    }

    /// Whether a bar is drawn.
    pub fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Update target `i`'s counters.
    pub fn progress(&self, i: usize, sent: u64, received: u64, lost: u64) {
        let Some(bar) = &self.bar else { return };
        let Some(c) = self.counts.get(i) else { return };
        c.sent.store(sent, Ordering::Relaxed);
        c.received.store(received, Ordering::Relaxed);
        c.lost.store(lost, Ordering::Relaxed);
        let sum = |f: fn(&Counts) -> &AtomicU64| {
            self.counts
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        bar.set_position(sum(|c| &c.sent));
        bar.set_message(format!(
            "received {} lost {}",
            sum(|c| &c.received),
            sum(|c| &c.lost)
        ));
    }

    fn write_to(&self, bytes: &[u8], stderr: bool) {
        if bytes.is_empty() {
            return;
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let write = || {
            if stderr {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(bytes);
                let _ = e.flush();
            } else {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(bytes);
                if self.bar.is_some() {
                    let _ = o.flush();
                }
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Print to stdout whatever `f` writes.
    pub fn out(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = Vec::new();
        f(&mut buf);
        self.write_to(&buf, false);
    }

    /// Print to stderr whatever `f` writes.
    pub fn err(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = Vec::new();
        f(&mut buf);
        self.write_to(&buf, true);
    }

    /// Remove the bar (before the final summaries).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _ = std::io::stdout().flush();
    }
}

fn b_target(bar: &ProgressBar) {
    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
}
