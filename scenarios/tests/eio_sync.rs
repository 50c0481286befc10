//! `--crash eio-sync`: one data sync fails with `EIO`, the writer runs on,
//! the power is cut later, every state is checked. The example workloads
//! `eio-ignore`, `eio-retry` and `eio-stop` (`scenarios/workloads/eio_log.rs`)
//! write one record per page, each `msync(MS_SYNC)`ed before its ack, and
//! differ only in what they do when that msync fails.
//!
//! Why each must be caught or pass, from the writers' code and the plan
//! (`PowerLossPlan::eio_sync`): the writer's data syncs are exactly its
//! msyncs, one per record (plus the retry's), so with `eio-sync:3` the
//! msync of record 2 fails. Even trials cut the power after the writer's
//! end, so after every ack it printed.
//! - `eio-ignore` acks record 2 anyway; nothing stores into page 2 again,
//!   so it stays uncertain (floor: the setup's zeros) through every later
//!   msync; the state with it at its floor loses an acked record: every
//!   even trial is a violation.
//! - `eio-retry` retries; the retry returns 0 without writing (the oracle
//!   holds page 2 back: no store since the failure, which write tracking
//!   would have reported), it acks record 2: every even trial is a
//!   violation.
//! - `eio-stop` exits 3 without acking record 2; records 0 and 1 were
//!   synced before: every state is consistent. It also passes `power-loss`
//!   and `sigkill` (it is correct), as do the two others (their mistake
//!   shows only when a sync fails).

use std::path::Path;
use std::time::Duration;

use crashlab::external::ExternalConfig;
use crashlab::program_plan::PowerLossPoint;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::{PowerLossDelivery, PowerLossSection};
use crashlab::vocab::CrashKind;

mod programs;
use programs::{fast_dir, run, workload};

const RECORDS: &str = "--records 6";

fn config(example: &str, crashes: &[CrashKind], trials: u32, dir: &Path) -> ExternalConfig {
    let mut c = ExternalConfig::new(
        &workload(example, "writer", RECORDS),
        &workload(example, "checker", ""),
        Some(&workload(example, "setup", RECORDS)),
        false,
    )
    .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = trials;
    c.seed = 11;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c
}

fn eio(report: &ExternalReport) -> &PowerLossSection {
    report.eio_sync.as_ref().expect("an eio-sync section")
}

/// Run `example` with `eio-sync:3` for 4 trials.
fn failed_third(example: &str) -> ExternalReport {
    let dir = fast_dir();
    let mut c = config(example, &[CrashKind::EioSync], 4, dir.path());
    c.eio_at = Some(3);
    let report = run(&c);
    let s = eio(&report);
    assert_eq!(s.calibration.data_syncs, 6, "one msync per record: {}", report.human_summary());
    assert_eq!(s.trials, 4);
    for t in &s.trials_detail {
        assert!(matches!(t.point, PowerLossPoint::FailedSync { failed: 3, .. }), "{:?}", t.point);
        let facts = t.eio.as_ref().expect("the writer reached the failed sync");
        assert_eq!((facts.nth, facts.syscall.as_str(), facts.acks_before), (3, "msync", 2));
        assert_eq!(facts.covered.len(), 1);
        assert_eq!(facts.covered[0].path, "eio.log");
        assert_eq!(facts.covered[0].uncertain_pages, 1, "the page of record 2");
    }
    report
}

#[test]
fn a_log_that_ignores_a_failed_msync_and_acks_is_caught() {
    let report = failed_third("eio-ignore");
    let s = eio(&report);
    for t in s.trials_detail.iter().filter(|t| t.trial % 2 == 0) {
        assert!(t.verdict.is_violation(), "trial {} cuts after the end: {}", t.trial, report.human_summary());
        let facts = t.eio.as_ref().unwrap();
        assert!(!facts.retried && facts.acks_after == 4, "it acked records 2..5: {facts}");
    }
    let v = &s.failures[0];
    assert!(v.finding.reason.contains("acked record 2 is missing"), "{}", v.finding.reason);
    assert!(v.replay.contains("--crash eio-sync:3 ") && v.replay.contains("--calls 6"), "{}", v.replay);
    assert!(report.human_summary().contains("VIOLATION eio-sync trial"), "{}", report.human_summary());
    assert_eq!(report.summary.verdict, "violation-found");
}

#[test]
fn a_log_that_retries_the_msync_and_trusts_the_second_success_is_caught() {
    let report = failed_third("eio-retry");
    let s = eio(&report);
    for t in s.trials_detail.iter().filter(|t| t.trial % 2 == 0) {
        assert!(t.verdict.is_violation(), "trial {}: {}", t.trial, report.human_summary());
        let facts = t.eio.as_ref().unwrap();
        assert!(facts.retried, "the retry covered the same file: {facts}");
        assert_eq!(t.delivery, PowerLossDelivery::WriterFinishedFirst);
    }
    assert!(s.failures.iter().all(|v| v.finding.reason.contains("acked record 2 is missing")));
}

#[test]
fn a_log_that_stops_on_a_failed_msync_passes_eio_sync_power_loss_and_sigkill() {
    let report = failed_third("eio-stop");
    let s = eio(&report);
    assert_eq!(s.violations, 0, "{}", report.human_summary());
    for t in &s.trials_detail {
        assert_eq!(t.delivery, PowerLossDelivery::WriterEnded { how: "exited with status 3".into() });
        let facts = t.eio.as_ref().unwrap();
        assert_eq!(facts.acks_after, 0, "no ack after the failure: {facts}");
    }
    let dir = fast_dir();
    let c = config("eio-stop", &[CrashKind::Sigkill, CrashKind::PowerLoss, CrashKind::EioSync], 8, dir.path());
    let report = run(&c);
    assert_eq!(report.summary.violations, 0, "{}", report.human_summary());
    assert_eq!(report.summary.verdict, "no-violation-found");
    let s = eio(&report);
    let failed: std::collections::BTreeSet<u64> = s
        .trials_detail
        .iter()
        .map(|t| match t.point {
            PowerLossPoint::FailedSync { failed, .. } => failed,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(failed.len(), 4, "8 trials fail 4 different syncs (two trials each)");
}

#[test]
fn the_ignoring_and_retrying_logs_pass_sigkill_and_power_loss() {
    for example in ["eio-ignore", "eio-retry"] {
        let dir = fast_dir();
        let c = config(example, &[CrashKind::Sigkill, CrashKind::PowerLoss], 8, dir.path());
        let report = run(&c);
        assert_eq!(report.summary.violations, 0, "{example}: {}", report.human_summary());
        assert!(report.eio_sync.is_none());
    }
}
