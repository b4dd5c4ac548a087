//! Progress reports: throttled to one per interval for the caller, and an optional terminal bar.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a pull is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Receiving bytes from the server.
    Downloading,
    /// Hashing: an existing `.part` before resuming it, or the finished file before it is used.
    Verifying,
}

/// One progress report. In [`Phase::Verifying`], `bytes_done` counts bytes hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    /// Known once the server (or the catalog) told the size.
    pub bytes_total: Option<u64>,
    /// Over the time since the previous report; over the whole phase in the final report.
    pub bytes_per_sec: u64,
    pub phase: Phase,
}

const BAR_TEMPLATE: &str =
    "{msg:>11} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";

/// Turns every advance into at most one report per `interval` (plus the final one) and keeps the
/// terminal bar, if any, current.
pub(crate) struct Reporter<F> {
    sink: F,
    interval: Duration,
    bar: Option<ProgressBar>,
    phase: Phase,
    /// Bytes processed (received or hashed) in the current phase, across attempts.
    work: u64,
    phase_started: Instant,
    last_report: Instant,
    work_at_last_report: u64,
}

impl<F: FnMut(&Progress)> Reporter<F> {
    /// `terminal`: draw a bar on stderr, but only when stderr is a terminal.
    pub fn new(sink: F, interval: Duration, terminal: bool) -> Self {
        let now = Instant::now();
        let bar = (terminal && std::io::stderr().is_terminal()).then(|| {
            let style = ProgressStyle::with_template(BAR_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
        });
        Self {
            sink,
            interval,
            bar,
            phase: Phase::Downloading,
            work: 0,
            phase_started: now,
            last_report: now,
            work_at_last_report: 0,
        }
    }

    /// `advanced` more bytes processed; now at `done` of `total`. Reports if the interval passed.
    pub fn advance(&mut self, phase: Phase, advanced: u64, done: u64, total: Option<u64>) {
        let now = Instant::now();
        if phase != self.phase {
            self.phase = phase;
            self.work = 0;
            self.work_at_last_report = 0;
            self.phase_started = now;
            self.last_report = now;
        }
        self.work += advanced;
        if let Some(bar) = &self.bar {
            bar.set_message(label(phase));
            bar.set_length(total.unwrap_or(0));
            bar.set_position(done);
        }
        let elapsed = now.duration_since(self.last_report);
        if elapsed >= self.interval {
            let rate = per_sec(self.work - self.work_at_last_report, elapsed);
            self.last_report = now;
            self.work_at_last_report = self.work;
            self.report(phase, done, total, rate);
        }
    }

    /// The final report, whatever the interval; clears the bar.
    pub fn finish(&mut self, phase: Phase, done: u64, total: Option<u64>) {
        let rate = if phase == self.phase {
            per_sec(self.work, self.phase_started.elapsed())
        } else {
            0
        };
        self.report(phase, done, total, rate);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn report(&mut self, phase: Phase, bytes_done: u64, bytes_total: Option<u64>, rate: u64) {
        (self.sink)(&Progress {
            bytes_done,
            bytes_total,
            bytes_per_sec: rate,
            phase,
        });
    }
}

impl<F> Drop for Reporter<F> {
    fn drop(&mut self) {
        // A failed pull leaves its bar where it stopped instead of erasing it.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

fn label(phase: Phase) -> &'static str {
    match phase {
        Phase::Downloading => "downloading",
        Phase::Verifying => "verifying",
    }
}

fn per_sec(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    // Float-to-int `as` saturates; a rate needs no more precision than this.
    (bytes as f64 / secs) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_throttled_and_the_final_one_always_comes() {
        let mut seen = Vec::new();
        let mut reporter = Reporter::new(
            |p: &Progress| seen.push(*p),
            Duration::from_secs(3600),
            true,
        );
        for done in 1..=100 {
            reporter.advance(Phase::Downloading, 1, done, Some(100));
        }
        reporter.finish(Phase::Verifying, 100, Some(100));
        drop(reporter);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].phase, Phase::Verifying);
        assert_eq!(seen[0].bytes_done, 100);
    }

    #[test]
    fn a_zero_interval_reports_every_advance_with_a_rate() {
        let mut seen = Vec::new();
        let mut reporter = Reporter::new(|p: &Progress| seen.push(*p), Duration::ZERO, false);
        std::thread::sleep(Duration::from_millis(2));
        reporter.advance(Phase::Downloading, 10, 10, None);
        reporter.advance(Phase::Verifying, 5, 5, Some(10));
        drop(reporter);
        assert_eq!(seen.len(), 2);
        assert!(seen[0].bytes_per_sec > 0);
        assert_eq!(seen[1].phase, Phase::Verifying);
    }
}
