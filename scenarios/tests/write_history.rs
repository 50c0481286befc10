//! The write history in power-loss states (`--history on`, the default):
//! a page may hold any version it had between its last sync and the crash,
//! not only those two. The example workloads `redo-from-checkpoint` and
//! `redo-from-page` share one writer: a counter's data page rewritten
//! through a mapping on every operation and `msync`ed every 8, a header page
//! (committed operation, checkpoint) `msync`ed on every operation. Their
//! checkers are their recoveries: `redo-from-page` redoes after the
//! operation the data page holds (correct whatever version it holds);
//! `redo-from-checkpoint` assumes the page is current or at the checkpoint.
//!
//! What must happen follows from the writer's code: at the sync-call crash
//! point just before the header's `msync` of operation i, with c the last
//! checkpoint and i ≥ c + 3, the data page was seen (at the acks) holding
//! operations c+1 .. i-1, and the durable header commits i-1; the state
//! with the data page at operation c+1 (≠ c, < i-1) breaks the checkpoint
//! recovery. Such points exist (c = 8, i = 11..15) and the run reaches every
//! sync-call point (4 × calls trials), so the mistake is caught whatever
//! the machine's load (the timed trials are not asserted on). Without the
//! history (`--history off`) a page is at its floor or its newest content,
//! both of which that recovery handles: it passes.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::power_loss::{replay_power_loss, HistoryOptions, PowerLossReplayed, StateText};
use crashlab::external::ExternalConfig;
use crashlab::page_history::HistoryMethod;
use crashlab::program_plan::PowerLossPoint;
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::PowerLossSection;
use crashlab::vocab::CrashKind;

mod programs;
use programs::{fast_dir, run, workload};

/// 24 operations make 24 header msyncs, 3 data msyncs and the loader's
/// calls: under 40 sync calls (asserted), so 160 trials reach every
/// point before and after each.
const TRIALS: u32 = 160;

fn config(example: &str, history: bool, dir: &Path) -> ExternalConfig {
    let mut c = ExternalConfig::new(
        &workload(example, "writer", ""),
        &workload(example, "checker", ""),
        Some(&workload(example, "setup", "")),
        false,
    )
    .expect("the example commands parse");
    c.crashes = vec![CrashKind::PowerLoss];
    c.trials = TRIALS;
    c.seed = 5;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c.power_loss.history = HistoryOptions { record: history, every: None };
    c
}

fn power_loss(report: &ExternalReport) -> &PowerLossSection {
    let pl = report.power_loss.as_ref().expect("a power-loss section");
    assert!(4 * pl.calibration.sync_calls <= TRIALS as u64, "{} sync calls: raise TRIALS", pl.calibration.sync_calls);
    pl
}

#[test]
fn a_recovery_that_assumes_a_page_is_at_its_floor_or_newest_is_caught_by_an_intermediate_version() {
    let dir = fast_dir();
    let c = config("redo-from-checkpoint", true, dir.path());
    let report = run(&c);
    let pl = power_loss(&report);
    assert_eq!(pl.history_method, Some(HistoryMethod::UffdWriteProtect), "this kernel tracks writes");
    assert!(pl.history.versions > 0 && pl.history.samples > 0, "{:?}", pl.history);
    assert!(pl.violations > 0, "{}", report.human_summary());
    for v in &pl.failures {
        let f = &v.finding;
        assert!(
            f.explanation.contains("counter.db page 1 holds the version written between call"),
            "the explanation names the version: {}",
            f.explanation
        );
        assert!(f.state.starts_with("newest:counter.db#p1=v"), "{}", f.state);
        assert!(f.reason.contains("neither the committed"), "{}", f.reason);
    }
    assert!(pl.trials_detail.iter().any(|t| t.files.iter().any(|f| f.intermediate_versions > 0)));

    // The minimal state of a trial crashed at a sync call (a timed crash
    // replays its time, not its instruction) replays: the same version of
    // the same page, again a violation; without the history the rerun has
    // no such version.
    let v = pl
        .failures
        .iter()
        .find(|v| matches!(v.point, PowerLossPoint::Syscall { .. }))
        .expect("the sync-call points catch it (see the module docs)");
    let state: StateText = v.finding.state.parse().unwrap();
    let calls = pl.calibration.sync_calls;
    let clean = pl.calibration.traced_clean_ns;
    let cancel = AtomicBool::new(false);
    let replayed = replay_power_loss(&c, v.trial, clean, calls, Some(&state), None, &cancel).unwrap();
    let PowerLossReplayed::State { verdict, notes, .. } = replayed else { panic!("a state replay") };
    assert!(verdict.is_violation() && notes.is_empty(), "{verdict:?} {notes:?}");
    let off = config("redo-from-checkpoint", false, dir.path());
    let replayed = replay_power_loss(&off, v.trial, clean, calls, Some(&state), None, &cancel).unwrap();
    let PowerLossReplayed::State { verdict, notes, .. } = replayed else { panic!("a state replay") };
    assert_eq!(verdict, CheckerVerdict::Consistent);
    assert!(notes[0].contains("has no recorded version"), "{notes:?}");
}

#[test]
fn without_the_history_the_same_mistake_passes_and_the_correct_recovery_passes_with_it() {
    let dir = fast_dir();
    let report = run(&config("redo-from-checkpoint", false, dir.path()));
    let pl = power_loss(&report);
    assert_eq!(pl.history_method, Some(HistoryMethod::Off));
    assert_eq!(pl.history.samples, 0);
    assert_eq!(pl.violations, 0, "a page at its floor or newest: {}", report.human_summary());
    let report = run(&config("redo-from-page", true, dir.path()));
    let pl = power_loss(&report);
    assert!(pl.history.versions > 0);
    assert_eq!(pl.violations, 0, "no false alarm from intermediate versions: {}", report.human_summary());
}
