//! The namespace examples and SQLite under simulated power loss with the
//! namespace model (`posix`, the default, and the per-filesystem models): programs that create,
//! rename and delete files. The correct designs pass every state; each
//! mistake is caught with the operation it lost named, by the rule it
//! missed; SQLite keeps the promises its documentation makes for each
//! mode, and `synchronous=FULL`'s documented weakness in rollback mode (the
//! last commit rolls back when the journal's unlink is lost) is found as
//! exactly that.
//!
//! Expected outcomes come from the POSIX contract (fsync(2): a new or
//! renamed entry is durable only after an fsync of its directory) and from
//! SQLite's documentation (quoted in `scenarios/workloads/sqlite_workload.py`).
//! Crash points at sync calls are deterministic for these deterministic
//! writers; the assertions that need a crash after an ack rely on them, not
//! on the random-time trials.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::power_loss::{replay_power_loss, PowerLossReplayed, StateText};
use crashlab::external::ExternalConfig;
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::PowerLossSection;
use crashlab::vocab::CrashKind;

mod programs;
use programs::{fast_dir, run, workload};

/// `writer`'s setup and writer, judged by `checker`'s checker.
fn config(writer: &str, checker: &str, options: &str, trials: u32, dir: &Path) -> ExternalConfig {
    let mut c = ExternalConfig::new(
        &workload(writer, "writer", options),
        &workload(checker, "checker", ""),
        Some(&workload(writer, "setup", options)),
        false,
    )
    .expect("the example commands parse");
    c.crashes = vec![CrashKind::PowerLoss];
    c.trials = trials;
    c.seed = 3;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c
}

fn section(report: &ExternalReport) -> &PowerLossSection {
    report.power_loss.as_ref().expect("a power-loss section")
}

#[test]
fn correct_programs_that_create_rename_and_grow_files_pass_every_state() {
    let dir = fast_dir();
    for example in ["atomic-replace", "segmented-log", "grow-ftruncate"] {
        let report = run(&config(example, example, "--records 12", 10, dir.path()));
        let s = section(&report);
        let ctx = format!("{example}: {}", report.human_summary());
        assert!(!report.violation_found(), "{ctx}");
        assert_eq!(s.fs_model.as_deref(), Some("posix"), "{ctx}");
        assert!(s.acks_seen > 0, "{ctx}");
        // Not vacuous: some trial had states to check.
        assert!(s.trials_detail.iter().any(|t| t.dims > 0 && t.states_checked > 1), "{ctx}");
        if example == "atomic-replace" {
            // Every update is a create, a size change and a rename before
            // the directory's fsync: crashes land among them, leaving
            // operations a power loss may lose, all of them checked.
            assert!(s.trials_detail.iter().any(|t| t.namespace_ops > 0 && t.states_checked > 1), "{ctx}");
        }
    }
}

