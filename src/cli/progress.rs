//! Progress while a run is under way: an indicatif bar on a terminal, a
//! plain line every few seconds otherwise (a cron log), nothing with `-q`.
//!
//! The total is estimated from the list's size and the bytes per token read
//! so far, so the bar has an ETA for files without counting lines first.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use apnsblast::run::Progress;

/// How often the plain display writes a line.
const LINE_EVERY: Duration = Duration::from_secs(5);

enum Mode {
    Bar(ProgressBar),
    Lines { last: Instant },
    Quiet,
}

/// The progress display of one run.
pub struct ProgressView {
    mode: Mode,
    /// Total bytes of the list, when known.
    size: Option<u64>,
    /// Bytes of the list read so far.
    bytes: Arc<AtomicU64>,
    /// Known number of tokens (generated lists).
    total: Option<u64>,
    cancel: Arc<AtomicBool>,
    /// Updates seen with the cancel flag set (a stop sets it just after
    /// its cause, so the note waits one update to tell the two apart).
    cancelled_for: u8,
    told_cancel: bool,
}

impl ProgressView {
    /// A display on stderr: a bar if it is a terminal, lines if not, nothing if `quiet`.
    pub fn new(quiet: bool, size: Option<u64>, bytes: Arc<AtomicU64>, cancel: Arc<AtomicBool>) -> ProgressView {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
            bar.set_style(spinner_style());
            bar.enable_steady_tick(Duration::from_millis(200));
            Mode::Bar(bar)
        } else {
            Mode::Lines { last: Instant::now() }
        };
        ProgressView { mode, size, bytes, total: None, cancel, cancelled_for: 0, told_cancel: false }
    }

    /// The list has exactly `n` tokens (a generated list).
    pub fn with_total(mut self, n: u64) -> ProgressView {
        self.total = Some(n);
        self
    }

    /// Says something above the bar (or on its own line).
    pub fn note(&self, text: &str) {
        match &self.mode {
            Mode::Bar(bar) => bar.println(text),
            Mode::Lines { .. } => eprintln!("{text}"),
            Mode::Quiet => {}
        }
    }

    /// Estimated tokens in the whole list.
    fn estimate(&self, p: &Progress) -> Option<u64> {
        if let Some(n) = self.total {
            return Some(n);
        }
        let size = self.size?;
        let bytes = self.bytes.load(Ordering::Relaxed);
        if bytes == 0 || p.read == 0 {
            return None;
        }
        if bytes >= size {
            return Some(p.read);
        }
        Some(((p.read as f64) * (size as f64) / (bytes as f64)).round() as u64)
    }

    /// Called by the run's observer about ten times a second.
    pub fn update(&mut self, p: &Progress) {
        if self.cancel.load(Ordering::Relaxed) {
            self.cancelled_for = self.cancelled_for.saturating_add(1);
        }
        if (p.stopping || self.cancelled_for > 1) && !self.told_cancel {
            self.told_cancel = true;
            let text = if p.stopping {
                "apnsblast: stopping: Apple gave an answer about the whole run (said at the end); confirming what \
                 is in flight (Ctrl-C again to quit at once, losing the report)"
            } else {
                "apnsblast: interrupted: not writing any more; confirming what is in flight \
                 (Ctrl-C again to quit at once, losing the report)"
            };
            match &self.mode {
                Mode::Quiet => eprintln!("{text}"),
                _ => self.note(text),
            }
        }
        let estimate = self.estimate(p);
        let settled = p.accepted + p.failed;
        let rate = if p.elapsed.as_secs_f64() > 0.0 { settled as f64 / p.elapsed.as_secs_f64() } else { 0.0 };
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                if let Some(total) = estimate {
                    if bar.length().is_none() {
                        bar.set_style(bar_style());
                    }
                    bar.set_length(total.max(settled));
                }
                bar.set_position(settled);
                bar.set_message(format!("{} failed, {:.0}/s", p.failed, rate));
            }
            Mode::Lines { last } => {
                if last.elapsed() < LINE_EVERY {
                    return;
                }
                *last = Instant::now();
                let of = match estimate {
                    Some(t) if t > 0 => format!(" of ~{t} ({:.0}%)", 100.0 * settled as f64 / t as f64),
                    _ => String::new(),
                };
                eprintln!(
                    "apnsblast: [{:>4.0}s] {settled}{of} tokens done: accepted {}, not accepted {}, {:.0}/s, \
                     {} reconnects",
                    p.elapsed.as_secs_f64(),
                    p.accepted,
                    p.failed,
                    rate,
                    p.reconnects
                );
            }
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
        self.mode = Mode::Quiet;
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} tokens done, {msg}")
        .expect("valid progress template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {percent:>3}% {pos}/~{len} ETA {eta} {msg}")
        .expect("valid progress template")
        .progress_chars("=> ")
}
