//! The example workloads (`crashlab-workload`, workload protocol v1) under
//! real process crashes: the correct designs pass every crash kind, and
//! crashlab catches exactly the mistakes a process crash can catch.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{replay_trial, run_external, ExternalConfig, Replayed};
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::{CrashSection, Delivery, ExternalReport, ReplayTarget};
use crashlab::vocab::CrashKind;

#[path = "../../harness/tests/support/report_schema_validation.rs"]
mod report_schema_validation;

const ALL_PROCESS_CRASHES: [CrashKind; 3] = CrashKind::PROCESS_CRASHES;

fn workload(example: &str, role: &str, options: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_crashlab-workload");
    assert!(!exe.contains('\''), "the test quotes the path with '");
    format!("'{exe}' {example} {role} {options}")
}

/// `options` go to the writer (`--records N`, `--pace-us N`).
fn config(example: &str, crashes: &[CrashKind], trials: u32, dir: &Path, options: &str) -> ExternalConfig {
    let writer = workload(example, "writer", options);
    let mut c = ExternalConfig::new(&writer, &workload(example, "checker", ""), None, false)
        .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = trials;
    c.seed = 11;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c
}

fn run(example: &str, crashes: &[CrashKind], trials: u32, dir: &Path, options: &str) -> ExternalReport {
    let report = run_external(&config(example, crashes, trials, dir, options), &AtomicBool::new(false), &|_| {})
        .unwrap_or_else(|e| panic!("{example}: the run fails: {e}"));
    let json = serde_json::to_value(&report).expect("reports serialize");
    report_schema_validation::assert_valid_external_report(&json, example);
    assert_eq!(report.crashes.len(), crashes.len());
    assert_eq!(report.clean_run.checker, CheckerVerdict::Consistent, "{example}: {}", report.human_summary());
    report
}

/// Where the examples run: tmpfs when the machine has it (fast and steady
/// msync), else the default temp dir.
fn fast_dir() -> (tempfile::TempDir, bool) {
    if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
        return (d, true);
    }
    (tempfile::tempdir().unwrap(), false)
}

fn filesystems() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut out = vec![("default temp dir", tempfile::tempdir().unwrap())];
    if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
        out.push(("tmpfs", d));
    }
    out
}

/// Writer options for tests that need crashes to strike mid-run: a pause
/// after each ack makes the writer's work (~20 ms on tmpfs) dwarf its
/// start-up. Unpaced, the whole clean run takes under a millisecond, so on
/// a loaded machine every crash time (a fraction of the clean run, counted
/// from the spawn) can fall before the first ack: CI once saw 24 of 24
/// `abort` trials end with no ack.
const PACED: &str = "--pace-us 300";

fn section(report: &ExternalReport, crash: CrashKind) -> &CrashSection {
    report.crashes.iter().find(|s| s.crash == crash).expect("a section per crash kind")
}

/// The crashes really happened: signals reached running writers, files were cut.
fn assert_crashes_struck(report: &ExternalReport, example: &str) {
    for s in &report.crashes {
        let ctx = format!("{example} {}: {}", s.crash, report.human_summary());
        assert!(s.crashed > 0, "{ctx}: no crash struck a running writer");
        assert!(s.acks_seen > 0, "{ctx}: no ack to judge");
        match s.crash {
            CrashKind::Sigkill => assert!(s.writer_ends.contains_key("signal SIGKILL"), "{ctx}"),
            CrashKind::Abort => assert!(s.writer_ends.contains_key("signal SIGABRT"), "{ctx}"),
            _ => {}
        }
    }
}

#[test]
fn correct_designs_pass_every_process_crash() {
    let mut died_of_sigbus = 0;
    for (fs, dir) in filesystems() {
        // Fewer records on a real disk, where each msync waits for it.
        let options = if fs == "tmpfs" { PACED.to_owned() } else { format!("--records 16 {PACED}") };
        for example in ["wal", "shadow"] {
            let report = run(example, &ALL_PROCESS_CRASHES, 24, dir.path(), &options);
            assert!(!report.violation_found(), "{example} on {fs}: {}", report.human_summary());
            assert_crashes_struck(&report, example);
            if example == "wal" {
                died_of_sigbus += section(&report, CrashKind::Sigbus).died_of_sigbus;
            }
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "trial directories left in {fs}");
    }
    // The log grows into the cut: some writers must have died of it.
    assert!(died_of_sigbus > 0, "no wal writer died of SIGBUS");
}

