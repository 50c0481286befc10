//! The example workloads (`crashlab-workload`, workload protocol v1) under
//! simulated power loss (`--crash power-loss`: the writer under the
//! durability oracle, every state a power loss may leave judged by the
//! checker): the correct designs pass, with whole pages and with torn
//! sectors; the mistakes only a power loss reveals are caught, each with a
//! minimal explanation whose replay reproduces it and whose minimality
//! holds; MAP_PRIVATE loses what it loses already in the page cache.
//!
//! These tests need ptrace and seccomp (the oracle); where they are missing
//! the runs fail with the oracle's error, they do not skip.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::power_loss::{replay_power_loss, PowerLossPoint, PowerLossReplayed, StateText};
use crashlab::external::ExternalConfig;
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::{PowerLossDelivery, PowerLossSection, PowerLossViolation};
use crashlab::vocab::CrashKind;

mod programs;
use programs::{fast_dir, workload};

fn config(example: &str, trials: u32, dir: &Path, options: &str, tear: Option<u64>, jobs: usize) -> ExternalConfig {
    let writer = workload(example, "writer", options);
    // The setup creates the files durably (their directory fsynced): a
    // file the writer created itself could lose its name in a power loss
    // (the `posix` model), and these examples are about their pages.
    let setup = workload(example, "setup", options);
    let mut c = ExternalConfig::new(&writer, &workload(example, "checker", ""), Some(&setup), false)
        .expect("the example commands parse");
    c.crashes = vec![CrashKind::PowerLoss];
    c.trials = trials;
    c.seed = 11;
    c.jobs = jobs;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c.tear = tear;
    c
}

fn run(config: &ExternalConfig) -> ExternalReport {
    let report = programs::run(config);
    assert!(report.crashes.is_empty(), "power loss has its own section");
    report
}

fn section(report: &ExternalReport) -> &PowerLossSection {
    report.power_loss.as_ref().expect("a power-loss section")
}

/// Both kinds of crash point were used, and some trial had a state space
/// worth the name (a unit whose floor and newest content differ).
fn assert_explored(report: &ExternalReport) {
    let s = section(report);
    let ctx = report.human_summary();
    assert!(s.syscall_trials > 0 && s.time_trials > 0, "{ctx}");
    assert!(s.calibration.sync_calls > 0, "{ctx}");
    // (A trial stops at its first failing state, often the first one in
    // Gray order, all floor: what it had to check is `states_total`.)
    assert!(s.trials_detail.iter().any(|t| t.dims > 0 && t.states_total > 1), "{ctx}");
    assert!(s.trials_detail.iter().all(|t| t.states_checked >= 1 && t.states_checked <= t.states_total), "{ctx}");
    assert!(
        s.trials_detail.iter().any(|t| matches!(t.delivery, PowerLossDelivery::Syscall { .. })),
        "no trial was crashed at a sync call: {ctx}"
    );
}

#[test]
fn correct_designs_pass_every_power_loss_state_with_whole_and_torn_pages() {
    let dir = fast_dir();
    for example in ["wal", "shadow"] {
        for tear in [None, Some(512)] {
            let report = run(&config(example, 12, dir.path(), "--records 16", tear, 2));
            assert!(!report.violation_found(), "{example} tear {tear:?}: {}", report.human_summary());
            assert_explored(&report);
            let s = section(&report);
            assert_eq!(s.tear, tear);
            assert_eq!(s.unit_bytes, tear.unwrap_or(s.unit_bytes));
            assert_eq!(s.consistent, 12);
            assert!(s.acks_seen > 0, "{example}: nothing acked, nothing judged");
        }
    }
}

/// The replay of one state of a failing trial, through the library (the
/// CLI's replay is tested in `harness/tests/external_power_loss_cli.rs`).
fn replay_state(config: &ExternalConfig, s: &PowerLossSection, trial: u32, state: &str) -> CheckerVerdict {
    let state: StateText = state.parse().expect("states in reports parse");
    let c = &s.calibration;
    match replay_power_loss(config, trial, c.traced_clean_ns, c.sync_calls, Some(&state), None, &AtomicBool::new(false))
        .expect("the replay runs")
    {
        PowerLossReplayed::State { verdict, notes, .. } => {
            assert!(notes.is_empty(), "a replay at a sync call finds the same units: {notes:?}");
            verdict
        }
        PowerLossReplayed::Trial(_) => panic!("a state replay checks one state"),
    }
}

/// A failure crashed at a sync call: its replay is exact for these
/// deterministic writers.
fn at_a_sync_call(s: &PowerLossSection) -> &PowerLossViolation {
    s.failures.iter().find(|f| matches!(f.point, PowerLossPoint::Syscall { .. })).expect("a failure at a sync call")
}

