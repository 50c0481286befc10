//! The matrix's file-lifecycle rows (atomic replace via rename, a new file
//! per op; each with and without an fsync of the directory), run as
//! protocol-v1 programs by the external engine, in a survival report.
//!
//! Expected outcomes come from the documented semantics (fsync(2): a new
//! or renamed entry is durable only after an fsync of its directory;
//! rename(2): the name refers to the old or the new file, never neither),
//! as `expectation::expected_lifecycle_acks` states them: every cell comes
//! out `as-expected`, and the point of the family shows: the power-loss
//! cells of both `-no-dirsync` rows lose acks, those of the `-dirsync` rows
//! none.
//!
//! That loss is deterministic for a fixed seed: a power-loss trial's crash
//! point is a function of the seed, the trial and the count of sync calls
//! of the traced clean run (the same every run for these single-threaded
//! programs); half the trials crash at sync calls spread over all of them,
//! so some crash after the first ack; the setup made the initial state
//! durable, so the state that undoes that ack's rename or creation is among
//! the states of the trial, and every trial here is explored exhaustively
//! (asserted below), so the checker is shown it. Process crashes land at
//! measured times: nothing here depends on where they land.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::crash::PointSelection;
use crashlab::expectation::{AckExpectation, PersistenceModel};
use crashlab::lifecycle::family::{LifecycleKind, DEFAULT_ACKS};
use crashlab::lifecycle::rows::{lifecycle_config, run_lifecycle, LifecycleRun, DEFAULT_TRIALS};
use crashlab::report::survival::Verdict;
use crashlab::vocab::CrashKind;

mod common;

const SEED: u64 = 7;

fn lifecycle_run(dir: &std::path::Path) -> LifecycleRun {
    let models = [PersistenceModel::ProcessCrash, PersistenceModel::PowerLoss];
    let config = lifecycle_config(&LifecycleKind::ALL, DEFAULT_TRIALS, DEFAULT_ACKS, &CrashKind::MATRIX, &models)
        .expect("the default matrix has lifecycle cells");
    LifecycleRun {
        config,
        program: env!("CARGO_BIN_EXE_crashlab-worker").into(),
        seed: SEED,
        jobs: 2,
        timeout: Duration::from_secs(120),
        dir: dir.to_owned(),
        shard: None,
    }
}

