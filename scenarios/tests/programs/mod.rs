//! Shared by the tests of users' programs (`run --writer` on the example
//! workloads): their command lines, a fast directory, and a run checked for
//! what every run must be.

#![allow(dead_code)]

use std::sync::atomic::AtomicBool;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ExternalReport;

#[path = "../../../harness/tests/support/report_schema_validation.rs"]
mod report_schema_validation;

/// `crashlab-workload EXAMPLE ROLE OPTIONS`, the binary's path quoted.
pub fn workload(example: &str, role: &str, options: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_crashlab-workload");
    assert!(!exe.contains('\''), "the test quotes the path with '");
    format!("'{exe}' {example} {role} {options}").trim_end().to_owned()
}

/// tmpfs when the machine has it (msync there costs nothing), else the
/// default temp dir. The oracle's model does not depend on the filesystem.
pub fn fast_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// Run `config`: the run works, its report validates against the schema,
/// the clean run passes, and nothing is left in the run's directory.
pub fn run(config: &ExternalConfig) -> ExternalReport {
    let report = run_external(config, &AtomicBool::new(false), &|_| {})
        .unwrap_or_else(|e| panic!("`{}`: the run fails: {e}", config.writer.text));
    let json = serde_json::to_value(&report).expect("reports serialize");
    report_schema_validation::assert_valid_external_report(&json, &config.writer.text);
    assert_eq!(report.clean_run.checker, CheckerVerdict::Consistent, "{}", report.human_summary());
    assert!(std::fs::read_dir(&config.dir).unwrap().next().is_none(), "the run left files in {}", config.dir.display());
    report
}