#[test]
fn acking_before_msync_and_trusting_ms_async_are_caught_minimally_and_replayed() {
    let dir = fast_dir();
    for example in ["wal-ack-before-msync", "wal-ms-async"] {
        let config = config(example, 12, dir.path(), "--records 16", None, 2);
        let report = run(&config);
        let s = section(&report);
        let ctx = report.human_summary();
        assert!(s.violations > 0, "{example} was not caught: {ctx}");
        assert_explored(&report);
        for f in &s.failures {
            let e = &f.finding.explanation;
            assert!(e.starts_with("checker failed: acked record "), "{e}");
            assert!(e.contains("; minimal set: ") && e.contains("durable floor"), "{e}");
            // The page cache is fine (a process crash loses nothing): the
            // violation needs something at its floor.
            assert!(!f.finding.floor_set.is_empty(), "{example}: {e}");
            assert!(f.finding.one_minimal, "{e}");
            assert!(f.finding.state.starts_with("newest:"), "{}", f.finding.state);
            assert!(f.replay.starts_with("crashlab replay --writer "), "{}", f.replay);
            assert!(
                f.replay.contains(&format!("--crash power-loss --seed 11 --trial {} ", f.trial))
                    && f.replay.contains(&format!("--calls {} ", s.calibration.sync_calls))
                    && f.replay.contains(" --state "),
                "{}",
                f.replay
            );
        }
        // The minimal state fails again when rebuilt...
        let f = at_a_sync_call(s);
        let verdict = replay_state(&config, s, f.trial, &f.finding.state);
        assert_eq!(verdict, CheckerVerdict::Violation { reason: f.finding.reason.clone() }, "{example}");
        // ...and is 1-minimal: any one of its floor units back at its newest
        // content, and the checker passes.
        let minimal: StateText = f.finding.state.parse().unwrap();
        for i in 0..minimal.items.len() {
            let mut fewer = minimal.clone();
            fewer.items.remove(i);
            let verdict = replay_state(&config, s, f.trial, &fewer.to_string());
            assert_eq!(verdict, CheckerVerdict::Consistent, "{example}: {fewer} (from {minimal})");
        }
    }
}

#[test]
fn the_first_failing_state_and_its_shrink_do_not_depend_on_jobs() {
    let dir = fast_dir();
    let found = |jobs| {
        let report = run(&config("wal-ack-before-msync", 8, dir.path(), "--records 16", None, jobs));
        let s = section(&report).clone();
        s.trials_detail
            .iter()
            .filter(|t| matches!(t.point, PowerLossPoint::Syscall { .. }))
            .map(|t| {
                let finding = s.failures.iter().find(|f| f.trial == t.trial).map(|f| f.finding.state.clone());
                (t.trial, t.states_total, t.states_checked, finding)
            })
            .collect::<Vec<_>>()
    };
    let one = found(1);
    assert!(one.iter().any(|t| t.3.is_some()), "{one:?}");
    assert_eq!(one, found(2));
}

#[test]
fn a_commit_flag_before_its_payload_needs_the_flag_page_newest_and_a_payload_page_at_its_floor() {
    let dir = fast_dir();
    let config = config("flag-before-payload", 8, dir.path(), "--records 6", None, 2);
    let report = run(&config);
    let s = section(&report);
    assert!(s.violations > 0, "{}", report.human_summary());
    for f in &s.failures {
        assert!(f.finding.reason.contains("is marked committed but its payload is incomplete"), "{}", f.finding.reason);
    }
    // At a sync call the page cache is whole (a process crash leaves a
    // correct file): the power loss must keep the flag and lose payload.
    let f = at_a_sync_call(s);
    let e = &f.finding.explanation;
    assert!(!f.finding.floor_set.is_empty() && !f.finding.newest_set.is_empty(), "{e}");
    assert!(e.contains("at its durable floor while ") && e.contains("newest content"), "{e}");
    assert!(f.finding.newest_set.iter().any(|u| u.starts_with("records.db page ")), "{e}");
    assert_eq!(
        replay_state(&config, s, f.trial, &f.finding.state),
        CheckerVerdict::Violation { reason: f.finding.reason.clone() }
    );
}

#[test]
fn map_private_loses_acked_records_even_in_the_page_cache_and_keeps_them_after_its_checkpoint() {
    let dir = fast_dir();
    let report = run(&config("wal-map-private", 16, dir.path(), "--records 16", None, 2));
    let s = section(&report);
    let ctx = report.human_summary();
    let clean_acks = report.clean_run.acks;
    let mut before_checkpoint = 0;
    for t in &s.trials_detail {
        let failure = s.failures.iter().find(|f| f.trial == t.trial);
        if t.delivery == PowerLossDelivery::WriterFinishedFirst {
            // The checkpoint (pwrite + fsync at exit) made everything durable.
            assert_eq!(t.verdict, CheckerVerdict::Consistent, "trial {}: {ctx}", t.trial);
        } else if (1..clean_acks).contains(&t.acks) {
            // Stores into a private mapping never reach the file: every
            // state fails, the page cache included.
            before_checkpoint += 1;
            let f = failure.unwrap_or_else(|| panic!("trial {} passed: {ctx}", t.trial));
            assert!(f.finding.floor_set.is_empty(), "{}", f.finding.explanation);
            assert!(
                f.finding.explanation.contains("which is what a process crash leaves"),
                "{}",
                f.finding.explanation
            );
        }
    }
    assert!(before_checkpoint > 0, "no crash struck between an ack and the checkpoint: {ctx}");
}
