//! `--points syscalls`: process crashes and power losses just before or
//! just after any call the durability oracle traces, on the example
//! workloads `kv-header-first` (the mistake: a record counted in the mapped
//! header before the `pwrite` that appends it) and `kv-append-first` (the
//! correct order), and on `atomic-replace` (creates, renames, syncs
//! directories).
//!
//! What a crash at a call must find follows from the writers' code and the
//! process-crash semantics (the page cache outlives the process: every
//! store and every call that returned is in the file): killed just before
//! the `pwrite` of record k, `kv-header-first` leaves a header counting k+1
//! records in a file holding k; at every other call point either order
//! leaves every counted record in the file. Call points are deterministic
//! for these deterministic writers, so the assertions hold whatever the
//! machine's load; the random-time trials (odd ones) are not asserted on.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{replay_trial, ExternalConfig, Replayed};
use crashlab::program_plan::ProgramPoints;
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::{CrashSection, Delivery, ExternalReport, ReplayTarget};
use crashlab::report::external_power_loss::PowerLossDelivery;
use crashlab::vocab::{CrashKind, CrashWhen};

mod programs;
use programs::{fast_dir, run, workload};

/// Trials per crash kind: even trials take the call points, two per call
/// (before and after), so 4 × calls trials reach every one. The writers
/// below make at most 40 traced calls (asserted from the calibration).
const TRIALS: u32 = 160;

fn config(example: &str, options: &str, crashes: &[CrashKind], dir: &Path) -> ExternalConfig {
    let mut c = ExternalConfig::new(
        &workload(example, "writer", options),
        &workload(example, "checker", ""),
        Some(&workload(example, "setup", options)),
        false,
    )
    .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = TRIALS;
    c.seed = 11;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c.points = ProgramPoints::Syscalls;
    c
}

fn section(report: &ExternalReport, crash: CrashKind) -> &CrashSection {
    report.crashes.iter().find(|s| s.crash == crash).unwrap_or_else(|| panic!("a {crash} section"))
}

/// The traced calls of the writer (the power-loss section's calibration
/// is the same traced clean run the process crashes are placed by).
fn traced_calls(report: &ExternalReport) -> u64 {
    let calls = report.power_loss.as_ref().expect("a power-loss section").calibration.traced_calls;
    assert!(calls > 0 && 4 * calls <= TRIALS as u64, "{calls} traced calls: raise TRIALS to reach them all");
    calls
}

/// The (nth, when, syscall) of every trial of `s` crashed at a call, and
/// whether its checker found a violation.
fn call_trials(s: &CrashSection) -> Vec<((u64, CrashWhen, String), bool)> {
    s.trials_detail
        .iter()
        .filter_map(|t| match &t.delivery {
            Delivery::Call { nth, when, syscall, .. } => {
                Some(((*nth, *when, syscall.clone()), t.checker.is_violation()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_kill_just_before_the_extending_write_always_catches_a_header_stored_first() {
    let dir = fast_dir();
    let records = 4;
    let c = config(
        "kv-header-first",
        &format!("--records {records}"),
        &[CrashKind::Sigkill, CrashKind::Abort, CrashKind::PowerLoss],
        dir.path(),
    );
    let report = run(&c);
    let calls = traced_calls(&report);
    for crash in [CrashKind::Sigkill, CrashKind::Abort] {
        let s = section(&report, crash);
        let trials = call_trials(s);
        let points: std::collections::BTreeSet<_> = trials.iter().map(|(p, _)| (p.0, p.1)).collect();
        assert_eq!(points.len() as u64, 2 * calls, "{crash}: every call, before and after");
        let before_pwrite: Vec<_> =
            trials.iter().filter(|((_, when, sys), _)| *when == CrashWhen::Before && sys == "pwrite64").collect();
        assert_eq!(before_pwrite.len(), records, "{crash}: one point before each record's pwrite");
        for ((nth, when, sys), violation) in &trials {
            let expected = *when == CrashWhen::Before && sys == "pwrite64";
            assert_eq!(*violation, expected, "{crash} just {when} call {nth} ({sys})\n{}", report.human_summary());
        }
        let f = s.failures.iter().find(|f| matches!(f.delivery, Delivery::Call { .. })).expect("a failure at a call");
        assert!(f.reason.contains("the header counts"), "{}", f.reason);
        assert!(f.replay.contains("--points syscalls") && f.replay.contains("--calls"), "{}", f.replay);
    }
    // The power loss at those calls too (the header page's newest version
    // counts the record the file does not hold yet).
    let p = report.power_loss.as_ref().unwrap();
    assert!(p.violations > 0, "{}", report.human_summary());
    assert!(
        p.trials_detail.iter().any(|t| matches!(t.delivery, PowerLossDelivery::Call { .. })),
        "power-loss trials at traced calls"
    );
}

#[test]
fn the_replay_line_of_a_call_point_crash_reruns_it_exactly() {
    let dir = fast_dir();
    let c = config("kv-header-first", "--records 3", &[CrashKind::Sigkill, CrashKind::PowerLoss], dir.path());
    let report = run(&c);
    let calls = traced_calls(&report);
    let s = section(&report, CrashKind::Sigkill);
    let f = s.failures.iter().find(|f| matches!(f.delivery, Delivery::Call { .. })).expect("a failure at a call");
    let clean_ns = report.power_loss.as_ref().unwrap().calibration.traced_clean_ns;
    let target = ReplayTarget::TrialAtCalls { crash: CrashKind::Sigkill, trial: f.trial, clean_ns, calls };
    assert!(f.replay.ends_with(&format!("--calls {calls} --points syscalls --timeout 120")), "{}", f.replay);
    let Replayed::Trial(o) = replay_trial(&c, target, &AtomicBool::new(false)).expect("the replay runs") else {
        panic!("a trial")
    };
    assert_eq!(o.delivery, f.delivery, "the same call");
    assert_eq!(o.checker, CheckerVerdict::Violation { reason: f.reason.clone() });
}

#[test]
fn the_correct_order_and_an_atomic_replace_pass_at_every_call_point() {
    for (example, options) in [("kv-append-first", "--records 4"), ("atomic-replace", "--records 3")] {
        let dir = fast_dir();
        let c = config(example, options, &[CrashKind::Sigkill, CrashKind::Abort, CrashKind::PowerLoss], dir.path());
        let report = run(&c);
        let calls = traced_calls(&report);
        for crash in [CrashKind::Sigkill, CrashKind::Abort] {
            let s = section(&report, crash);
            let points: std::collections::BTreeSet<_> = call_trials(s).iter().map(|(p, _)| (p.0, p.1)).collect();
            assert_eq!(points.len() as u64, 2 * calls, "{example} {crash}: every call, before and after");
            assert_eq!(s.violations, 0, "{example} {crash}\n{}", report.human_summary());
        }
        let p = report.power_loss.as_ref().unwrap();
        assert_eq!(p.violations, 0, "{example} power-loss\n{}", report.human_summary());
        assert!(p.trials_detail.iter().filter(|t| matches!(t.delivery, PowerLossDelivery::Call { .. })).count() > 0);
    }
}