/// The point of the lab: acking before msync and trusting MS_ASYNC lose
/// nothing when only the process dies, because the page cache outlives it.
/// Only a power loss catches these two.
#[test]
fn mistakes_only_power_loss_catches_pass_every_process_crash() {
    let (dir, _) = fast_dir();
    for example in ["wal-ack-before-msync", "wal-ms-async"] {
        let report = run(example, &ALL_PROCESS_CRASHES, 24, dir.path(), PACED);
        assert!(!report.violation_found(), "{example}: {}", report.human_summary());
        assert_crashes_struck(&report, example);
    }
}

#[test]
fn map_private_loses_every_ack_after_a_crash_though_the_clean_run_passes() {
    let (dir, _) = fast_dir();
    let report = run("wal-map-private", &[CrashKind::Sigkill, CrashKind::Abort], 24, dir.path(), PACED);
    assert!(report.violation_found(), "{}", report.human_summary());
    assert_crashes_struck(&report, "wal-map-private");
    for s in &report.crashes {
        assert!(s.violations > 0, "{}", report.human_summary());
        for t in &s.trials_detail {
            let before_checkpoint = t.acks < report.clean_run.acks;
            match (&t.delivery, t.acks) {
                // Killed after an ack, before the checkpoint at exit: the file never got it.
                (Delivery::Signal { .. }, 1..) if before_checkpoint => {
                    let reason = t.checker.reason().unwrap_or_else(|| panic!("{} trial {} passed", s.crash, t.trial));
                    assert!(reason.starts_with("acked record 0 is missing"), "{reason}");
                }
                // No ack yet: nothing to lose.
                (_, 0) => assert_eq!(t.checker, CheckerVerdict::Consistent, "{} trial {}", s.crash, t.trial),
                // Every record acked: the checkpoint may have run, or run partly.
                _ => {}
            }
        }
        for f in &s.failures {
            assert!(f.replay.starts_with("crashlab replay --writer "), "{}", f.replay);
            assert!(f.replay.contains(&format!("--crash {} --seed 11 --trial {} ", s.crash, f.trial)), "{}", f.replay);
        }
    }
}

#[test]
fn a_commit_flag_written_before_its_payload_is_caught() {
    let (dir, tmpfs) = fast_dir();
    // A kill lands inside the payload fill in about half the trials on
    // tmpfs, a tenth on a disk, where msync takes longer.
    let trials = if tmpfs { 40 } else { 150 };
    let report = run("flag-before-payload", &[CrashKind::Sigkill, CrashKind::Sigbus], trials, dir.path(), "");
    for s in &report.crashes {
        assert!(s.violations > 0, "{} never caught it: {}", s.crash, report.human_summary());
        for f in &s.failures {
            assert!(f.reason.contains("is marked committed but its payload is incomplete"), "{}", f.reason);
        }
    }
    // The cut lands right past the payload being filled: its next store dies.
    assert!(section(&report, CrashKind::Sigbus).died_of_sigbus > 0, "{}", report.human_summary());
}

#[test]
fn replaying_a_violation_re_creates_it() {
    let (dir, _) = fast_dir();
    // A paced writer (2 ms of sleep after each of 24 acks): its timeline
    // hardly depends on the machine's load, so a replayed crash time lands
    // about where the original did.
    let config = config("wal-map-private", &[CrashKind::Sigkill], 12, dir.path(), "--records 24 --pace-us 2000");
    let report = run_external(&config, &AtomicBool::new(false), &|_| {}).unwrap();
    let s = &report.crashes[0];
    // The failure whose crash came nearest the middle of the run: a replay
    // whose writer runs somewhat faster or slower still kills it after an
    // ack and before its checkpoint at exit.
    let clean_ns = report.clean_run.duration_ns;
    let middle = |trial: u32| (s.trials_detail[trial as usize].crash_at_ns as i64 - clean_ns as i64 / 2).abs();
    let f = s.failures.iter().min_by_key(|f| middle(f.trial)).expect("a violation to replay");
    let detail = &s.trials_detail[f.trial as usize];
    let target = ReplayTarget::Trial { crash: CrashKind::Sigkill, trial: f.trial, clean_ns };
    let mut verdicts = Vec::new();
    // Timing on a loaded machine varies: one of three replays must land
    // where the original did.
    for _ in 0..3 {
        let Replayed::Trial(o) = replay_trial(&config, target, &AtomicBool::new(false)).unwrap() else {
            panic!("a trial target replays a trial")
        };
        assert_eq!(o.plan.trial, f.trial);
        assert_eq!(o.plan.writer_seed, detail.writer_seed, "the writer's seed is re-created");
        assert_eq!(o.crash_at_ns, detail.crash_at_ns, "the crash time is replayed exactly");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the replay left files behind");
        if o.checker.is_violation() && !o.acks.is_empty() {
            return;
        }
        verdicts.push(o);
    }
    panic!("no replay of {} reproduced its violation: {verdicts:#?}", f.replay);
}
