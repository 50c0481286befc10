//! Shared by the scenario tests: how to run a matrix on this crate's worker.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crashlab::crash::{CrashKind, PointSelection};
use crashlab::lab::pool::{PoolConfig, WorkerCommand};
use crashlab::matrix::run_matrix;
use crashlab::report::{MatrixConfig, SurvivalReport};
use crashlab::scenario::ScenarioId;

pub fn pool(dir: &Path, jobs: usize) -> PoolConfig {
    PoolConfig {
        command: WorkerCommand::binary(env!("CARGO_BIN_EXE_crashlab-worker")),
        jobs,
        dir: dir.to_owned(),
        watchdog_secs: 60,
    }
}

pub fn config(seed: u64, points: PointSelection, crashes: Vec<CrashKind>) -> MatrixConfig {
    MatrixConfig { seed, file_size: 64 * 1024, txns: 8, points, trials: 1, scenarios: ScenarioId::standard(), crashes }
}

pub fn run(config: &MatrixConfig, dir: &Path) -> SurvivalReport {
    run_matrix(config, &pool(dir, 2), &AtomicBool::new(false), &|_| {}).expect("the matrix runs")
}

/// The directories the scenario tests run on: the default temp dir, and
/// tmpfs where the machine has one.
pub fn filesystems() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut out = vec![("default temp dir", tempfile::tempdir().expect("temp dir"))];
    if Path::new("/dev/shm").is_dir() {
        if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
            out.push(("tmpfs (/dev/shm)", d));
        }
    }
    out
}
