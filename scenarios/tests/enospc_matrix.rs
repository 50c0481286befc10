//! The matrix's `enospc` column on real tmpfs filesystems of exact capacity:
//! each built-in MAP_SHARED writer starts from a sparse file with room for
//! N pages and must die of SIGBUS at the store the allocation walk predicts
//! (`page_allocation`), every ack before it intact (the page cache is the
//! file: a process crash, whatever the sync policy). Judged against the
//! semantics (tmpfs.rst, shared/README.md "Faults that are not crashes"),
//! not against crashlab's own verdict alone.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crashlab::crash::{crash_points, CrashPoint, PointSelection};
use crashlab::expectation::{AckExpectation, PersistenceModel};
use crashlab::lab::pool::{probe_capacity, run_batches, Batch};
use crashlab::lab::protocol::TrialPlan;
use crashlab::page_allocation::capacity_fault;
use crashlab::payload::BaseImage;
use crashlab::process_model::{AckStatus, ChildExit};
use crashlab::report::survival::Verdict;
use crashlab::scenario::ScenarioId;
use crashlab::spec::{Op, SyncPolicy};
use crashlab::trial_replay::replay_trial;
use crashlab::vocab::CrashKind;

/// One unsynced and one syncing MAP_SHARED row.
fn scenarios() -> Vec<ScenarioId> {
    vec!["shared/no-sync".parse().unwrap(), "shared/ms-sync-each".parse().unwrap()]
}

/// The mounts of this (the test's, outside every worker's) namespace
/// whose mount point lies under `dir`.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let dir = dir.to_str().unwrap();
    mounts.lines().filter(|l| l.split(' ').nth(1).is_some_and(|m| m.starts_with(dir))).map(str::to_owned).collect()
}

#[test]
fn every_writer_dies_of_sigbus_at_the_predicted_store_with_every_earlier_ack_intact() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::pool(dir.path(), 2);
    probe_capacity(&pool).unwrap().expect("CI runs as root: the enospc tmpfs mounts");
    let config = common::config(21, PointSelection::All, vec![CrashKind::Enospc]);
    for scenario in scenarios() {
        let spec = Arc::new(config.spec(scenario).unwrap());
        let points = crash_points(&spec, CrashKind::Enospc, PointSelection::All, 0);
        assert!(points.len() > 3, "{scenario}: the run allocates pages over several stores");
        let plans: Vec<TrialPlan> =
            points.iter().map(|&point| TrialPlan { kind: CrashKind::Enospc, point, power_loss: None }).collect();
        let batch = Batch { key: 0, spec: spec.clone(), base: BaseImage::Sparse, plans };
        let records = run_batches(&pool, &[batch], &AtomicBool::new(false), &|_| {}).unwrap().remove(0);
        let mut faulted = 0;
        for (point, record) in points.iter().zip(&records) {
            let CrashPoint::Capacity { pages } = *point else { panic!("{point}") };
            let ctx = format!("{scenario} at {point}");
            assert!(record.verdict.violations.is_empty(), "{ctx}: {:?}", record.verdict.violations);
            // Acks before the end: every one of them, intact.
            let end = capacity_fault(&spec, pages);
            let acks_before = spec.acks().filter(|(at, _, _)| end.is_none_or(|s| *at < s)).count();
            assert_eq!(record.verdict.acks.len(), acks_before, "{ctx}");
            assert!(record.verdict.acks.iter().all(|a| a.status == AckStatus::Survived), "{ctx}");
            match end {
                Some(s) => {
                    faulted += 1;
                    assert!(matches!(spec.ops[s], Op::Store { .. }), "{ctx}");
                    assert_eq!(record.facts.exit, ChildExit::Signaled(libc::SIGBUS), "{ctx}");
                    assert_eq!(record.facts.journal.in_flight, Some(s), "{ctx}: died inside store {s}");
                    assert_eq!(record.facts.journal.completed, s, "{ctx}: every op before store {s} completed");
                    assert_eq!(record.verdict.faulting_store, Some(s), "{ctx}");
                }
                None => {
                    assert_eq!(record.facts.exit, ChildExit::Exited(0), "{ctx}: room for every page");
                    assert_eq!(record.facts.journal.completed, spec.ops.len(), "{ctx}");
                }
            }
        }
        assert_eq!(faulted, points.len() - 1, "{scenario}: all but the control run out of pages");
    }
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new(), "no enospc tmpfs is seen outside the workers");
}

