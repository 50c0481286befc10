//! The example checker servers of protocol v1.1
//! (`workloads/checker_servers/wal_checker_server.{py,c}`) judge the `wal`
//! example's power-loss states exactly as its v1 checker
//! (`crashlab-workload wal checker`) does: the correct `wal` passes, and
//! `wal-ack-before-msync` fails in the same trials with the same minimal
//! state and reason.
//!
//! These need ptrace and seccomp (the durability oracle), `python3` and a
//! C compiler (`cc`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::report::external::ExternalReport;
use crashlab::vocab::CrashKind;

#[path = "../../harness/tests/support/report_schema_validation.rs"]
mod report_schema_validation;

fn workload(example: &str, role: &str, options: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_crashlab-workload");
    assert!(!exe.contains('\''), "the test quotes the path with '");
    format!("'{exe}' {example} {role} {options}")
}

fn servers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/checker_servers")
}

/// The C server, compiled into `dir`.
fn c_server(dir: &Path) -> String {
    let exe = dir.join("wal_checker_server");
    let source = servers_dir().join("wal_checker_server.c");
    let out = std::process::Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&source)
        .output()
        .expect("cc runs");
    assert!(out.status.success(), "cc {}: {}", source.display(), String::from_utf8_lossy(&out.stderr));
    quoted(&exe)
}

fn python_server() -> String {
    let script = servers_dir().join("wal_checker_server.py");
    format!("python3 {}", quoted(&script))
}

fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    assert!(!text.contains('\''), "the test quotes {text} with '");
    format!("'{text}'")
}

/// `checker`: `None` for the v1 checker, else a server's command.
fn run(example: &str, server: Option<&str>, dir: &Path) -> ExternalReport {
    let writer = workload(example, "writer", "--records 6");
    let setup = workload(example, "setup", "--records 6");
    let mut c = match server {
        None => ExternalConfig::new(&writer, &workload(example, "checker", ""), Some(&setup), false),
        Some(s) => ExternalConfig::with_checker_server(&writer, s, Some(&setup), false),
    }
    .expect("the commands parse");
    c.crashes = vec![CrashKind::PowerLoss];
    c.trials = 6;
    c.seed = 11;
    c.jobs = 2;
    c.tear = Some(512);
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    let report = run_external(&c, &AtomicBool::new(false), &|_| {})
        .unwrap_or_else(|e| panic!("`{example}` with {server:?}: the run fails: {e}"));
    let json = serde_json::to_value(&report).unwrap();
    report_schema_validation::assert_valid_external_report(&json, example);
    assert_eq!(report.config.checker_server, server.is_some());
    report
}

/// What a trial crashed at a sync call found (it replays exactly; a
/// random time does not).
#[derive(Debug, PartialEq)]
struct AtSyncCall {
    trial: u32,
    violation: bool,
    states_checked: u64,
    /// The minimal state and its reason.
    minimal: Option<(String, String)>,
}

fn at_sync_calls(report: &ExternalReport) -> Vec<AtSyncCall> {
    let pl = report.power_loss.as_ref().expect("a power-loss section");
    pl.trials_detail
        .iter()
        .filter(|t| matches!(t.point, crashlab::external::power_loss::PowerLossPoint::Syscall { .. }))
        .map(|t| {
            let finding = pl
                .failures
                .iter()
                .find(|f| f.trial == t.trial)
                .map(|f| (f.finding.state.clone(), f.finding.reason.clone()));
            AtSyncCall {
                trial: t.trial,
                violation: t.verdict.is_violation(),
                states_checked: t.states_checked,
                minimal: finding,
            }
        })
        .collect()
}

#[test]
fn the_example_servers_in_c_and_python_give_the_v1_checkers_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let servers = [c_server(bin.path()), python_server()];
    for (example, violation) in [("wal", false), ("wal-ack-before-msync", true)] {
        let v1 = at_sync_calls(&run(example, None, dir.path()));
        assert_eq!(v1.len(), 3, "trials 0, 2, 4 crash at sync calls: {v1:?}");
        assert_eq!(v1.iter().any(|t| t.violation), violation, "`{example}` with its v1 checker: {v1:?}");
        for server in &servers {
            let v11 = at_sync_calls(&run(example, Some(server), dir.path()));
            assert_eq!(v11, v1, "`{example}`: `{server}` against the v1 checker");
        }
    }
}
