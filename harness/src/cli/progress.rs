//! The campaign progress bar: trials done of trials planned, rate and ETA,
//! on stderr. Hidden when stderr is not a terminal (CI logs, pipes) or with
//! --quiet, so logs never fill with redraws.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crashlab::external::RunProgress;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct CampaignProgress(ProgressBar);

impl CampaignProgress {
    pub fn new(planned_trials: u64, quiet: bool) -> CampaignProgress {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(planned_trials), target);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} trials, {rate}, ETA {eta}")
                .expect("the template is valid")
                // Whole trials per second: indicatif's {per_sec} prints four decimals.
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", s.per_sec());
                })
                .progress_chars("=> "),
        );
        CampaignProgress(bar)
    }

    /// `trials` more finished (the engine's `on_trials` callback).
    pub fn advance(&self, trials: usize) {
        self.0.inc(trials as u64);
    }
}

impl Drop for CampaignProgress {
    fn drop(&mut self) {
        // Clear the bar on every exit path, errors included, so the summary
        // or the error message is not printed after a half-drawn line.
        self.0.finish_and_clear();
    }
}

/// How often [`ExternalProgress`] prints a line when stderr is not a
/// terminal; `CRASHLAB_PROGRESS_INTERVAL_MS` overrides it (for tests).
const LINE_INTERVAL: Duration = Duration::from_secs(5);
const INTERVAL_ENV: &str = "CRASHLAB_PROGRESS_INTERVAL_MS";

/// Progress of `crashlab run --writer`, from the run's counters: the bar on
/// a terminal; elsewhere (CI logs, pipes) a line on stderr every few
/// seconds, so a long power-loss run is not silent until its end. Neither
/// with --quiet.
pub struct ExternalProgress<'a> {
    progress: &'a RunProgress,
    planned_trials: u64,
    quiet: bool,
}

impl<'a> ExternalProgress<'a> {
    pub fn new(progress: &'a RunProgress, planned_trials: u64, quiet: bool) -> ExternalProgress<'a> {
        ExternalProgress { progress, planned_trials, quiet }
    }

    /// Run `work` while a thread reports progress; the thread stops when
    /// `work` returns, whatever it returns.
    pub fn around<T>(&self, work: impl FnOnce() -> T) -> T {
        if self.quiet {
            return work();
        }
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| self.report_until(&done));
            let result = work();
            done.store(true, Ordering::SeqCst);
            result
        })
    }

    fn report_until(&self, done: &AtomicBool) {
        let on_terminal = std::io::stderr().is_terminal();
        let bar = CampaignProgress::new(self.planned_trials, self.quiet);
        let interval =
            std::env::var(INTERVAL_ENV).ok().and_then(|v| v.parse().ok()).map_or(LINE_INTERVAL, Duration::from_millis);
        let start = Instant::now();
        let (mut shown, mut next_line) = (0, start + interval);
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50).min(interval));
            let trials = self.progress.trials_done.load(Ordering::Relaxed);
            bar.advance((trials - shown) as usize);
            shown = trials;
            if !on_terminal && Instant::now() >= next_line && !done.load(Ordering::SeqCst) {
                next_line += interval;
                let states = self.progress.states_checked.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                let states_part = if states > 0 {
                    format!(", {states} power-loss states checked ({:.0}/s)", states as f64 / secs)
                } else {
                    String::new()
                };
                eprintln!(
                    "crashlab: progress: {trials}/{} trials done ({:.1}/s){states_part}, {:.0} s elapsed",
                    self.planned_trials,
                    trials as f64 / secs,
                    secs
                );
            }
        }
    }
}
