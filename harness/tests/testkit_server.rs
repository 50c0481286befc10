//! The testkit's checker runs as a checker server (protocol v1.1): one
//! re-execution of the test binary per job judges every directory of that
//! job; `.checker_per_process()` goes back to one process per directory
//! (protocol v1), whose environment has the writer's `CRASHLAB_SEED`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crashlab::testkit::{Crash, CrashTest};

const PAGE: usize = 4096;
const PAGES: usize = 6;

/// Checks made by this process (the checker's), over its whole life.
static CHECKS: AtomicU64 = AtomicU64::new(0);

/// A page log that syncs each page before acking it (correct), and a
/// checker that also fails once this process has judged `fail_after`
/// directories: it fails only when one process judges many.
fn page_log(name: &str, base: &Path, fail_after: u64) -> CrashTest<'static> {
    CrashTest::new(name)
        .file("pages.bin", PAGES * PAGE)
        .writer(|ctx| {
            for i in 0..PAGES {
                ctx.map()[i * PAGE..(i + 1) * PAGE].fill(i as u8 + 1);
                ctx.msync(i * PAGE..(i + 1) * PAGE)?;
                ctx.ack(format!("page {i}"));
            }
            // Most random crash times land after the acks, so no crash
            // kind is left with nothing acknowledged.
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        })
        .checker(move |dir, acks| {
            let n = CHECKS.fetch_add(1, Ordering::SeqCst) + 1;
            if n > fail_after {
                return Err(format!("check {n} in process {}", std::process::id()));
            }
            // The working directory is the directory judged, as for v1.
            if std::env::current_dir().map_err(|e| e.to_string())? != dir {
                return Err(format!("the working directory is not {}", dir.display()));
            }
            let bytes = std::fs::read(dir.join("pages.bin")).map_err(|e| e.to_string())?;
            for i in 0..acks.len() {
                if bytes[i * PAGE..(i + 1) * PAGE].iter().any(|&b| b != i as u8 + 1) {
                    return Err(format!("acked page {i} is lost"));
                }
            }
            Ok(())
        })
        .crashes([Crash::Sigkill, Crash::PowerLoss])
        .trials(6)
        .seed(2)
        .jobs(1)
        .dir(base)
}

fn base() -> Option<tempfile::TempDir> {
    (!crashlab::testkit::is_reexecution()).then(|| tempfile::tempdir().unwrap())
}

fn path(base: &Option<tempfile::TempDir>) -> &Path {
    base.as_ref().map_or(Path::new("/nonexistent/crashlab-testkit-role"), |t| t.path())
}

/// With one job, one server judges every trial's directory: the 5th check
/// in one process fails (the sigkill trials alone are 6 checks), which v1
/// (a process per check) never reaches.
#[test]
fn one_checker_server_judges_every_directory_of_a_job() {
    let base = base();
    let report = page_log("one_checker_server_judges_every_directory_of_a_job", path(&base), 4).try_run().unwrap();
    let v = report.violations.first().unwrap_or_else(|| panic!("no check past the 4th in one process: {report}"));
    let n: u64 = v.reason.strip_prefix("check ").and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(n >= 5 && v.reason.contains(" in process "), "{}", v.reason);
    let external = report.external.as_ref().unwrap();
    assert!(external.config.checker_server, "the testkit uses the server by default");
}

#[test]
fn a_checker_per_process_is_one_process_per_directory() {
    let base = base();
    let report = page_log("a_checker_per_process_is_one_process_per_directory", path(&base), 1)
        .checker_per_process()
        .try_run()
        .unwrap();
    assert!(!report.violation_found(), "{report}");
    let external = report.external.as_ref().unwrap();
    assert!(!external.config.checker_server);
    let pl = external.power_loss.as_ref().unwrap();
    assert!(pl.checker_runs > 6, "several directories judged, each by a process of its own: {report}");
}
