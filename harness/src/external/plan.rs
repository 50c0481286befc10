//! What the seed decides for each trial of an external run.
//!
//! Architecture Invariant: pure. Every choice derives from the run's seed,
//! the crash kind and the trial index through `derive_seed`, so a replay
//! line (seed, crash, trial) re-creates the trial's plan exactly.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ExternalCrash;
use crate::scenario::derive_seed;

/// The random choices of one trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialPlan {
    pub crash: ExternalCrash,
    pub trial: u32,
    /// `CRASHLAB_SEED` for the setup and the writer.
    pub writer_seed: u64,
    /// When the crash strikes, in millionths of the clean run's duration,
    /// counted from the writer's start: uniform in [0, 1 000 000).
    pub at_ppm: u32,
    /// Drives the `sigbus` choices: which mapped file, which length.
    pub cut_seed: u64,
}

impl TrialPlan {
    pub fn new(seed: u64, crash: ExternalCrash, trial: u32) -> TrialPlan {
        let t = trial.to_string();
        let labels = |what: &'static str| derive_seed(seed, &["external", crash.name(), &t, what]);
        TrialPlan {
            crash,
            trial,
            writer_seed: labels("writer"),
            at_ppm: (labels("time") % 1_000_000) as u32,
            cut_seed: labels("cut"),
        }
    }

    /// `CRASHLAB_SEED` of the clean (calibration) run.
    pub fn clean_writer_seed(seed: u64) -> u64 {
        derive_seed(seed, &["external", "clean", "writer"])
    }

    /// The crash time for a writer whose clean run took `clean`.
    pub fn crash_after(&self, clean: Duration) -> Duration {
        Duration::from_nanos((clean.as_nanos() as u64).saturating_mul(self.at_ppm as u64) / 1_000_000)
    }
}

/// The length to truncate a mapped file of `file_len` bytes to, given that
/// its last non-zero byte ends at `data_end`: a page-aligned length (from
/// `seed`) that is at least `data_end` and below `file_len`, so the cut
/// removes only all-zero bytes and the writer's next store into a removed
/// page faults. `None` when no such length exists.
pub fn choose_cut(file_len: u64, data_end: u64, page: u64, seed: u64) -> Option<u64> {
    let first = data_end.div_ceil(page);
    // Page-aligned lengths first*page, (first+1)*page, ... strictly below file_len.
    let last = file_len.checked_sub(1)? / page;
    if first > last {
        return None;
    }
    Some((first + seed % (last - first + 1)) * page)
}

/// A seeded choice among `n` > 0 candidates.
pub fn choose_index(n: usize, seed: u64) -> usize {
    (derive_seed(seed, &["index"]) % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_a_function_of_seed_crash_and_trial() {
        let a = TrialPlan::new(7, ExternalCrash::Sigkill, 3);
        assert_eq!(a, TrialPlan::new(7, ExternalCrash::Sigkill, 3));
        assert_ne!(a.writer_seed, TrialPlan::new(7, ExternalCrash::Sigkill, 4).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::new(7, ExternalCrash::Sigabrt, 3).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::new(8, ExternalCrash::Sigkill, 3).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::clean_writer_seed(7));
    }

    #[test]
    fn crash_times_cover_the_clean_run_uniformly() {
        let clean = Duration::from_millis(10);
        let mut buckets = [0u32; 10];
        for t in 0..2000 {
            let at = TrialPlan::new(1, ExternalCrash::Sigkill, t).crash_after(clean);
            assert!(at < clean);
            buckets[(at.as_nanos() * 10 / clean.as_nanos()) as usize] += 1;
        }
        // 200 expected per bucket; 120 is > 5 sigma away.
        assert!(buckets.iter().all(|&b| b > 120), "{buckets:?}");
    }

    #[test]
    fn cuts_are_page_aligned_and_remove_only_the_zero_tail() {
        let page = 4096;
        assert_eq!(choose_cut(8 * page, 0, page, 0), Some(0));
        for seed in 0..200 {
            let cut = choose_cut(16 * page, 3 * page + 1, page, seed).unwrap();
            assert_eq!(cut % page, 0);
            assert!((4 * page..16 * page).contains(&cut), "{cut}");
        }
        // Every allowed length is reachable.
        let lens: std::collections::BTreeSet<u64> =
            (0..100).map(|s| choose_cut(3 * page, 1, page, s).unwrap()).collect();
        assert_eq!(lens.into_iter().collect::<Vec<_>>(), vec![page, 2 * page]);
        // No zero tail past a page boundary: no cut.
        assert_eq!(choose_cut(4 * page, 3 * page + 1, page, 5), None);
        assert_eq!(choose_cut(4 * page, 4 * page, page, 5), None);
        assert_eq!(choose_cut(0, 0, page, 5), None);
        // A file not a whole number of pages: the last partial page can go.
        assert_eq!(choose_cut(2 * page + 10, 2 * page, page, 0), Some(2 * page));
    }
}
