//! The fixed maxima of the numeric flags (`--size`, `--txns`, `--trials`,
//! `--points random:N`, `--jobs`, `--timeout`): refused before anything
//! is generated, so a huge value costs nothing. What a config needs of
//! the machine within these maxima is [`crate::limits`]'s part.
//!
//! Architecture Invariant: pure, and a leaf (only [`crate::crash`]'s point
//! selection), so the engine can check a config without reaching up.

use crate::crash::PointSelection;

/// Largest file under test (`--size`, `--sizes`): 1 GiB.
pub const MAX_FILE_SIZE: u64 = 1 << 30;
/// Most acknowledged transactions per writer (`--txns`).
pub const MAX_TXNS: u32 = 100_000;
/// Most repetitions of a crash point (`--trials` of matrix and run), and
/// most real power cuts per filesystem (`--trials` of soundness).
pub const MAX_TRIALS: u32 = 1_000_000;
/// Most crash points per cell of `--points random:N`.
pub const MAX_RANDOM_POINTS: u32 = 1_000_000;
/// Most worker processes (`--jobs`).
pub const MAX_JOBS: usize = 1024;
/// `--FLAG VALUE` is at most `max` (`what` says what the limit is).
fn at_most(flag: &str, value: u64, max: u64, what: &str) -> Result<(), String> {
    if value > max {
        return Err(format!("{flag} {value} is above the maximum {max} ({what})"));
    }
    Ok(())
}

pub fn check_size(flag: &str, size: u64) -> Result<(), String> {
    at_most(flag, size, MAX_FILE_SIZE, "1 GiB: the lab keeps several images of the file in memory")
}

pub fn check_txns(txns: u32) -> Result<(), String> {
    at_most("--txns", txns as u64, MAX_TXNS as u64, "transactions per writer")
}

/// `what` the trials are (e.g. `repetitions of each crash point`).
pub fn check_trials(trials: u32, what: &str) -> Result<(), String> {
    if trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    at_most("--trials", trials as u64, MAX_TRIALS as u64, what)
}

pub const MATRIX_TRIALS: &str = "repetitions of each crash point";

pub fn check_points(points: PointSelection) -> Result<(), String> {
    match points {
        PointSelection::Random(n) => {
            at_most("--points random:N: N", n as u64, MAX_RANDOM_POINTS as u64, "crash points per cell")
        }
        PointSelection::All | PointSelection::Boundaries => Ok(()),
    }
}

pub fn check_jobs(jobs: usize) -> Result<(), String> {
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    at_most("--jobs", jobs as u64, MAX_JOBS as u64, "worker processes")
}

pub fn check_timeout(secs: u32) -> Result<(), String> {
    if secs == 0 {
        return Err("--timeout must be at least 1 second (0 would let a hung writer run forever)".into());
    }
    Ok(())
}