#[test]
fn the_lifecycle_rows_come_out_as_the_semantics_promise_and_only_no_dirsync_loses_acks_to_power_loss() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    // A matrix of the lifecycle rows alone: no mmap row.
    let mut config = common::config(SEED, PointSelection::Boundaries, vec![CrashKind::Sigkill]);
    config.scenarios.clear();
    let mut report = common::run(&config, dir.path());
    assert!(report.cells.is_empty());
    let run = lifecycle_run(dir.path());
    let planned = run.planned_trials();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let on_trials = |n: usize| {
        done.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    };
    let section = run_lifecycle(&run, &AtomicBool::new(false), &on_trials).expect("the lifecycle rows run");
    report.lifecycle = Some(section);
    common::assert_valid(&report, "a matrix report with lifecycle rows");
    let summary = report.human_summary();
    let section = report.lifecycle.as_ref().unwrap();

    // sigkill and abort under process-crash, then power-loss, per kind.
    assert_eq!(section.cells.len(), 12, "{summary}");
    assert_eq!(done.into_inner() as u64, planned, "every planned trial counted");
    assert_eq!(section.summary.trials, planned);
    for c in &section.cells {
        let ctx = format!("{}: {summary}", c.key_text());
        assert_eq!(c.trials, DEFAULT_TRIALS as u64, "{ctx}");
        assert_eq!(c.verdict, Verdict::AsExpected, "{ctx}");
        assert_eq!(c.trials_corrupt, 0, "no kind ever leaves a file no write produced: {ctx}");
        let power_loss = c.crash == CrashKind::PowerLoss;
        assert_eq!(c.model == PersistenceModel::PowerLoss, power_loss, "{ctx}");
        let must_keep = !power_loss || c.kind.dir_fsync();
        let expected = if must_keep { AckExpectation::AllSurvive } else { AckExpectation::MayBeLost };
        assert_eq!(c.expectation, expected, "{ctx}");
        if !power_loss {
            assert_eq!(c.trials_lost, 0, "a process crash loses nothing: {ctx}");
            assert!(c.replay.starts_with("crashlab run --writer "), "{ctx}");
            continue;
        }
        // The premise of determinism: every state of every trial was checked.
        assert_eq!(c.exhaustive_trials, Some(c.trials), "{ctx}");
        assert!(c.states_checked.unwrap() >= c.trials, "{ctx}");
        if c.kind.dir_fsync() {
            assert_eq!(c.trials_lost, 0, "an fsynced directory keeps every acked entry: {ctx}");
            assert!(c.trials_with_acks > 0, "not vacuous: {ctx}");
        } else {
            assert!(c.trials_lost >= 1, "a power loss may undo an unsynced rename or creation: {ctx}");
            let f = &c.failures[0];
            assert_eq!(f.found, "lost", "{ctx}");
            let what = if c.kind.replaces() { r#"rename("state.tmp" -> "state")"# } else { r#"openat(creating "seg-"# };
            let explanation = f.details.last().unwrap();
            assert!(
                explanation.contains(what) && explanation.contains(r#"the directory "." was not fsynced after it"#),
                "the minimal state names the lost entry: {explanation}"
            );
            assert!(f.replay.starts_with("crashlab replay --writer ") && f.replay.contains("--crash power-loss"));
            assert_eq!(c.replay, f.replay, "the first failure replays the cell");
        }
    }
    assert!(report.all_as_expected(), "{summary}");
    assert!(summary.contains("lifecycle rows under power-loss"), "{summary}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the run left files in {}", dir.path().display());
}

#[test]
fn the_lifecycle_section_follows_the_matrix_models_and_crash_kinds() {
    let kinds = [LifecycleKind::CreateDirsync];
    let only_power = lifecycle_config(&kinds, 4, 3, &CrashKind::MATRIX, &[PersistenceModel::PowerLoss]).unwrap();
    assert!(only_power.crashes.is_empty() && only_power.power_loss);
    let sigbus_only = [CrashKind::Sigbus, CrashKind::Clean];
    let c =
        lifecycle_config(&kinds, 4, 3, &sigbus_only, &[PersistenceModel::ProcessCrash, PersistenceModel::PowerLoss]);
    assert!(c.as_ref().is_some_and(|c| c.crashes.is_empty() && c.power_loss), "{c:?}");
    assert!(lifecycle_config(&kinds, 4, 3, &sigbus_only, &[PersistenceModel::ProcessCrash]).is_none());
    assert!(lifecycle_config(&[], 4, 3, &CrashKind::MATRIX, &[PersistenceModel::ProcessCrash]).is_none());
    assert!(lifecycle_config(&kinds, 4, 3, &CrashKind::MATRIX, &[PersistenceModel::PowerLossTorn]).is_none());
}

/// Shards of the lifecycle rows merge into what one unsharded run finds:
/// the same cells, trials summed, the same verdicts (the counts of timed
/// crashes are measurements, listed in `NONDETERMINISTIC_FIELDS`).
#[test]
fn lifecycle_shards_merge_into_the_unsharded_rows() {
    use crashlab::report::merge::{merge_shards, NamedReport};
    use crashlab::report::survival::SurvivalReport;
    use crashlab::trial_space::Shard;
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let kinds = [LifecycleKind::ReplaceNoDirsync, LifecycleKind::CreateDirsync];
    let models = [PersistenceModel::ProcessCrash, PersistenceModel::PowerLoss];
    let run = |shard: Option<Shard>| -> SurvivalReport {
        let mut config = common::config(SEED, PointSelection::Boundaries, vec![CrashKind::Sigkill]);
        config.scenarios.clear();
        config.shard = shard;
        let mut report = common::run(&config, dir.path());
        let lifecycle = lifecycle_config(&kinds, 4, 3, &config.crashes, &models).unwrap();
        let rows = LifecycleRun { config: lifecycle, shard, ..lifecycle_run(dir.path()) };
        report.lifecycle = Some(run_lifecycle(&rows, &AtomicBool::new(false), &|_| {}).expect("the rows run"));
        report
    };
    let whole = run(None);
    let parts: Vec<NamedReport> = (1..=2)
        .map(|i| NamedReport { name: format!("shard {i}"), report: run(Some(Shard::new(i, 2).unwrap())) })
        .collect();
    let merged = merge_shards(&parts).expect("the shards merge");
    common::assert_valid(&merged, "merged lifecycle shards");
    let (w, m) = (whole.lifecycle.as_ref().unwrap(), merged.lifecycle.as_ref().unwrap());
    assert_eq!(m.config, w.config);
    assert_eq!(m.summary, w.summary);
    let fixed = |s: &crashlab::report::survival_lifecycle::LifecycleSection| {
        s.cells.iter().map(|c| (c.key_text(), c.trials, c.trials_corrupt, c.expectation, c.verdict)).collect::<Vec<_>>()
    };
    assert_eq!(fixed(m), fixed(w));
    let per_shard: Vec<u64> = parts.iter().map(|p| p.report.lifecycle.as_ref().unwrap().summary.trials).collect();
    assert_eq!(per_shard, vec![8, 8], "each shard runs its half of every cell's 4 trials");
}
