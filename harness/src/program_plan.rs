//! What the seed decides for each trial of an external run.
//!
//! Architecture Invariant: pure. Every choice derives from the run's seed,
//! the crash kind and the trial index through `derive_seed`, so a replay
//! line (seed, crash, trial) re-creates the trial's plan exactly.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::derive_seed;
use crate::vocab::CrashKind;
use crate::vocab::CrashWhen;

/// The random choices of one trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrialPlan {
    pub crash: CrashKind,
    pub trial: u32,
    /// `CRASHLAB_SEED` for the setup and the writer.
    pub writer_seed: u64,
    /// When the crash strikes, in millionths of the clean run's duration,
    /// counted from just before the writer's spawn: uniform in [0, 1 000 000).
    pub at_ppm: u32,
    /// Drives the `sigbus` choices: which mapped file, which length.
    pub cut_seed: u64,
}

impl TrialPlan {
    pub fn new(seed: u64, crash: CrashKind, trial: u32) -> TrialPlan {
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

    /// Under `--points syscalls`: the traced call this trial crashes just
    /// before or just after, for a writer whose traced clean run made
    /// `calls` of them; `None` for a trial that crashes at its random time
    /// instead (see [`call_point`]).
    pub fn call_point(&self, seed: u64, calls: u64) -> Option<(u64, CrashWhen)> {
        call_point(seed, self.crash, self.trial, calls)
    }
}

/// Where the trials of a user's program crash (`--points`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProgramPoints {
    /// Process crashes at random times of the clean run, the writer not
    /// traced; power losses just before or after a sync call (`msync`,
    /// `fsync`, `fdatasync`, `ftruncate`, `munmap`) and at random times.
    #[default]
    Default,
    /// Every crash kind just before or just after any call the durability
    /// oracle traces (every sync and `munmap`, and every call on a file of
    /// the watched directory: `open` that creates or truncates, `write`,
    /// `rename`, `unlink`, `ftruncate`, `fallocate`, ...), mixed with random
    /// times; process crashes run under the oracle too.
    Syscalls,
}

impl ProgramPoints {
    pub fn name(self) -> &'static str {
        match self {
            ProgramPoints::Default => "default",
            ProgramPoints::Syscalls => "syscalls",
        }
    }
}

impl fmt::Display for ProgramPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ProgramPoints {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(ProgramPoints::Default),
            "syscalls" => Ok(ProgramPoints::Syscalls),
            _ => Err(format!("bad --points `{s}` for --writer (expected `default` or `syscalls`)")),
        }
    }
}

/// The call point of `trial` of crash kind `crash` among `calls` calls:
/// even trials crash at those calls, spread over all of them (before and
/// after each) in an order whose every prefix is evenly spread (two laps of
/// the bit-reversal permutation of the calls, rotated by a seeded offset,
/// alternating before and after); odd trials, and the even ones once every
/// call point has been used, get `None` (they crash at a random time).
/// Depends on nothing else, so a replay line needs only the seed, the trial
/// and `calls`.
pub fn call_point(seed: u64, crash: CrashKind, trial: u32, calls: u64) -> Option<(u64, CrashWhen)> {
    let points = calls.saturating_mul(2);
    let j = (trial / 2) as u64;
    if trial % 2 != 0 || j >= points {
        return None;
    }
    // Two laps over the calls, each in spread order: consecutive call
    // trials alternate before/after, and every call gets the side in the
    // second lap that it did not get in the first.
    let (lap, m) = (j / calls, j % calls);
    let when = if (m + lap) % 2 == 0 { CrashWhen::Before } else { CrashWhen::After };
    let rotation = derive_seed(seed, &["external", crash.name(), "rotation"]) % calls;
    Some(((spread_index(m, calls) + rotation) % calls + 1, when))
}

/// Where a power-loss trial crashes the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PowerLossPoint {
    /// At a time uniform in the traced clean run, in millionths of its
    /// duration, counted from the writer's start (like the process crashes).
    Time { at_ppm: u32 },
    /// At the `nth` (1-based) call of `msync`, `fsync`, `fdatasync`,
    /// `ftruncate` or `munmap` (all kinds counted together, in the order the
    /// oracle sees them): just before it runs, or just after it returned.
    Syscall { nth: u64, when: CrashWhen },
    /// `--points syscalls` (schema 1.5): at the `nth` (1-based) call the
    /// oracle traced, of any kind ([`ProgramPoints::Syscalls`]).
    Call { nth: u64, when: CrashWhen },
    /// `eio-sync` (schema 1.7): data sync `failed` (1-based, counting
    /// `fsync`, `fdatasync` and `msync(MS_SYNC)`) fails with `EIO`; the
    /// power is cut just before data sync `cut`, or after the writer's end
    /// (`None`).
    FailedSync { failed: u64, cut: Option<u64> },
}