#[test]
fn the_column_is_as_expected_replays_and_leaves_no_mount_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(22, PointSelection::Boundaries, vec![CrashKind::Enospc, CrashKind::Clean]);
    config.scenarios = scenarios();
    config.scenarios.push("private/no-sync".parse().unwrap());
    let report = common::run(&config, dir.path());
    let enospc: Vec<_> = report.cells.iter().filter(|c| c.crash == CrashKind::Enospc).collect();
    assert_eq!(enospc.len(), 2, "the MAP_PRIVATE row has no enospc cell");
    for cell in &enospc {
        assert_eq!(cell.verdict, Verdict::AsExpected, "{:?}", cell.verdict_reason);
        assert_eq!(cell.model_violations, 0);
        assert_eq!(cell.survived, cell.acked, "a process crash keeps every completed MAP_SHARED store");
        assert!(cell.acked > 0 && cell.sigbus_faults + 1 == cell.trials, "{cell:?}");
        assert!(cell.replay.contains("--crash enospc --point capacity:"), "{}", cell.replay);
    }
    assert!(report.human_summary().contains("enospc: not applicable to the MAP_PRIVATE rows"));
    // A replay line re-creates its trial: same capacity, same faulting store.
    let line = enospc[0].replay.parse().unwrap();
    let outcome = replay_trial(&line, &common::pool(dir.path(), 1)).unwrap();
    let CrashPoint::Capacity { pages } = outcome.record.facts.point else { panic!("{}", enospc[0].replay) };
    let spec = config.spec(enospc[0].scenario).unwrap();
    assert_eq!(outcome.record.verdict.faulting_store, capacity_fault(&spec, pages));
    assert_eq!(outcome.cell.verdict, Verdict::AsExpected);
    // The workers are gone: neither their mounts nor their mount points remain.
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn under_a_simulated_power_loss_a_full_disk_keeps_the_synced_acks_and_may_lose_the_others() {
    // The instant is the SIGBUS; what a power loss then leaves is judged as
    // at a SIGKILL: msync(MS_SYNC) before each ack guarantees it, no sync
    // guarantees nothing (expectation.rs, the sigkill arms).
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(23, PointSelection::All, vec![CrashKind::Enospc]);
    config.scenarios = scenarios();
    config.models = vec![PersistenceModel::PowerLoss, PersistenceModel::PowerLossTorn];
    let report = common::run(&config, dir.path());
    assert_eq!(report.cells.len(), 2 * 2 + 2 * 2, "a sigkill and an enospc cell per row and model");
    for cell in report.cells.iter().filter(|c| c.crash == CrashKind::Enospc) {
        let ctx = format!("{} {}", cell.scenario, cell.model);
        assert_eq!(cell.verdict, Verdict::AsExpected, "{ctx}: {:?}", cell.verdict_reason);
        assert_eq!(cell.model_violations, 0, "{ctx}");
        assert!(cell.acked > 0 && cell.sigbus_faults + 1 == cell.trials, "{ctx}: {cell:?}");
        assert!(cell.replay.contains("--crash enospc --point capacity:"), "{}", cell.replay);
        if cell.scenario.policy == SyncPolicy::MsSyncEach {
            assert_eq!(cell.expectation, AckExpectation::AllSurvive, "{ctx}");
            assert_eq!(cell.survived, cell.acked, "{ctx}: every ack was msynced first");
        } else {
            assert_eq!(cell.expectation, AckExpectation::MayBeLost, "{ctx}");
            assert!(cell.lost + cell.torn > 0, "{ctx}: unsynced acks may be lost in some state");
        }
    }
}