#[test]
fn a_rename_without_a_directory_fsync_is_caught_as_the_lost_rename_and_replayed() {
    let dir = fast_dir();
    let example = "atomic-replace-no-dir-fsync";
    let cfg = config(example, example, "--records 12", 10, dir.path());
    let report = run(&cfg);
    let s = section(&report);
    let ctx = report.human_summary();
    assert!(s.violations > 0, "{ctx}");
    for f in &s.failures {
        let e = &f.finding.explanation;
        // The minimal set names the rename itself (not the create that
        // preceded it, whose loss would only drag the rename along).
        assert!(
            e.contains(r#"minimal set: rename("state.tmp" -> "state") at call "#)
                && e.contains(r#"was lost: the directory "." was not fsynced after it"#),
            "{e}"
        );
        assert!(f.finding.one_minimal, "{e}");
        // Only operations are lost in it (the rename, and what needs it:
        // the next create of "state.tmp" finds the name taken).
        assert!(f.finding.state.starts_with("newest:@") && !f.finding.state.contains('#'), "{}", f.finding.state);
    }
    // The replay rebuilds that state; with the rename persisted the checker passes.
    let f = &s.failures[0];
    let replayed = |state: &str| {
        let text: StateText = state.parse().unwrap();
        let calls = s.calibration.sync_calls;
        match replay_power_loss(
            &cfg,
            f.trial,
            s.calibration.traced_clean_ns,
            calls,
            Some(&text),
            None,
            &AtomicBool::new(false),
        )
        .unwrap()
        {
            PowerLossReplayed::State { verdict, .. } => verdict,
            other => panic!("{other:?}"),
        }
    };
    if matches!(f.point, crashlab::program_plan::PowerLossPoint::Syscall { .. }) {
        assert_eq!(replayed(&f.finding.state), CheckerVerdict::Violation { reason: f.finding.reason.clone() });
        assert_eq!(replayed("newest"), CheckerVerdict::Consistent);
    }
    // The correct design under the same crash points: nothing.
    let correct = run(&config("atomic-replace", "atomic-replace", "--records 12", 10, dir.path()));
    assert!(!correct.violation_found(), "{}", correct.human_summary());
}

#[test]
fn a_new_segment_without_a_directory_fsync_is_caught_as_its_lost_creation() {
    let dir = fast_dir();
    let example = "segmented-log-no-dir-fsync";
    // Enough records for several segments: crashes at sync calls land after
    // records acked in a new segment.
    let report = run(&config(example, example, "--records 150", 10, dir.path()));
    let s = section(&report);
    assert!(s.violations > 0, "{}", report.human_summary());
    for f in &s.failures {
        let e = &f.finding.explanation;
        assert!(
            e.contains(r#"minimal set: openat(creating "seg-"#)
                && e.contains(r#"was lost: the directory "." was not fsynced after it"#),
            "{e}"
        );
    }
}

/// SQLite's small runs: few transactions, and a sampled exploration beyond
/// 256 states (its checker is a Python program, ~50 ms a state).
fn sqlite(writer: &str, checker: &str, trials: u32, dir: &Path) -> ExternalReport {
    let mut c = config(writer, checker, "--records 8", trials, dir);
    c.power_loss.explore.exhaustive_bound = 256;
    c.power_loss.explore.random_states = 16;
    run(&c)
}

#[test]
fn sqlite_never_corrupts_and_keeps_what_each_mode_promises() {
    let dir = fast_dir();
    // Each mode judged by its own promise (the checker's): integrity always;
    // every acked commit for DELETE+EXTRA and WAL+FULL, all but the last for
    // DELETE+FULL, none for WAL+NORMAL.
    for example in ["sqlite-delete-full", "sqlite-delete-extra", "sqlite-wal-normal", "sqlite-wal-full"] {
        let report = sqlite(example, example, 6, dir.path());
        let s = section(&report);
        assert!(!report.violation_found(), "{example}: {}", report.human_summary());
        assert!(s.acks_seen > 0, "{example}: {}", report.human_summary());
    }
}

#[test]
fn sqlite_full_in_rollback_mode_loses_the_last_commit_when_the_journals_unlink_is_lost_and_extra_does_not() {
    let dir = fast_dir();
    // DELETE+FULL's writer judged by the promise of EXTRA (every acked
    // commit): the commit point is the journal's unlink, which FULL does not
    // make durable (no fsync of the directory after it).
    let report = sqlite("sqlite-delete-full", "sqlite-delete-extra", 6, dir.path());
    let s = section(&report);
    assert!(s.violations > 0, "{}", report.human_summary());
    for f in &s.failures {
        let e = &f.finding.explanation;
        assert!(e.contains("is lost"), "{e}");
        assert!(
            e.contains(r#"minimal set: unlink("test.db-journal") at call "#)
                && e.contains(r#"was lost: the directory "." was not fsynced after it"#),
            "{e}"
        );
    }
    // EXTRA's writer (a directory fsync after the unlink) under the same judge.
    let extra = sqlite("sqlite-delete-extra", "sqlite-delete-extra", 6, dir.path());
    assert!(!extra.violation_found(), "{}", extra.human_summary());
}

/// The per-filesystem models keep what real cuts of that filesystem kept
/// (`reports/SOUNDNESS.md`, "Namespace operations on real cuts"): a new
/// segment whose file was synced keeps its name on ext4, xfs and btrfs
/// (kept in every cut), while a rename with no directory fsync after it is
/// still lost on all of them (lost in every cut).
#[test]
fn per_filesystem_models_keep_a_synced_files_creation_and_still_lose_an_unsynced_rename() {
    use crashlab::namespace::FsModel;
    let dir = fast_dir();
    for fs in [FsModel::Ext4, FsModel::Xfs, FsModel::Btrfs] {
        let example = "segmented-log-no-dir-fsync";
        let mut c = config(example, example, "--records 150", 10, dir.path());
        c.power_loss.fs_model = fs;
        let report = run(&c);
        assert_eq!(section(&report).fs_model.as_deref(), Some(fs.name()));
        assert!(!report.violation_found(), "{fs}: {}", report.human_summary());

        let example = "atomic-replace-no-dir-fsync";
        let mut c = config(example, example, "--records 12", 10, dir.path());
        c.power_loss.fs_model = fs;
        let report = run(&c);
        let s = section(&report);
        assert!(s.violations > 0, "{fs}: {}", report.human_summary());
        for f in &s.failures {
            assert!(
                f.finding.explanation.contains(r#"minimal set: rename("state.tmp" -> "state") at call "#),
                "{fs}: {}",
                f.finding.explanation
            );
            assert!(f.replay.contains(&format!(" --fs-model {fs} ")), "{}", f.replay);
        }
    }
}