impl fmt::Display for PowerLossPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PowerLossPoint::Time { at_ppm } => write!(f, "at {:.2}% of the traced clean run", at_ppm as f64 / 1e4),
            PowerLossPoint::Syscall { nth, when: CrashWhen::Before } => write!(f, "just before sync call {nth}"),
            PowerLossPoint::Syscall { nth, when: CrashWhen::After } => write!(f, "just after sync call {nth}"),
            PowerLossPoint::Call { nth, when: CrashWhen::Before } => write!(f, "just before traced call {nth}"),
            PowerLossPoint::Call { nth, when: CrashWhen::After } => write!(f, "just after traced call {nth}"),
            PowerLossPoint::FailedSync { failed, cut: Some(cut) } => {
                write!(f, "data sync {failed} failed with EIO, power lost just before data sync {cut}")
            }
            PowerLossPoint::FailedSync { failed, cut: None } => {
                write!(f, "data sync {failed} failed with EIO, power lost after the writer's end")
            }
        }
    }
}

/// The seeded choices of one power-loss trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossPlan {
    pub trial: u32,
    /// `CRASHLAB_SEED` for the setup and the writer.
    pub writer_seed: u64,
    pub point: PowerLossPoint,
    /// Drives the random states of the trial's exploration.
    pub state_seed: u64,
}

impl PowerLossPlan {
    /// The plan of `trial` for a writer whose traced clean run made `calls`
    /// calls that can be crash points (the sync calls, or with
    /// [`ProgramPoints::Syscalls`] every traced call): even trials at those
    /// calls, odd ones at a random time ([`call_point`]).
    pub fn new(seed: u64, trial: u32, calls: u64, points: ProgramPoints) -> PowerLossPlan {
        let base = TrialPlan::new(seed, CrashKind::PowerLoss, trial);
        let t = trial.to_string();
        let point = match call_point(seed, CrashKind::PowerLoss, trial, calls) {
            Some((nth, when)) if points == ProgramPoints::Syscalls => PowerLossPoint::Call { nth, when },
            Some((nth, when)) => PowerLossPoint::Syscall { nth, when },
            None => PowerLossPoint::Time { at_ppm: base.at_ppm },
        };
        PowerLossPlan {
            trial,
            writer_seed: base.writer_seed,
            point,
            state_seed: derive_seed(seed, &["external", "power-loss", &t, "states"]),
        }
    }

    /// The plan of `eio-sync` trial `trial` for a writer whose traced
    /// clean run made `syncs` data syncs (`fsync`, `fdatasync`,
    /// `msync(MS_SYNC)`); `at`: `--crash eio-sync:K` fails the K-th in every
    /// trial. The failed sync is spread over the run like the call points
    /// (the trials in pairs: the same failed sync, bit-reversal order,
    /// seeded rotation); the first of a pair cuts the power after the
    /// writer's end, the second just before a seeded later data sync (after
    /// the end when there is none). `None` when the run made no data sync
    /// (nothing to fail).
    pub fn eio_sync(seed: u64, trial: u32, syncs: u64, at: Option<u64>) -> Option<PowerLossPlan> {
        if syncs == 0 {
            return None;
        }
        let base = TrialPlan::new(seed, CrashKind::EioSync, trial);
        let t = trial.to_string();
        let failed = at.unwrap_or_else(|| {
            let rotation = derive_seed(seed, &["external", "eio-sync", "rotation"]) % syncs;
            (spread_index((trial / 2) as u64 % syncs, syncs) + rotation) % syncs + 1
        });
        let later = syncs.saturating_sub(failed);
        let cut = (trial % 2 == 1 && later > 0)
            .then(|| failed + 1 + derive_seed(seed, &["external", "eio-sync", &t, "cut"]) % later);
        Some(PowerLossPlan {
            trial,
            writer_seed: base.writer_seed,
            point: PowerLossPoint::FailedSync { failed, cut },
            state_seed: derive_seed(seed, &["external", "eio-sync", &t, "states"]),
        })
    }

