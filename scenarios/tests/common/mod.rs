//! Shared by the scenario tests: how to run a matrix on this crate's worker.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crashlab::crash::PointSelection;
use crashlab::expectation::PersistenceModel;
use crashlab::lab::pool::PoolConfig;
use crashlab::matrix::run_matrix;
use crashlab::report::survival::{MatrixConfig, SurvivalReport};
use crashlab::scenario::ScenarioId;
use crashlab::vocab::CrashKind;
use crashlab::worker_pool::WorkerCommand;

pub fn pool(dir: &Path, jobs: usize) -> PoolConfig {
    PoolConfig {
        command: WorkerCommand::binary(env!("CARGO_BIN_EXE_crashlab-worker")),
        jobs,
        dir: dir.to_owned(),
        watchdog_secs: 60,
    }
}

pub fn config(seed: u64, points: PointSelection, crashes: Vec<CrashKind>) -> MatrixConfig {
    MatrixConfig {
        seed,
        file_size: 64 * 1024,
        txns: 8,
        points,
        trials: 1,
        scenarios: ScenarioId::standard(),
        crashes,
        models: vec![PersistenceModel::ProcessCrash],
        tear: 512,
        shard: None,
        real: Vec::new(),
        real_sample: None,
    }
}

#[path = "../../../harness/tests/support/report_schema_validation.rs"]
mod report_schema_validation;

/// Run `config` on this crate's worker. Every report is checked against the
/// committed JSON Schema on the way out.
pub fn run(config: &MatrixConfig, dir: &Path) -> SurvivalReport {
    let report = run_matrix(config, &pool(dir, 2), &AtomicBool::new(false), &|_| {}).expect("the matrix runs");
    report_schema_validation::assert_valid(&report, "a scenario-test report");
    report
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

/// Check a report built or completed by a test against the committed JSON Schema.
pub fn assert_valid(report: &SurvivalReport, what: &str) {
    report_schema_validation::assert_valid(report, what);
}
