//! The campaign progress bar: trials done of trials planned, rate and ETA,
//! on stderr. Hidden when stderr is not a terminal (CI logs, pipes) or with
//! --quiet, so logs never fill with redraws.

use std::io::IsTerminal;

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