    /// The crash time for a traced clean run of `clean`, for a timed point.
    pub fn crash_after(&self, clean: Duration) -> Option<Duration> {
        match self.point {
            PowerLossPoint::Time { at_ppm } => {
                Some(Duration::from_nanos((clean.as_nanos() as u64).saturating_mul(at_ppm as u64) / 1_000_000))
            }
            PowerLossPoint::Syscall { .. } | PowerLossPoint::Call { .. } | PowerLossPoint::FailedSync { .. } => None,
        }
    }
}

/// The `j`-th element (j < n) of the bit-reversal permutation of the
/// smallest power of two >= n, with the elements >= n left out: every
/// prefix is spread evenly over 0..n.
fn spread_index(j: u64, n: u64) -> u64 {
    let bits = 64 - (n - 1).leading_zeros();
    let reverse = |i: u64| if bits == 0 { 0 } else { i.reverse_bits() >> (64 - bits) };
    let mut seen = 0;
    for i in 0.. {
        let r = reverse(i);
        if r < n {
            if seen == j {
                return r;
            }
            seen += 1;
        }
    }
    unreachable!("j < n")
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
        let a = TrialPlan::new(7, CrashKind::Sigkill, 3);
        assert_eq!(a, TrialPlan::new(7, CrashKind::Sigkill, 3));
        assert_ne!(a.writer_seed, TrialPlan::new(7, CrashKind::Sigkill, 4).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::new(7, CrashKind::Abort, 3).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::new(8, CrashKind::Sigkill, 3).writer_seed);
        assert_ne!(a.writer_seed, TrialPlan::clean_writer_seed(7));
    }

    #[test]
    fn crash_times_cover_the_clean_run_uniformly() {
        let clean = Duration::from_millis(10);
        let mut buckets = [0u32; 10];
        for t in 0..2000 {
            let at = TrialPlan::new(1, CrashKind::Sigkill, t).crash_after(clean);
            assert!(at < clean);
            buckets[(at.as_nanos() * 10 / clean.as_nanos()) as usize] += 1;
        }
        // 200 expected per bucket; 120 is > 5 sigma away.
        assert!(buckets.iter().all(|&b| b > 120), "{buckets:?}");
    }

    #[test]
    fn power_loss_points_alternate_and_cover_every_call_boundary() {
        let calls = 5;
        let plans: Vec<PowerLossPlan> =
            (0..30).map(|t| PowerLossPlan::new(3, t, calls, ProgramPoints::Default)).collect();
        let mut boundaries = std::collections::BTreeSet::new();
        for p in &plans {
            assert_eq!(
                *p,
                PowerLossPlan::new(3, p.trial, calls, ProgramPoints::Default),
                "a function of seed, trial and calls"
            );
            match p.point {
                PowerLossPoint::Syscall { nth, when } => {
                    assert_eq!(p.trial % 2, 0);
                    assert!((1..=calls).contains(&nth));
                    assert!(boundaries.insert((nth, when == CrashWhen::After)), "each boundary once");
                }
                PowerLossPoint::Time { .. } => assert!(p.trial % 2 == 1 || p.trial >= 20),
                PowerLossPoint::Call { .. } | PowerLossPoint::FailedSync { .. } => {
                    panic!("default points are sync calls")
                }
            }
        }
        assert_eq!(boundaries.len(), 10, "all 5 calls, before and after");
        let whens: Vec<bool> = plans[..8]
            .iter()
            .filter_map(|p| match p.point {
                PowerLossPoint::Syscall { when, .. } => Some(when == CrashWhen::After),
                _ => None,
            })
            .collect();
        assert_eq!(whens, [false, true, false, true], "the first call trials alternate before and after");
        // The first few call trials are spread over the run, not bunched.
        let first: Vec<u64> = plans
            .iter()
            .take(8)
            .filter_map(|p| match p.point {
                PowerLossPoint::Syscall { nth, .. } => Some(nth),
                _ => None,
            })
            .collect();
        assert!(first.iter().max().unwrap() - first.iter().min().unwrap() >= 2, "{first:?}");
        assert!(
            PowerLossPlan::new(3, 0, 0, ProgramPoints::Default).crash_after(Duration::from_millis(1)).is_some(),
            "no calls: timed"
        );
        assert_eq!(plans[0].writer_seed, TrialPlan::new(3, CrashKind::PowerLoss, 0).writer_seed);
        assert_ne!(plans[0].state_seed, plans[2].state_seed);
    }

    #[test]
    fn syscall_points_cover_every_traced_call_before_and_after_for_every_crash_kind() {
        let calls = 7u64;
        for crash in [CrashKind::Sigkill, CrashKind::Abort] {
            let mut seen = std::collections::BTreeSet::new();
            for t in 0..(4 * calls as u32) {
                match TrialPlan::new(9, crash, t).call_point(9, calls) {
                    Some((nth, when)) => {
                        assert_eq!(t % 2, 0, "even trials crash at calls");
                        assert!((1..=calls).contains(&nth));
                        assert!(seen.insert((nth, when == CrashWhen::After)), "each boundary once");
                    }
                    None => assert_eq!(t % 2, 1, "odd trials crash at a random time"),
                }
            }
            assert_eq!(seen.len(), 2 * calls as usize, "every call, before and after");
            assert_eq!(TrialPlan::new(9, crash, 4 * calls as u32).call_point(9, calls), None, "then random times");
            assert_eq!(TrialPlan::new(9, crash, 0).call_point(9, 0), None, "no call: a random time");
        }
        // Power loss: the same positions as the sync-call points, counted
        // over every traced call instead.
        for t in 0..30 {
            let (a, b) = (
                PowerLossPlan::new(9, t, calls, ProgramPoints::Default),
                PowerLossPlan::new(9, t, calls, ProgramPoints::Syscalls),
            );
            match (a.point, b.point) {
                (PowerLossPoint::Syscall { nth, when }, PowerLossPoint::Call { nth: n, when: w }) => {
                    assert_eq!((nth, when), (n, w))
                }
                (PowerLossPoint::Time { at_ppm }, PowerLossPoint::Time { at_ppm: b }) => assert_eq!(at_ppm, b),
                other => panic!("trial {t}: {other:?}"),
            }
        }
        assert_eq!("syscalls".parse::<ProgramPoints>(), Ok(ProgramPoints::Syscalls));
        assert_eq!("default".parse::<ProgramPoints>(), Ok(ProgramPoints::Default));
        assert!("all".parse::<ProgramPoints>().unwrap_err().contains("--points `all`"));
    }

    #[test]
    fn eio_sync_trials_fail_every_sync_and_cut_at_the_end_or_a_later_sync() {
        let syncs = 5;
        let mut failed_seen = std::collections::BTreeSet::new();
        for t in 0..(2 * syncs as u32) {
            let p = PowerLossPlan::eio_sync(4, t, syncs, None).unwrap();
            assert_eq!(p, PowerLossPlan::eio_sync(4, t, syncs, None).unwrap(), "a function of seed, trial, syncs");
            let PowerLossPoint::FailedSync { failed, cut } = p.point else { panic!("{:?}", p.point) };
            assert!((1..=syncs).contains(&failed));
            failed_seen.insert(failed);
            match cut {
                None => assert!(t % 2 == 0 || failed == syncs, "odd trials cut at a later sync when there is one"),
                Some(c) => {
                    assert_eq!(t % 2, 1, "even trials cut after the end");
                    assert!((failed + 1..=syncs).contains(&c), "the cut comes after the failed sync: {c}");
                }
            }
            let pair = PowerLossPlan::eio_sync(4, t ^ 1, syncs, None).unwrap();
            assert!(
                matches!(pair.point, PowerLossPoint::FailedSync { failed: f, .. } if f == failed),
                "pairs share the failed sync"
            );
        }
        assert_eq!(failed_seen.len(), syncs as usize, "every data sync fails in some trial");
        for t in 0..6 {
            let p = PowerLossPlan::eio_sync(4, t, syncs, Some(2)).unwrap();
            assert!(matches!(p.point, PowerLossPoint::FailedSync { failed: 2, .. }), "eio-sync:2 fails the second");
        }
        assert_eq!(PowerLossPlan::eio_sync(4, 0, 0, None), None, "no data sync: nothing to fail");
        assert_ne!(
            PowerLossPlan::eio_sync(4, 0, syncs, None).unwrap().writer_seed,
            PowerLossPlan::new(4, 0, syncs, ProgramPoints::Default).writer_seed,
            "its own seeds"
        );
    }

    #[test]
    fn spread_indices_are_a_permutation_with_spread_prefixes() {
        for n in [1u64, 2, 3, 7, 8, 100] {
            let all: std::collections::BTreeSet<u64> = (0..n).map(|j| spread_index(j, n)).collect();
            assert_eq!(all, (0..n).collect());
        }
        assert_eq!((0..4).map(|j| spread_index(j, 100)).collect::<Vec<_>>(), vec![0, 64, 32, 96]);
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
